//! The "exactly two a day" promise, simulated: a year per seed, in time zones
//! with DST, with the machine sleeping, crashing, being switched off for days,
//! the clock jumping and the engine waking late. Time and randomness are
//! injected; nothing here sleeps.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;
use wfh_agent::scheduler::{Action, PlanBook, ScheduleConfig, Scheduler, WorkingDays};
use wfh_protocol::MissedReason;

const ZONES: [Tz; 6] = [
    chrono_tz::Europe::London,
    chrono_tz::America::New_York,
    chrono_tz::Australia::Lord_Howe, // 30-minute DST shift
    chrono_tz::Asia::Kolkata,        // no DST, +05:30
    chrono_tz::America::Santiago,    // southern hemisphere DST
    chrono_tz::Pacific::Chatham,     // +12:45 / +13:45
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Down {
    /// Suspended: memory kept, no polls.
    Sleep,
    /// Off or crashed: the agent restarts from what it persisted.
    Off,
}

/// What the server ends up with (idempotent on event id, as the real one).
#[derive(Default)]
struct Server {
    logs: HashMap<Uuid, (NaiveDate, DateTime<Utc>)>,
    missed: HashMap<Uuid, (NaiveDate, MissedReason)>,
}

impl Server {
    fn logs_per_day(&self) -> BTreeMap<NaiveDate, Vec<DateTime<Utc>>> {
        let mut by_day: BTreeMap<NaiveDate, Vec<DateTime<Utc>>> = BTreeMap::new();
        for (day, at) in self.logs.values() {
            by_day.entry(*day).or_default().push(*at);
        }
        by_day
    }
}

struct Run {
    server: Server,
    /// Plans as the agent last persisted them.
    disk: PlanBook,
    /// Working days with no interruption from before the window to its end.
    up_through_window: HashSet<NaiveDate>,
    windows: HashMap<NaiveDate, (DateTime<Utc>, DateTime<Utc>)>,
}

/// One simulated year. `downs` are (start, end, kind) in true time.
fn simulate(seed: u64, tz: Tz, config: ScheduleConfig, start: DateTime<Utc>, days: i64, chaos: bool) -> Run {
    let mut rng = StdRng::seed_from_u64(seed);
    let end = start + Duration::days(days);
    let install = Uuid::from_u128(rng.random());
    let mut scheduler = Scheduler::new(config.clone(), install, StdRng::seed_from_u64(seed ^ 0x5eed));

    // The machine's year: sleeps, crashes, switched off over weekends and holidays.
    let mut downs: Vec<(DateTime<Utc>, DateTime<Utc>, Down)> = Vec::new();
    if chaos {
        let mut t = start;
        while t < end {
            t += Duration::minutes(rng.random_range(30..3 * 24 * 60));
            let (len, kind) = match rng.random_range(0..10) {
                0..=4 => (Duration::minutes(rng.random_range(5..14 * 60)), Down::Sleep),
                5..=7 => (Duration::minutes(rng.random_range(0..60)), Down::Off),
                8 => (Duration::hours(rng.random_range(12..96)), Down::Off),
                _ => (Duration::days(rng.random_range(3..15)), Down::Sleep),
            };
            downs.push((t, t + len, kind));
            t += len;
        }
    }

    let mut run = Run {
        server: Server::default(),
        disk: PlanBook::default(),
        up_through_window: HashSet::new(),
        windows: HashMap::new(),
    };
    let mut book = PlanBook::default();
    // The wall clock may be off from true time (skew), and jumps now and then.
    let mut skew = Duration::zero();
    let mut down_idx = 0;
    let mut t = start;
    let mut disturbed: HashSet<NaiveDate> = HashSet::new();
    let disturb = |from: DateTime<Utc>, to: DateTime<Utc>, set: &mut HashSet<NaiveDate>| {
        let mut d = from.with_timezone(&tz).date_naive() - Duration::days(1);
        while d <= to.with_timezone(&tz).date_naive() {
            set.insert(d);
            d += Duration::days(1);
        }
    };

    while t < end {
        if let Some(&(a, b, kind)) = downs.get(down_idx) {
            if t >= a {
                disturb(a, b, &mut disturbed);
                t = t.max(b);
                down_idx += 1;
                if kind == Down::Off {
                    book = run.disk.clone();
                }
                continue;
            }
        }
        if chaos && rng.random_ratio(1, 2000) {
            // NTP correction or a hand-set clock.
            let jump = Duration::minutes(rng.random_range(-90..180));
            disturb(t, t + Duration::hours(4), &mut disturbed);
            skew += jump;
        }
        let now = t + skew;
        let poll = scheduler.poll(&mut book, now, &tz, false);
        if poll.changed {
            run.disk = book.clone();
        }
        for action in poll.actions {
            match action {
                Action::Capture(slot) => {
                    let window = {
                        let p = &book.plans[&slot.day];
                        (p.window_start, p.window_end)
                    };
                    run.windows.insert(slot.day, window);
                    assert!(
                        now >= window.0 && now < window.1,
                        "seed {seed}: capture at {now} outside {window:?}"
                    );
                    match if chaos { rng.random_range(0..40) } else { 99 } {
                        // Crashed before the log reached the outbox.
                        0 => {
                            disturb(t, t, &mut disturbed);
                            book = run.disk.clone();
                        }
                        // Sent, then crashed before the plan was saved.
                        1 => {
                            disturb(t, t, &mut disturbed);
                            run.server.logs.entry(slot.event_id).or_insert((slot.day, now));
                            book = run.disk.clone();
                        }
                        _ => {
                            run.server.logs.entry(slot.event_id).or_insert((slot.day, now));
                            scheduler.taken(&mut book, slot, now);
                            run.disk = book.clone();
                        }
                    }
                }
                Action::Missed { slot, reason, .. } => {
                    run.server
                        .missed
                        .entry(slot.event_id)
                        .or_insert((slot.day, reason));
                }
            }
        }
        let mut next = poll.next_wake.expect("always a next wake") - skew;
        // Timers fire a little late; the engine also wakes every 30 s at most.
        next += Duration::seconds(if chaos { rng.random_range(0..60) } else { 0 });
        next = next.min(t + Duration::minutes(30)).max(t + Duration::seconds(1));
        t = next;
    }

    // Days the agent ran through, from just before the window to its end.
    let mut day = start.with_timezone(&tz).date_naive() + Duration::days(1);
    let last = end.with_timezone(&tz).date_naive() - Duration::days(1);
    while day < last {
        if config.days.contains(day.weekday()) && !disturbed.contains(&day) {
            run.up_through_window.insert(day);
        }
        day += Duration::days(1);
    }
    run
}

fn check_year(seed: u64, tz: Tz, config: &ScheduleConfig, run: &Run, chaos: bool) {
    let per_day = usize::from(config.per_day);
    let logs = run.server.logs_per_day();
    for (day, times) in &logs {
        assert!(
            times.len() <= per_day,
            "seed {seed} {tz}: {} logs on {day}",
            times.len()
        );
        assert!(
            config.days.contains(day.weekday()),
            "seed {seed} {tz}: a log on {day}, not a working day"
        );
        let (ws, we) = run.windows[day];
        for at in times {
            assert!(
                *at >= ws && *at < we,
                "seed {seed} {tz}: {at} outside {day}'s window"
            );
            if !chaos {
                let local = at.with_timezone(&tz);
                assert_eq!(
                    local.date_naive(),
                    *day,
                    "seed {seed} {tz}: log on the wrong date"
                );
                let (s, e) = (config.window_start, config.window_end);
                assert!(
                    local.time() >= s && local.time() < e || e <= s,
                    "seed {seed} {tz}: {local}"
                );
            }
        }
    }
    for day in &run.up_through_window {
        let n = logs.get(day).map_or(0, Vec::len);
        assert_eq!(n, per_day, "seed {seed} {tz}: up all day on {day} but {n} logs");
    }
    // Every slot of every working day is accounted for: sent or reported missed.
    let mut accounted: BTreeMap<NaiveDate, usize> = BTreeMap::new();
    for (day, _) in run.server.logs.values() {
        *accounted.entry(*day).or_default() += 1;
    }
    for (day, _) in run.server.missed.values() {
        *accounted.entry(*day).or_default() += 1;
    }
    let days: Vec<_> = accounted.keys().copied().collect();
    for day in days.iter().take(days.len().saturating_sub(2)) {
        assert_eq!(
            accounted[day], per_day,
            "seed {seed} {tz}: {day} has {} slots sent or reported missed",
            accounted[day]
        );
    }
}

fn year_start(rng: &mut StdRng) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::hours(rng.random_range(0..24 * 200))
}

