//! Daily, weekly (ISO) and monthly summaries per employee and per team, cut
//! in the company's time zone.
//!
//! Pure computation over [`SummaryRows`]: the storage layer fetches the rows,
//! this module turns them into figures. Days are calendar days in the
//! company's zone, so a day is 23 or 25 hours long when the clocks change,
//! and an employee working in another zone is counted on the company's days.
//!
//! - **Online time** comes from heartbeats: each one counts from its own time
//!   until the next heartbeat of that employee (any device), at most one
//!   heartbeat interval, and is split at midnight. `online` and `idle`
//!   heartbeats are online time; `paused` ones are paused time.
//! - **Active and idle time** come from activity buckets where the policy
//!   collects idle time (measured input), otherwise from the heartbeat
//!   statuses; each figure says which.
//! - **Applications and websites** sum the buckets' seconds by name; a bucket
//!   counts on the day it starts.
//! - **Boots** are the start-up reports' boot times, each boot once; a
//!   **shutdown** is an agent stopping with the session or the machine.
//! - **Detailed logs expected** are the policy's logs per day on each working
//!   day of the period up to today, from the employee's creation (or any
//!   earlier day they were seen).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike as _, Days, Duration, FixedOffset, Months, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Tz;
use wfh_protocol::admin::{
    ActiveIdleSource, DaySummary, EmployeeSummary, NamedSecs, Period, Summary, SummaryFigures,
};
use wfh_protocol::{AgentEvent, EmployeeRef, HeartbeatStatus, MonitoringPolicy, ShutdownReason};

use crate::db::SummaryRows;

/// Entries in the top applications and websites.
pub const TOP: usize = 10;

/// Dates the API accepts: chrono reads years far beyond 9999 (`+262142-12-31`),
/// where a day or a month more overflows; nothing this server keeps lies
/// outside these years.
const PLAUSIBLE_YEARS: std::ops::RangeInclusive<i32> = 1970..=9998;

/// `date` if its year is one the API works with, else a 422 naming `field`.
pub fn plausible_date(field: &'static str, date: NaiveDate) -> Result<NaiveDate, crate::error::ApiError> {
    if PLAUSIBLE_YEARS.contains(&date.year()) {
        Ok(date)
    } else {
        Err(crate::error::ApiError::field(
            field,
            format!(
                "the year must be from {} to {}",
                PLAUSIBLE_YEARS.start(),
                PLAUSIBLE_YEARS.end()
            ),
        ))
    }
}

/// A `YYYY-MM-DD` day of a plausible year, or a 422 naming `field`.
pub fn parse_day(field: &'static str, s: &str) -> Result<NaiveDate, crate::error::ApiError> {
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| crate::error::ApiError::field(field, "expected YYYY-MM-DD"))?;
    plausible_date(field, day)
}

/// The period containing `date`: its first day and the day after its last.
pub fn period_days(period: Period, date: NaiveDate) -> (NaiveDate, NaiveDate) {
    match period {
        Period::Day => (date, date + Days::new(1)),
        Period::Week => {
            let monday = date - Days::new(u64::from(date.weekday().num_days_from_monday()));
            (monday, monday + Days::new(7))
        }
        Period::Month => {
            let first = date.with_day(1).expect("day 1 exists");
            (first, first + Months::new(1))
        }
    }
}

/// "2026-12-01", "2026-W49" (the ISO year, which may differ from the
/// calendar year around New Year) or "2026-12".
pub fn label(period: Period, date: NaiveDate) -> String {
    match period {
        Period::Day => date.format("%Y-%m-%d").to_string(),
        Period::Week => {
            let w = date.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }
        Period::Month => date.format("%Y-%m").to_string(),
    }
}

/// When `day` begins in `tz`: local midnight, or the first moment after it
/// where midnight does not exist (zones that change the clocks at 00:00).
pub fn start_of_day(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    (0..=24 * 4)
        .find_map(|quarter| {
            tz.from_local_datetime(&(midnight + Duration::minutes(15 * quarter)))
                .earliest()
        })
        .expect("a day has a first moment")
        .with_timezone(&Utc)
}

