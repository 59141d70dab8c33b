//! When to take the detailed logs: exactly `per_day` on each working day, at
//! random times inside the working window, and never one more.
//!
//! The scheduler is pure logic over a [`PlanBook`] (the persisted plans) and
//! the time it is given; it never reads a clock or sleeps, so tests run a
//! simulated year in milliseconds. How the promise is kept:
//!
//! * A day's plan is drawn once, the first time the agent polls on that local
//!   date, and persisted before anything is taken. Every slot carries an event
//!   id derived from the installation id, the date and the slot number
//!   (UUID v5), so even a lost plan file redraws the *same* event ids and the
//!   server (idempotent on event id) can never store a third log.
//! * Times are drawn uniformly over the real instants of the window
//!   (start and end mapped through the time zone, DST gaps and folds
//!   included), not over wall-clock minutes.
//! * A slot whose time passed while the machine was off or asleep (the agent
//!   wakes more than `grace` late) is redrawn uniformly in what is left of the
//!   window. A slot due while monitoring is paused waits for the resume and is
//!   then redrawn the same way.
//! * When the window closes, every slot not taken becomes missed, with the
//!   reason, and the engine reports it to the server. Working days on which the
//!   agent never ran are reported as missed when it next starts.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use rand::Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wfh_protocol::MissedReason;

/// How far back the agent reports working days on which it never ran.
pub const BACKFILL_DAYS: i64 = 31;
/// How long finished plans are kept (for `status` and for the guard against
/// re-planning a date after a time-zone change).
pub const KEEP_DAYS: i64 = 40;

/// Days of the week on which logs are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DaysSpec", into = "Vec<String>")]
pub struct WorkingDays(u8);

/// `["mon", "tue"]` in a file, `"mon,tue"` in the environment.
#[derive(Deserialize)]
#[serde(untagged)]
enum DaysSpec {
    List(Vec<String>),
    Text(String),
}

impl TryFrom<DaysSpec> for WorkingDays {
    type Error = String;
    fn try_from(spec: DaysSpec) -> Result<Self, String> {
        match spec {
            DaysSpec::List(v) => v.try_into(),
            DaysSpec::Text(s) => s
                .split(',')
                .map(|d| d.trim().to_owned())
                .filter(|d| !d.is_empty())
                .collect::<Vec<_>>()
                .try_into(),
        }
    }
}

impl WorkingDays {
    pub const MONDAY_TO_FRIDAY: WorkingDays = WorkingDays(0b001_1111);
    pub const EVERY_DAY: WorkingDays = WorkingDays(0b111_1111);

    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }

    pub fn from_days(days: impl IntoIterator<Item = Weekday>) -> Self {
        Self(
            days.into_iter()
                .fold(0, |acc, d| acc | 1 << d.num_days_from_monday()),
        )
    }

    pub fn days(self) -> impl Iterator<Item = Weekday> {
        (0..7u8)
            .filter(move |i| self.0 & (1 << i) != 0)
            .filter_map(|i| Weekday::try_from(i).ok())
    }
}