#[test]
fn a_year_of_sleeps_crashes_and_clock_jumps_never_gives_a_third_log() {
    for seed in 0..24u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let tz = ZONES[seed as usize % ZONES.len()];
        let config = ScheduleConfig::default();
        let run = simulate(seed, tz, config.clone(), year_start(&mut rng), 366, true);
        check_year(seed, tz, &config, &run, true);
        assert!(
            !run.server.logs.is_empty(),
            "seed {seed}: the year produced no logs at all"
        );
        assert!(
            run.server
                .missed
                .values()
                .any(|(_, r)| *r == MissedReason::NotRunning),
            "seed {seed}: a year with days off reports missed slots"
        );
    }
}

#[test]
fn an_agent_up_all_year_takes_exactly_two_every_working_day_and_none_on_weekends() {
    for seed in 100..112u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let tz = ZONES[seed as usize % ZONES.len()];
        let config = ScheduleConfig::default();
        let run = simulate(seed, tz, config.clone(), year_start(&mut rng), 366, false);
        check_year(seed, tz, &config, &run, false);
        assert!(
            run.up_through_window.len() >= 250,
            "{}",
            run.up_through_window.len()
        );
        assert!(
            run.server.missed.is_empty(),
            "seed {seed}: nothing is missed when always up"
        );
    }
}