/// Everything a summary needs besides the rows.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub tz: Tz,
    pub period: Period,
    pub date: NaiveDate,
    pub now: DateTime<Utc>,
    pub heartbeat_interval_secs: u64,
    pub policy: &'a MonitoringPolicy,
}

/// An employee to summarise.
#[derive(Debug, Clone)]
pub struct Member {
    pub who: EmployeeRef,
    pub team: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Context<'_> {
    /// The span to fetch rows for: the period, from one heartbeat interval
    /// before it (a heartbeat just before midnight counts after it too).
    pub fn fetch_span(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let (first, end) = period_days(self.period, self.date);
        (
            start_of_day(self.tz, first) - self.interval(),
            start_of_day(self.tz, end),
        )
    }

    fn interval(&self) -> Duration {
        Duration::seconds(i64::try_from(self.heartbeat_interval_secs).unwrap_or(i64::MAX / 1000))
    }
}

/// One day of one employee (or a sum of them), before it becomes figures.
#[derive(Debug, Clone, Default)]
struct Acc {
    first_seen: Option<DateTime<Utc>>,
    last_seen: Option<DateTime<Utc>>,
    online: i64,
    heartbeat_active: i64,
    heartbeat_idle: i64,
    paused: i64,
    activity_active: i64,
    activity_idle: i64,
    /// Days whose active/idle came from activity, and from heartbeats.
    days_activity: u32,
    days_heartbeats: u32,
    boots: BTreeSet<DateTime<Utc>>,
    shutdowns: Vec<DateTime<Utc>>,
    apps: HashMap<String, u64>,
    sites: HashMap<String, u64>,
    keys: Option<u64>,
    logs_taken: u32,
    logs_expected: u32,
    has_idle_buckets: bool,
}