impl TryFrom<Vec<String>> for WorkingDays {
    type Error = String;
    fn try_from(names: Vec<String>) -> Result<Self, String> {
        let days = names
            .iter()
            .map(|n| {
                n.parse::<Weekday>()
                    .map_err(|_| format!("{n:?} is not a day of the week (use mon, tue, ...)"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_days(days))
    }
}

impl From<WorkingDays> for Vec<String> {
    fn from(d: WorkingDays) -> Self {
        d.days().map(|d| d.to_string().to_lowercase()).collect()
    }
}

/// What the scheduler needs from the configuration.
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    /// Logs per working day (default 2).
    pub per_day: u8,
    pub days: WorkingDays,
    /// Local start and end of the window (default 08:00-22:00).
    pub window_start: NaiveTime,
    pub window_end: NaiveTime,
    /// A slot the agent reaches later than this was slept through: redraw it.
    pub grace: Duration,
    /// Wait before retrying a failed capture.
    pub capture_retry: Duration,
    /// Failed captures before the slot is given up as missed.
    pub max_capture_failures: u8,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            per_day: 2,
            days: WorkingDays::MONDAY_TO_FRIDAY,
            window_start: NaiveTime::from_hms_opt(8, 0, 0).expect("valid time"),
            window_end: NaiveTime::from_hms_opt(22, 0, 0).expect("valid time"),
            grace: Duration::minutes(2),
            capture_retry: Duration::minutes(1),
            max_capture_failures: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SlotState {
    /// Waiting for `due`.
    Pending,
    /// Came due while monitoring was paused; redrawn on resume.
    Deferred,
    Taken {
        at: DateTime<Utc>,
    },
    Missed {
        reason: MissedReason,
        detail: Option<String>,
    },
}

impl SlotState {
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Taken { .. } | Self::Missed { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub index: u8,
    pub event_id: Uuid,
    pub due: DateTime<Utc>,
    pub state: SlotState,
    /// How often the time was redrawn (slept through, or paused).
    pub redraws: u16,
    pub capture_failures: u8,
    pub last_error: Option<String>,
}

/// One working day's plan. Window bounds are the real instants, fixed when
/// the plan is drawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayPlan {
    pub day: NaiveDate,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub slots: Vec<Slot>,
}

impl DayPlan {
    pub fn taken(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s.state, SlotState::Taken { .. }))
            .count()
    }

    pub fn is_open(&self) -> bool {
        self.slots.iter().any(|s| !s.state.is_final())
    }
}

/// Every plan the agent has drawn recently, keyed by local date. This is the
/// state that must be persisted after every [`Scheduler`] call that changed it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanBook {
    pub plans: BTreeMap<NaiveDate, DayPlan>,
}

impl PlanBook {
    pub fn slot_mut(&mut self, day: NaiveDate, index: u8) -> Option<&mut Slot> {
        self.plans
            .get_mut(&day)
            .and_then(|p| p.slots.iter_mut().find(|s| s.index == index))
    }
}

/// Identifies a slot for the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotRef {
    pub day: NaiveDate,
    pub index: u8,
    pub event_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Take the detailed log for this slot now.
    Capture(SlotRef),
    /// Report this slot as missed (once; the plan already says so).
    Missed {
        slot: SlotRef,
        reason: MissedReason,
        detail: Option<String>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Poll {
    pub actions: Vec<Action>,
    /// Poll again no later than this.
    pub next_wake: Option<DateTime<Utc>>,
    /// The book changed: persist it.
    pub changed: bool,
}

/// The event id of a slot: the same for the same installation, date and slot,
/// however often the plan is drawn.
pub fn slot_event_id(install_id: Uuid, day: NaiveDate, index: u8) -> Uuid {
    Uuid::new_v5(&install_id, format!("detailed-log/{day}/{index}").as_bytes())
}

/// The real instant of a local date and time. In a DST gap, the first valid
/// instant after it; in a fold, the earlier (`earliest`) or later instant.
pub fn local_instant<Z: TimeZone>(tz: &Z, day: NaiveDate, time: NaiveTime, earliest: bool) -> DateTime<Utc> {
    let mut naive = day.and_time(time);
    // Gaps are at most a few hours; step forward a minute at a time.
    for _ in 0..(24 * 60) {
        match tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, b) => {
                return if earliest { a } else { b }.with_timezone(&Utc);
            }
            LocalResult::None => naive += Duration::minutes(1),
        }
    }
    // No zone has a day-long gap; fall back to reading the time as UTC.
    Utc.from_utc_datetime(&day.and_time(time))
}

pub struct Scheduler<R> {
    config: ScheduleConfig,
    install_id: Uuid,
    rng: R,
}