#[test]
fn windows_across_dst_changes_are_kept_on_23_and_25_hour_days() {
    // Every day a working day, a window across the 01:00/02:00 changes.
    let config = ScheduleConfig {
        days: WorkingDays::EVERY_DAY,
        window_start: NaiveTime::from_hms_opt(0, 30, 0).unwrap(),
        window_end: NaiveTime::from_hms_opt(3, 30, 0).unwrap(),
        per_day: 3,
        ..ScheduleConfig::default()
    };
    for (seed, tz) in [
        (7u64, chrono_tz::Europe::London),
        (8, chrono_tz::America::New_York),
    ] {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let run = simulate(seed, tz, config.clone(), start, 366, false);
        check_year(seed, tz, &config, &run, false);
        // The short and the long night: 2 and 4 real hours.
        let spans: HashSet<i64> = run
            .windows
            .values()
            .map(|(s, e)| (*e - *s).num_minutes())
            .collect();
        assert!(
            spans.contains(&120) && spans.contains(&240) && spans.contains(&180),
            "{spans:?}"
        );
    }
}

#[test]
fn log_times_are_spread_uniformly_over_the_window() {
    // Pool where in the window each log fell, over many seeds, and compare with
    // the uniform distribution (Kolmogorov-Smirnov, 0.1 % level) and per hour.
    let mut fractions = Vec::new();
    for seed in 0..160u64 {
        let tz = ZONES[seed as usize % ZONES.len()];
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let run = simulate(seed, tz, ScheduleConfig::default(), start, 42, false);
        for (day, at) in run.server.logs.values() {
            let (s, e) = run.windows[day];
            fractions.push((*at - s).num_seconds() as f64 / (e - s).num_seconds() as f64);
        }
    }
    let n = fractions.len() as f64;
    assert!(n > 9000.0, "{n}");
    fractions.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let d = fractions
        .iter()
        .enumerate()
        .map(|(i, x)| ((i + 1) as f64 / n - x).abs().max((x - i as f64 / n).abs()))
        .fold(0.0, f64::max);
    assert!(d < 1.95 / n.sqrt(), "KS distance {d} for {n} samples");
    let mut bins = [0f64; 14];
    for x in &fractions {
        bins[((x * 14.0) as usize).min(13)] += 1.0;
    }
    let expected = n / 14.0;
    let chi2: f64 = bins.iter().map(|o| (o - expected).powi(2) / expected).sum();
    // 13 degrees of freedom: 34.5 is the 0.1 % critical value.
    assert!(chi2 < 34.5, "chi-squared {chi2}: {bins:?}");
}