impl Acc {
    fn merge(&mut self, o: &Acc) {
        self.first_seen = min_opt(self.first_seen, o.first_seen);
        self.last_seen = self.last_seen.max(o.last_seen);
        self.online += o.online;
        self.heartbeat_active += o.heartbeat_active;
        self.heartbeat_idle += o.heartbeat_idle;
        self.paused += o.paused;
        self.activity_active += o.activity_active;
        self.activity_idle += o.activity_idle;
        self.days_activity += o.days_activity;
        self.days_heartbeats += o.days_heartbeats;
        self.boots.extend(o.boots.iter().copied());
        self.shutdowns.extend(o.shutdowns.iter().copied());
        for (k, v) in &o.apps {
            *self.apps.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.sites {
            *self.sites.entry(k.clone()).or_default() += v;
        }
        if let Some(k) = o.keys {
            self.keys = Some(self.keys.unwrap_or(0) + k);
        }
        self.logs_taken += o.logs_taken;
        self.logs_expected += o.logs_expected;
    }

    /// Settle which source a single day's active/idle comes from.
    fn close_day(&mut self) {
        if self.has_idle_buckets {
            self.days_activity = 1;
        } else if self.first_seen.is_some() {
            self.days_heartbeats = 1;
        }
    }

    fn figures(&self, tz: Tz) -> SummaryFigures {
        let local = |t: DateTime<Utc>| t.with_timezone(&tz).fixed_offset();
        let (active, idle, source) = match (self.days_activity, self.days_heartbeats) {
            (0, 0) => (0, 0, ActiveIdleSource::None),
            (_, 0) => (
                self.activity_active,
                self.activity_idle,
                ActiveIdleSource::Activity,
            ),
            (0, _) => (
                self.heartbeat_active,
                self.heartbeat_idle,
                ActiveIdleSource::Heartbeats,
            ),
            _ => (
                self.activity_active + self.heartbeat_active,
                self.activity_idle + self.heartbeat_idle,
                ActiveIdleSource::Mixed,
            ),
        };
        let mut shutdowns = self.shutdowns.clone();
        shutdowns.sort();
        SummaryFigures {
            first_seen: self.first_seen.map(local),
            last_seen: self.last_seen.map(local),
            online_secs: secs(self.online),
            active_secs: secs(active),
            idle_secs: secs(idle),
            active_idle_source: source,
            paused_secs: secs(self.paused),
            boots: self.boots.iter().copied().map(local).collect(),
            shutdowns: shutdowns
                .into_iter()
                .map(local)
                .collect::<Vec<DateTime<FixedOffset>>>(),
            top_apps: top(&self.apps),
            top_sites: top(&self.sites),
            key_presses: self.keys,
            logs_taken: self.logs_taken,
            logs_expected: self.logs_expected,
        }
    }
}

fn secs(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn top(map: &HashMap<String, u64>) -> Vec<NamedSecs> {
    let mut v: Vec<NamedSecs> = map
        .iter()
        .map(|(name, secs)| NamedSecs {
            name: name.clone(),
            secs: *secs,
        })
        .collect();
    v.sort_by(|a, b| b.secs.cmp(&a.secs).then_with(|| a.name.cmp(&b.name)));
    v.truncate(TOP);
    v
}

/// The summary of `members` (a team when `team` is given).
pub fn summarise(ctx: &Context<'_>, members: &[Member], team: Option<String>, rows: &SummaryRows) -> Summary {
    let (first, end) = period_days(ctx.period, ctx.date);
    let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d < end).collect();
    let bounds: Vec<(DateTime<Utc>, DateTime<Utc>)> = days
        .iter()
        .map(|d| (start_of_day(ctx.tz, *d), start_of_day(ctx.tz, *d + Days::new(1))))
        .collect();
    let day_of = |t: DateTime<Utc>| bounds.iter().position(|(s, e)| *s <= t && t < *e);
    let today = ctx.now.with_timezone(&ctx.tz).date_naive();
    let working = ctx.policy.weekdays();

    let mut per: BTreeMap<i64, Vec<Acc>> = members
        .iter()
        .map(|m| (m.who.id, vec![Acc::default(); days.len()]))
        .collect();

    // Heartbeats: each covers until the next one, at most an interval.
    let mut by_employee: HashMap<i64, Vec<(DateTime<Utc>, HeartbeatStatus)>> = HashMap::new();
    for (e, t, s) in &rows.heartbeats {
        by_employee.entry(*e).or_default().push((*t, *s));
    }
    for (e, beats) in &mut by_employee {
        let Some(accs) = per.get_mut(e) else { continue };
        beats.sort_by_key(|(t, _)| *t);
        for (i, (t, status)) in beats.iter().enumerate() {
            let mut until = *t + ctx.interval();
            if let Some((next, _)) = beats.get(i + 1) {
                until = until.min(*next);
            }
            for (d, (s, end)) in bounds.iter().enumerate() {
                let (a, b) = ((*t).max(*s), until.min(*end));
                if a >= b {
                    continue;
                }
                let covered = (b - a).num_seconds();
                let acc = &mut accs[d];
                match status {
                    HeartbeatStatus::Online => {
                        acc.online += covered;
                        acc.heartbeat_active += covered;
                    }
                    HeartbeatStatus::Idle => {
                        acc.online += covered;
                        acc.heartbeat_idle += covered;
                    }
                    HeartbeatStatus::Paused => acc.paused += covered,
                }
            }
            if let Some(d) = day_of(*t) {
                let acc = &mut accs[d];
                acc.first_seen = min_opt(acc.first_seen, Some(*t));
                acc.last_seen = acc.last_seen.max(Some(*t));
            }
        }
    }

    for b in &rows.activity {
        let Some(accs) = per.get_mut(&b.employee_id) else {
            continue;
        };
        let Some(d) = day_of(b.start.to_utc()) else {
            continue;
        };
        let acc = &mut accs[d];
        if let (Some(a), Some(i)) = (b.active_secs, b.idle_secs) {
            acc.has_idle_buckets = true;
            acc.activity_active += i64::from(a);
            acc.activity_idle += i64::from(i);
        }
        for a in &b.apps {
            *acc.apps.entry(a.app.clone()).or_default() += u64::from(a.secs);
        }
        for s in &b.sites {
            *acc.sites.entry(s.domain.clone()).or_default() += u64::from(s.secs);
        }
        if let Some(k) = b.key_presses {
            acc.keys = Some(acc.keys.unwrap_or(0) + u64::from(k));
        }
    }

    for (e, t, event) in &rows.events {
        let Some(accs) = per.get_mut(e) else { continue };
        match event {
            AgentEvent::Startup { boot_time, .. } => {
                // One boot, however often the agent started during it.
                let boot = boot_time.with_timezone(&Utc);
                let boot = boot - Duration::nanoseconds(i64::from(boot.timestamp_subsec_nanos()));
                if let Some(d) = day_of(boot) {
                    accs[d].boots.insert(boot);
                }
            }
            AgentEvent::Shutdown {
                reason: ShutdownReason::Session,
            } => {
                if let Some(d) = day_of(*t) {
                    accs[d].shutdowns.push(*t);
                }
            }
            _ => {}
        }
    }

    for (e, t) in &rows.logs {
        if let (Some(accs), Some(d)) = (per.get_mut(e), day_of(*t)) {
            accs[d].logs_taken += 1;
        }
    }

    let mut employees = Vec::with_capacity(members.len());
    let mut team_acc = Acc::default();
    for m in members {
        let accs = per.get_mut(&m.who.id).expect("every member has days");
        let created = m.created_at.with_timezone(&ctx.tz).date_naive();
        let mut total = Acc::default();
        let mut out_days = Vec::with_capacity(days.len());
        for (i, day) in days.iter().enumerate() {
            let acc = &mut accs[i];
            // Expected on working days up to today, from the day the
            // employee was added (or the first day they were seen, for
            // data imported from before).
            let monitored = *day >= created || acc.first_seen.is_some();
            if working.contains(&day.weekday()) && *day <= today && monitored {
                acc.logs_expected = u32::from(ctx.policy.logs_per_day);
            }
            acc.close_day();
            total.merge(acc);
            let (s, e) = bounds[i];
            out_days.push(DaySummary {
                date: *day,
                hours: u32::try_from((e - s).num_hours()).unwrap_or(24),
                figures: acc.figures(ctx.tz),
            });
        }
        team_acc.merge(&total);
        employees.push(EmployeeSummary {
            employee: m.who.clone(),
            team: m.team.clone(),
            totals: total.figures(ctx.tz),
            days: out_days,
        });
    }
    let local = |t: DateTime<Utc>| t.with_timezone(&ctx.tz).fixed_offset();
    Summary {
        period: ctx.period,
        label: label(ctx.period, ctx.date),
        timezone: ctx.tz.name().to_owned(),
        start: local(bounds[0].0),
        end: local(bounds[bounds.len() - 1].1),
        team_totals: team.is_some().then(|| team_acc.figures(ctx.tz)),
        team,
        employees,
    }
}

/// The summary `GET /api/admin/summary` asks for: one employee, one team,
/// or every active employee.
pub async fn for_request(
    state: &crate::state::AppState,
    params: &crate::routes::admin::SummaryParams,
) -> Result<Summary, crate::error::ApiError> {
    use crate::error::ApiError;
    let tz = state.config.timezone();
    let now = state.clock.now();
    let date = match params.date.as_deref() {
        None => now.with_timezone(&tz).date_naive(),
        Some(s) => parse_day("date", s)?,
    };
    if params.employee_id.is_some() && params.team.is_some() {
        return Err(ApiError::field("team", "give employee_id or team, not both"));
    }
    let rows = state.store.employees_with_presence().await?;
    let members: Vec<Member> = rows
        .into_iter()
        .filter(|r| match (&params.employee_id, &params.team) {
            (Some(id), _) => r.who.id == *id,
            (None, Some(team)) => r.team.as_deref() == Some(team.trim()),
            (None, None) => r.active,
        })
        .map(|r| Member {
            who: r.who,
            team: r.team,
            created_at: r.created_at,
        })
        .collect();
    let mut members = members;
    members.sort_by(|a, b| a.who.username.cmp(&b.who.username));
    if members.is_empty() {
        return Err(match (&params.employee_id, &params.team) {
            (Some(_), _) => ApiError::NotFound("employee"),
            (None, Some(_)) => ApiError::NotFound("team"),
            (None, None) => ApiError::NotFound("employee"),
        });
    }
    let document = crate::policy::current(state);
    let policy = &document.policy;
    let ctx = Context {
        tz,
        period: params.period,
        date,
        now,
        heartbeat_interval_secs: u64::from(policy.heartbeat_interval_secs),
        policy,
    };
    let (from, to) = ctx.fetch_span();
    let ids: Vec<i64> = members.iter().map(|m| m.who.id).collect();
    let data = state.store.summary_rows(&ids, from, to).await?;
    Ok(summarise(
        &ctx,
        &members,
        params.team.as_ref().map(|t| t.trim().to_owned()),
        &data,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Europe};
    use uuid::Uuid;
    use wfh_protocol::admin::ActivityRecord;
    use wfh_protocol::{AppTime, SiteTime};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn ana() -> Member {
        Member {
            who: EmployeeRef {
                id: 1,
                username: "ana".into(),
                display_name: None,
            },
            team: Some("Support".into()),
            created_at: t("2020-01-01T00:00:00Z"),
        }
    }

    fn bo() -> Member {
        Member {
            who: EmployeeRef {
                id: 2,
                username: "bo".into(),
                display_name: None,
            },
            team: Some("Support".into()),
            created_at: t("2020-01-01T00:00:00Z"),
        }
    }

    /// Heartbeats every `every` seconds from `from` (inclusive) to `to` (exclusive).
    fn beats(
        e: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        every: i64,
        s: HeartbeatStatus,
    ) -> Vec<(i64, DateTime<Utc>, HeartbeatStatus)> {
        let mut v = Vec::new();
        let mut at = from;
        while at < to {
            v.push((e, at, s));
            at += Duration::seconds(every);
        }
        v
    }

    fn ctx<'a>(tz: Tz, period: Period, date: NaiveDate, policy: &'a MonitoringPolicy) -> Context<'a> {
        Context {
            tz,
            period,
            date,
            now: t("2030-01-01T00:00:00Z"),
            heartbeat_interval_secs: 300,
            policy,
        }
    }

