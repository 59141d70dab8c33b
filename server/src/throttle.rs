//! Limits on what one client may ask, kept in memory with bounded size.
//!
//! * [`FailureThrottle`]: guesses at enrolment codes and admin tokens. Only
//!   failures count, so an office that enrols 500 laptops from behind one
//!   address is never held up; after `max` failures within `window`, every
//!   attempt from that address (right or wrong) is refused until the window
//!   ends.
//! * [`DeviceRate`]: heartbeats per device, as a token bucket. Its burst
//!   covers an outbox catching up after days offline; a device that keeps
//!   sending far faster than the policy's interval is refused.
//!
//! Both answer with the seconds to wait, for `Retry-After`. Time comes from
//! the injected clock, so tests move it instead of sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};

use crate::clock::Clock;

/// Most addresses or devices remembered; past it, entries whose time is up
/// go first, then (under a flood of new addresses) everything.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: DateTime<Utc>,
}

/// Failed attempts per client address in a fixed window.
#[derive(Debug)]
pub struct FailureThrottle {
    max: u32,
    window: Duration,
    clock: Arc<dyn Clock>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

impl FailureThrottle {
    pub fn new(max: u32, window: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            max,
            window,
            clock,
            failures: Mutex::default(),
        }
    }

    /// `Err(seconds)` while `ip` has used up its failures.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let now = self.clock.now();
        let map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(&ip) {
            Some(f) if f.count >= self.max && now < f.since + self.window => {
                Err(seconds_until(now, f.since + self.window))
            }
            _ => Ok(()),
        }
    }

    /// Count a failed attempt from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let now = self.clock.now();
        let mut map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        bound(&mut map, |f| now >= f.since + self.window);
        let entry = map.entry(ip).or_insert(Failures { count: 0, since: now });
        if now >= entry.since + self.window {
            *entry = Failures { count: 0, since: now };
        }
        entry.count = entry.count.saturating_add(1);
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
}

/// A token bucket per device: `burst` requests at once, then one per `every`
/// (given with each request: it follows the policy in force).
#[derive(Debug)]
pub struct DeviceRate {
    burst: f64,
    clock: Arc<dyn Clock>,
    buckets: Mutex<HashMap<i64, Bucket>>,
}

impl DeviceRate {
    pub fn new(burst: u32, clock: Arc<dyn Clock>) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            clock,
            buckets: Mutex::default(),
        }
    }

    /// Take one request for `device`, or `Err(seconds)` until one is free.
    pub fn take(&self, device: i64, every: Duration) -> Result<(), u64> {
        let now = self.clock.now();
        let per_sec = 1.0 / (every.num_milliseconds().max(1) as f64 / 1000.0);
        let mut map = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let burst = self.burst;
        // A bucket that has filled up again is the same as none.
        bound(&mut map, |b| {
            b.tokens + (now - b.at).num_milliseconds() as f64 / 1000.0 * per_sec >= burst
        });
        let bucket = map.entry(device).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = (now - bucket.at).num_milliseconds().max(0) as f64 / 1000.0;
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / per_sec).ceil().max(1.0) as u64)
        }
    }
}

/// Wrong enrolment codes or admin tokens one address may try in
/// [`FAILURE_WINDOW_MINUTES`] before it must wait for the window to end.
pub const FAILURES_ALLOWED: u32 = 10;
pub const FAILURE_WINDOW_MINUTES: i64 = 15;
/// Heartbeats a device may send at once: three days offline at the default
/// five-minute interval, what an outbox catches up with in one go.
pub const HEARTBEAT_BURST: u32 = 900;
/// Past the burst, a device gets one heartbeat per this share of the
/// policy's interval: a hundred times the policy's pace, so a backlog still
/// drains quickly, while a flood is cut to a trickle.
pub const HEARTBEAT_PACE_DIVISOR: i32 = 100;

/// Every limit the server keeps.
#[derive(Debug)]
pub struct Throttles {
    pub enrolment: FailureThrottle,
    pub sign_in: FailureThrottle,
    pub heartbeats: DeviceRate,
}

impl Throttles {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let window = Duration::minutes(FAILURE_WINDOW_MINUTES);
        Self {
            enrolment: FailureThrottle::new(FAILURES_ALLOWED, window, clock.clone()),
            sign_in: FailureThrottle::new(FAILURES_ALLOWED, window, clock.clone()),
            heartbeats: DeviceRate::new(HEARTBEAT_BURST, clock),
        }
    }
}

fn seconds_until(now: DateTime<Utc>, then: DateTime<Utc>) -> u64 {
    u64::try_from((then - now).num_seconds().max(1)).unwrap_or(1)
}

/// Keep `map` under [`MAX_ENTRIES`]: drop what `done` says is finished, and
/// if that is not enough, everything.
fn bound<K: Eq + Hash, V>(map: &mut HashMap<K, V>, done: impl Fn(&V) -> bool) {
    if map.len() < MAX_ENTRIES {
        return;
    }
    map.retain(|_, v| !done(v));
    if map.len() >= MAX_ENTRIES {
        tracing::warn!(entries = map.len(), "rate limiter full: forgetting every client");
        map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn failures_block_an_address_until_the_window_ends_and_no_other() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let t = FailureThrottle::new(3, Duration::minutes(5), clock.clone());
        let (a, b): (IpAddr, IpAddr) = ("203.0.113.1".parse().unwrap(), "203.0.113.2".parse().unwrap());
        for _ in 0..3 {
            assert!(t.check(a).is_ok());
            t.failed(a);
        }
        assert_eq!(t.check(a), Err(300));
        assert!(t.check(b).is_ok());
        clock.advance(Duration::minutes(4));
        assert_eq!(t.check(a), Err(60));
        clock.advance(Duration::minutes(1));
        assert!(t.check(a).is_ok());
        t.failed(a);
        assert!(t.check(a).is_ok(), "a new window starts from nothing");
    }

    #[test]
    fn a_device_may_catch_up_in_a_burst_but_not_keep_flooding() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let r = DeviceRate::new(100, clock.clone());
        let every = Duration::seconds(3);
        for _ in 0..100 {
            assert!(r.take(1, every).is_ok());
        }
        assert_eq!(r.take(1, every), Err(3));
        assert!(r.take(2, every).is_ok(), "another device is not affected");
        clock.advance(Duration::seconds(3));
        assert!(r.take(1, every).is_ok());
        assert!(r.take(1, every).is_err());
        // At the policy's pace it never runs dry.
        for _ in 0..1000 {
            clock.advance(Duration::seconds(300));
            assert!(r.take(1, every).is_ok());
        }
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_addresses() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let t = FailureThrottle::new(3, Duration::minutes(5), clock);
        for i in 0..(MAX_ENTRIES as u32 + 10) {
            t.failed(IpAddr::from(i.to_be_bytes()));
        }
        assert!(t.failures.lock().unwrap().len() <= MAX_ENTRIES);
    }
}