impl<R: Rng> Scheduler<R> {
    pub fn new(config: ScheduleConfig, install_id: Uuid, rng: R) -> Self {
        Self {
            config,
            install_id,
            rng,
        }
    }

    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// A new policy: days already planned keep their plan (a day has exactly
    /// the logs it was planned with); the next days follow the new settings.
    pub fn set_config(&mut self, config: ScheduleConfig) {
        self.config = config;
    }

    /// The real instants of `day`'s window in `tz`.
    pub fn window<Z: TimeZone>(&self, tz: &Z, day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = local_instant(tz, day, self.config.window_start, true);
        let end = local_instant(tz, day, self.config.window_end, false);
        (start, end.max(start))
    }

    fn draw(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> DateTime<Utc> {
        draw_in(&mut self.rng, from, to)
    }

    fn new_plan<Z: TimeZone>(&mut self, tz: &Z, day: NaiveDate, now: DateTime<Utc>) -> DayPlan {
        let (window_start, window_end) = self.window(tz, day);
        let from = window_start.max(now);
        let slots = (0..self.config.per_day)
            .map(|index| {
                let event_id = slot_event_id(self.install_id, day, index);
                if from >= window_end {
                    Slot {
                        index,
                        event_id,
                        due: window_end,
                        state: SlotState::Missed {
                            reason: MissedReason::NotRunning,
                            detail: None,
                        },
                        redraws: 0,
                        capture_failures: 0,
                        last_error: None,
                    }
                } else {
                    Slot {
                        index,
                        event_id,
                        due: self.draw(from, window_end),
                        state: SlotState::Pending,
                        redraws: 0,
                        capture_failures: 0,
                        last_error: None,
                    }
                }
            })
            .collect();
        DayPlan {
            day,
            window_start,
            window_end,
            slots,
        }
    }

    /// Bring the plans up to date at `now` and say what to do.
    pub fn poll<Z: TimeZone>(
        &mut self,
        book: &mut PlanBook,
        now: DateTime<Utc>,
        tz: &Z,
        paused: bool,
    ) -> Poll {
        let mut poll = Poll::default();
        let today = now.with_timezone(tz).date_naive();

        // Working days since the last plan on which the agent never ran.
        if let Some(&last) = book.plans.keys().next_back() {
            let first = (last + Duration::days(1)).max(today - Duration::days(BACKFILL_DAYS));
            let mut day = first;
            while day < today {
                if self.config.days.contains(day.weekday()) && !book.plans.contains_key(&day) {
                    // Drawn "after the end": every slot is missed, NotRunning.
                    let (_, end) = self.window(tz, day);
                    let plan = self.new_plan(tz, day, end.max(now));
                    for s in &plan.slots {
                        poll.actions.push(missed_action(plan.day, s));
                    }
                    book.plans.insert(day, plan);
                    poll.changed = true;
                }
                day += Duration::days(1);
            }
        }

        if self.config.days.contains(today.weekday()) && !book.plans.contains_key(&today) {
            let plan = self.new_plan(tz, today, now);
            for s in plan.slots.iter().filter(|s| s.state.is_final()) {
                poll.actions.push(missed_action(plan.day, s));
            }
            book.plans.insert(today, plan);
            poll.changed = true;
        }

        let grace = self.config.grace;
        for plan in book.plans.values_mut().filter(|p| p.is_open()) {
            let (day, end) = (plan.day, plan.window_end);
            for slot in plan.slots.iter_mut() {
                if slot.state.is_final() {
                    continue;
                }
                if now >= end {
                    let reason = if slot.capture_failures > 0 {
                        MissedReason::CaptureFailed
                    } else if slot.state == SlotState::Deferred || paused {
                        MissedReason::Paused
                    } else {
                        MissedReason::NotRunning
                    };
                    slot.state = SlotState::Missed {
                        reason,
                        detail: slot.last_error.clone(),
                    };
                    poll.actions.push(missed_action(day, slot));
                    poll.changed = true;
                    continue;
                }
                match slot.state {
                    SlotState::Deferred if !paused => {
                        slot.due = draw_in(&mut self.rng, now, end);
                        slot.state = SlotState::Pending;
                        slot.redraws += 1;
                        poll.changed = true;
                    }
                    SlotState::Pending if now >= slot.due => {
                        if now - slot.due > grace {
                            // Slept through it (or the agent was not running).
                            slot.due = draw_in(&mut self.rng, now, end);
                            slot.redraws += 1;
                            poll.changed = true;
                        } else if paused {
                            slot.state = SlotState::Deferred;
                            poll.changed = true;
                        } else {
                            poll.actions.push(Action::Capture(SlotRef {
                                day,
                                index: slot.index,
                                event_id: slot.event_id,
                            }));
                        }
                    }
                    _ => {}
                }
                match slot.state {
                    SlotState::Pending => wake(&mut poll, slot.due.max(now)),
                    // Deferred: only the end of the window (or a resume) matters.
                    _ => wake(&mut poll, end),
                }
            }
        }

        // The next local day starts a new plan.
        let tomorrow = today + Duration::days(1);
        wake(&mut poll, local_instant(tz, tomorrow, NaiveTime::MIN, true));

        let keep_from = today - Duration::days(KEEP_DAYS);
        let before = book.plans.len();
        book.plans.retain(|d, p| *d >= keep_from || p.is_open());
        poll.changed |= book.plans.len() != before;
        poll
    }

    /// The log for `slot` is in the outbox.
    pub fn taken(&mut self, book: &mut PlanBook, slot: SlotRef, at: DateTime<Utc>) {
        if let Some(s) = book.slot_mut(slot.day, slot.index) {
            if !s.state.is_final() {
                s.state = SlotState::Taken { at };
            }
        }
    }

    /// The capture for `slot` failed; try again later or give up.
    pub fn capture_failed(
        &mut self,
        book: &mut PlanBook,
        slot: SlotRef,
        now: DateTime<Utc>,
        error: String,
    ) -> Option<Action> {
        let max = self.config.max_capture_failures;
        let retry = self.config.capture_retry;
        let plan = book.plans.get_mut(&slot.day)?;
        let end = plan.window_end;
        let s = plan.slots.iter_mut().find(|s| s.index == slot.index)?;
        if s.state.is_final() {
            return None;
        }
        s.capture_failures = s.capture_failures.saturating_add(1);
        s.last_error = Some(error);
        let next = now + retry;
        if s.capture_failures >= max || next >= end {
            s.state = SlotState::Missed {
                reason: MissedReason::CaptureFailed,
                detail: s.last_error.clone(),
            };
            return Some(missed_action(slot.day, s));
        }
        // A retry is not a redraw: it keeps the grace check from firing.
        s.due = next;
        None
    }
}

fn draw_in<R: Rng>(rng: &mut R, from: DateTime<Utc>, to: DateTime<Utc>) -> DateTime<Utc> {
    let span = (to - from).num_microseconds().unwrap_or(i64::MAX);
    if span <= 0 {
        return from;
    }
    from + Duration::microseconds(rng.random_range(0..span))
}

fn wake(poll: &mut Poll, at: DateTime<Utc>) {
    poll.next_wake = Some(poll.next_wake.map_or(at, |w| w.min(at)));
}

fn missed_action(day: NaiveDate, s: &Slot) -> Action {
    let (reason, detail) = match &s.state {
        SlotState::Missed { reason, detail } => (*reason, detail.clone()),
        _ => (MissedReason::NotRunning, None),
    };
    Action::Missed {
        slot: SlotRef {
            day,
            index: s.index,
            event_id: s.event_id,
        },
        reason,
        detail,
    }
}

/// "N of M sent today" for status displays: never the planned times.
pub fn today_summary(book: &PlanBook, today: NaiveDate, per_day: u8) -> (usize, u8) {
    (book.plans.get(&today).map_or(0, DayPlan::taken), per_day)
}