    #[test]
    fn a_dst_day_has_23_or_25_hours_of_heartbeats() {
        let policy = MonitoringPolicy::default();
        // Europe/Berlin: 2026-03-29 has 23 hours, 2026-10-25 has 25.
        for (day, hours) in [(d(2026, 3, 29), 23), (d(2026, 10, 25), 25), (d(2026, 6, 1), 24)] {
            let c = ctx(Europe::Berlin, Period::Day, day, &policy);
            let (from, to) = c.fetch_span();
            // Heartbeats around the clock, from well before to well after.
            let rows = SummaryRows {
                heartbeats: beats(
                    1,
                    from - Duration::hours(3),
                    to + Duration::hours(3),
                    300,
                    HeartbeatStatus::Online,
                ),
                ..Default::default()
            };
            let s = summarise(&c, &[ana()], None, &rows);
            let day_summary = &s.employees[0].days[0];
            assert_eq!(day_summary.hours, hours, "{day}");
            assert_eq!(s.employees[0].totals.online_secs, hours as u64 * 3600, "{day}");
            assert_eq!(
                s.employees[0].totals.active_idle_source,
                ActiveIdleSource::Heartbeats
            );
            let first = s.employees[0].totals.first_seen.unwrap();
            assert_eq!(first.date_naive(), day);
            assert_eq!(first.format("%H:%M").to_string(), "00:00", "{day}");
        }
    }