#[test]
fn a_lost_plan_redraws_the_same_event_ids() {
    let install = Uuid::from_u128(42);
    let tz = chrono_tz::Europe::Paris;
    let now = Utc.with_ymd_and_hms(2026, 6, 3, 6, 0, 0).unwrap(); // a Wednesday, 08:00 in Paris
    let ids = |seed| {
        let mut s = Scheduler::new(ScheduleConfig::default(), install, StdRng::seed_from_u64(seed));
        let mut book = PlanBook::default();
        s.poll(&mut book, now, &tz, false);
        book.plans
            .values()
            .next()
            .unwrap()
            .slots
            .iter()
            .map(|s| (s.event_id, s.due))
            .collect::<Vec<_>>()
    };
    let (a, b) = (ids(1), ids(2));
    assert_eq!(
        a.iter().map(|x| x.0).collect::<Vec<_>>(),
        b.iter().map(|x| x.0).collect::<Vec<_>>()
    );
    assert_ne!(a, b, "the times are drawn anew, the ids are not");
}

#[test]
fn a_slot_due_while_paused_waits_and_is_missed_if_the_pause_outlasts_the_window() {
    let tz = chrono_tz::UTC;
    let day = NaiveDate::from_ymd_opt(2026, 6, 3).unwrap();
    let mut s = Scheduler::new(ScheduleConfig::default(), Uuid::nil(), StdRng::seed_from_u64(3));
    let mut book = PlanBook::default();
    let morning = tz.from_utc_datetime(&day.and_hms_opt(7, 59, 0).unwrap()).to_utc();
    s.poll(&mut book, morning, &tz, true);
    let dues: Vec<_> = book.plans[&day].slots.iter().map(|s| s.due).collect();
    for due in dues {
        let poll = s.poll(&mut book, due, &tz, true);
        assert!(poll.actions.is_empty(), "nothing is captured while paused");
    }
    let evening = tz.from_utc_datetime(&day.and_hms_opt(22, 0, 0).unwrap()).to_utc();
    let poll = s.poll(&mut book, evening, &tz, true);
    let reasons: Vec<_> = poll
        .actions
        .iter()
        .map(|a| match a {
            Action::Missed { reason, .. } => *reason,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(reasons, [MissedReason::Paused, MissedReason::Paused]);
}

#[test]
fn repeated_capture_failures_end_as_missed_with_the_error() {
    let tz = chrono_tz::UTC;
    let day = NaiveDate::from_ymd_opt(2026, 6, 3).unwrap();
    let mut s = Scheduler::new(ScheduleConfig::default(), Uuid::nil(), StdRng::seed_from_u64(4));
    let mut book = PlanBook::default();
    let mut now = tz.from_utc_datetime(&day.and_hms_opt(8, 0, 0).unwrap()).to_utc();
    s.poll(&mut book, now, &tz, false);
    now = book.plans[&day].slots[0].due.min(book.plans[&day].slots[1].due);
    let mut outcome = None;
    for _ in 0..10 {
        let poll = s.poll(&mut book, now, &tz, false);
        let Some(Action::Capture(slot)) = poll.actions.first().cloned() else {
            panic!("expected a capture: {poll:?}")
        };
        outcome = s.capture_failed(&mut book, slot, now, "no display".into());
        if outcome.is_some() {
            break;
        }
        now += Duration::minutes(1);
    }
    match outcome {
        Some(Action::Missed { reason, detail, .. }) => {
            assert_eq!(reason, MissedReason::CaptureFailed);
            assert_eq!(detail.as_deref(), Some("no display"));
        }
        other => panic!("{other:?}"),
    }
}