    #[test]
    fn gaps_statuses_and_midnight_are_counted_exactly() {
        let policy = MonitoringPolicy::default();
        let c = ctx(Europe::Berlin, Period::Week, d(2026, 12, 2), &policy);
        let mut hb = Vec::new();
        // Tuesday 2026-12-01, 09:00–12:00 local (08:00Z) online, 12:00–13:00 paused,
        // 13:00–14:00 idle; one heartbeat at 23:58 local runs 2 minutes into Wednesday.
        hb.extend(beats(
            1,
            t("2026-12-01T08:00:00Z"),
            t("2026-12-01T11:00:00Z"),
            300,
            HeartbeatStatus::Online,
        ));
        hb.extend(beats(
            1,
            t("2026-12-01T11:00:00Z"),
            t("2026-12-01T12:00:00Z"),
            300,
            HeartbeatStatus::Paused,
        ));
        hb.extend(beats(
            1,
            t("2026-12-01T12:00:00Z"),
            t("2026-12-01T13:00:00Z"),
            300,
            HeartbeatStatus::Idle,
        ));
        hb.push((1, t("2026-12-01T22:58:00Z"), HeartbeatStatus::Online));
        let rows = SummaryRows {
            heartbeats: hb,
            ..Default::default()
        };
        let s = summarise(&c, &[ana()], None, &rows);
        assert_eq!(s.label, "2026-W49");
        assert_eq!(s.start.to_rfc3339(), "2026-11-30T00:00:00+01:00");
        assert_eq!(s.end.to_rfc3339(), "2026-12-07T00:00:00+01:00");
        let days = &s.employees[0].days;
        assert_eq!(days.len(), 7);
        let tue = &days[1].figures;
        assert_eq!(tue.online_secs, 4 * 3600 + 120);
        assert_eq!(tue.active_secs, 3 * 3600 + 120);
        assert_eq!(tue.idle_secs, 3600);
        assert_eq!(tue.paused_secs, 3600);
        assert_eq!(tue.first_seen.unwrap().to_rfc3339(), "2026-12-01T09:00:00+01:00");
        assert_eq!(tue.last_seen.unwrap().to_rfc3339(), "2026-12-01T23:58:00+01:00");
        let wed = &days[2].figures;
        assert_eq!(wed.online_secs, 180);
        assert_eq!(wed.first_seen, None, "the heartbeat belongs to Tuesday");
        assert_eq!(s.employees[0].totals.online_secs, 4 * 3600 + 300);
    }

    #[test]
    fn iso_weeks_and_months_follow_the_company_zone() {
        let policy = MonitoringPolicy::default();
        // 2027-01-02 is in ISO week 53 of 2026, which starts on 2026-12-28.
        let c = ctx(Europe::Berlin, Period::Week, d(2027, 1, 2), &policy);
        let s = summarise(&c, &[ana()], None, &SummaryRows::default());
        assert_eq!(s.label, "2026-W53");
        assert_eq!(s.start.date_naive(), d(2026, 12, 28));
        assert_eq!(s.employees[0].days.len(), 7);
        // 2026-02-28T23:30Z is 00:30 on 1 March in Berlin: March, not February.
        let hb = vec![(1, t("2026-02-28T23:30:00Z"), HeartbeatStatus::Online)];
        let rows = SummaryRows {
            heartbeats: hb,
            logs: vec![(1, t("2026-02-28T23:30:00Z"))],
            ..Default::default()
        };
        let feb = summarise(
            &ctx(Europe::Berlin, Period::Month, d(2026, 2, 10), &policy),
            &[ana()],
            None,
            &rows,
        );
        assert_eq!(feb.label, "2026-02");
        assert_eq!(feb.employees[0].days.len(), 28);
        assert_eq!(feb.employees[0].totals.online_secs, 0);
        assert_eq!(feb.employees[0].totals.logs_taken, 0);
        let mar = summarise(
            &ctx(Europe::Berlin, Period::Month, d(2026, 3, 31), &policy),
            &[ana()],
            None,
            &rows,
        );
        assert_eq!(mar.employees[0].days.len(), 31);
        assert_eq!(mar.employees[0].totals.online_secs, 300);
        assert_eq!(mar.employees[0].totals.logs_taken, 1);
        assert_eq!(mar.employees[0].days[0].figures.logs_taken, 1);
        // March 2026 in Berlin has 31 days and one 23-hour day.
        let hours: u32 = mar.employees[0].days.iter().map(|d| d.hours).sum();
        assert_eq!(hours, 31 * 24 - 1);
    }

    #[test]
    fn an_employee_in_another_zone_counts_on_the_companys_days() {
        let policy = MonitoringPolicy::default();
        // Working 17:00–21:00 in New York on 1 December = 23:00–03:00 in Berlin.
        let ny = t("2026-12-01T22:00:00Z");
        let rows = SummaryRows {
            heartbeats: beats(1, ny, ny + Duration::hours(4), 300, HeartbeatStatus::Online),
            ..Default::default()
        };
        let c = ctx(Europe::Berlin, Period::Week, d(2026, 12, 1), &policy);
        let s = summarise(&c, &[ana()], None, &rows);
        let days = &s.employees[0].days;
        assert_eq!(days[1].figures.online_secs, 3600, "Tuesday 23:00–24:00 in Berlin");
        assert_eq!(
            days[2].figures.online_secs,
            3 * 3600,
            "Wednesday 00:00–03:00 in Berlin"
        );
        // The same in a company in New York: all on Tuesday.
        let c = ctx(America::New_York, Period::Week, d(2026, 12, 1), &policy);
        let s = summarise(&c, &[ana()], None, &rows);
        assert_eq!(s.employees[0].days[1].figures.online_secs, 4 * 3600);
        assert_eq!(s.timezone, "America/New_York");
    }

    fn bucket(
        e: i64,
        start: &str,
        active: Option<(u32, u32)>,
        apps: &[(&str, u32)],
        sites: &[(&str, u32)],
        keys: Option<u32>,
    ) -> ActivityRecord {
        ActivityRecord {
            event_id: Uuid::new_v4(),
            employee_id: e,
            device_id: e,
            username: "x".into(),
            hostname: "h".into(),
            start: DateTime::parse_from_rfc3339(start).unwrap(),
            duration_secs: 300,
            observed_secs: 300,
            active_secs: active.map(|a| a.0),
            idle_secs: active.map(|a| a.1),
            apps: apps
                .iter()
                .map(|(a, s)| AppTime {
                    app: (*a).into(),
                    title: None,
                    secs: *s,
                })
                .collect(),
            sites: sites
                .iter()
                .map(|(a, s)| SiteTime {
                    domain: (*a).into(),
                    url: None,
                    secs: *s,
                })
                .collect(),
            key_presses: keys,
            received_at: Utc::now(),
        }
    }

    #[test]
    fn teams_add_up_activity_boots_and_logs() {
        let policy = MonitoringPolicy::default(); // two logs a day, Monday to Friday
        let c = Context {
            now: t("2026-12-02T12:00:00Z"), // a Wednesday: Thursday and Friday have not come
            ..ctx(Europe::Berlin, Period::Week, d(2026, 12, 1), &policy)
        };
        let rows = SummaryRows {
            heartbeats: beats(
                1,
                t("2026-12-01T08:00:00Z"),
                t("2026-12-01T09:00:00Z"),
                300,
                HeartbeatStatus::Online,
            ),
            activity: vec![
                bucket(
                    1,
                    "2026-12-01T09:00:00+01:00",
                    Some((200, 100)),
                    &[("code", 200), ("firefox", 100)],
                    &[("example.com", 100)],
                    Some(40),
                ),
                bucket(
                    1,
                    "2026-12-01T09:05:00+01:00",
                    Some((300, 0)),
                    &[("code", 300)],
                    &[],
                    Some(2),
                ),
                bucket(
                    2,
                    "2026-12-01T09:00:00-05:00",
                    None,
                    &[("firefox", 250)],
                    &[("example.com", 250)],
                    None,
                ),
            ],
            events: vec![
                (
                    1,
                    t("2026-12-01T07:59:00Z"),
                    AgentEvent::Startup {
                        boot_time: t("2026-12-01T07:58:00.5Z"),
                        agent_version: "1".into(),
                        os: "x".into(),
                    },
                ),
                (
                    1,
                    t("2026-12-01T10:00:00Z"),
                    AgentEvent::Startup {
                        boot_time: t("2026-12-01T07:58:00.7Z"),
                        agent_version: "1".into(),
                        os: "x".into(),
                    },
                ),
                (
                    1,
                    t("2026-12-01T16:00:00Z"),
                    AgentEvent::Shutdown {
                        reason: ShutdownReason::Session,
                    },
                ),
                (
                    1,
                    t("2026-12-01T15:00:00Z"),
                    AgentEvent::Shutdown {
                        reason: ShutdownReason::Stopped,
                    },
                ),
            ],
            logs: vec![(1, t("2026-12-01T10:00:00Z")), (2, t("2026-12-01T10:00:00Z"))],
        };
        let s = summarise(&c, &[ana(), bo()], Some("Support".into()), &rows);
        let a = &s.employees[0].totals;
        assert_eq!((a.active_secs, a.idle_secs), (500, 100));
        assert_eq!(a.active_idle_source, ActiveIdleSource::Activity);
        assert_eq!(
            a.top_apps[0],
            NamedSecs {
                name: "code".into(),
                secs: 500
            }
        );
        assert_eq!(a.key_presses, Some(42));
        assert_eq!(a.boots.len(), 1, "one boot, reported by two start-ups");
        assert_eq!(a.boots[0].to_rfc3339(), "2026-12-01T08:58:00+01:00");
        assert_eq!(a.shutdowns.len(), 1, "stopping the app by hand is not a shutdown");
        assert_eq!(
            (a.logs_taken, a.logs_expected),
            (1, 6),
            "Mon, Tue, Wed: 3 working days so far"
        );
        let b = &s.employees[1].totals;
        assert_eq!(b.key_presses, None);
        assert_eq!(b.active_idle_source, ActiveIdleSource::None);
        // Bo's bucket starts 09:00 in New York = 15:00 in Berlin, Tuesday.
        assert_eq!(s.employees[1].days[1].figures.top_sites[0].secs, 250);
        let team = s.team_totals.unwrap();
        assert_eq!(
            team.top_apps,
            [
                NamedSecs {
                    name: "code".into(),
                    secs: 500
                },
                NamedSecs {
                    name: "firefox".into(),
                    secs: 350
                }
            ]
        );
        assert_eq!(
            team.top_sites,
            [NamedSecs {
                name: "example.com".into(),
                secs: 350
            }]
        );
        assert_eq!((team.logs_taken, team.logs_expected), (2, 12));
        assert_eq!(team.key_presses, Some(42));
    }

    #[test]
    fn zones_that_skip_midnight_still_have_days() {
        // America/Santiago moved its clocks from 00:00 to 01:00 on 2026-09-06.
        let start = start_of_day(chrono_tz::America::Santiago, d(2026, 9, 6));
        assert_eq!(
            start
                .with_timezone(&chrono_tz::America::Santiago)
                .format("%H:%M")
                .to_string(),
            "01:00"
        );
    }
}
