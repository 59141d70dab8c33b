//! Presence not yet written to the employees' rows (PostgreSQL).
//!
//! Moving an employee's "last seen" forward inside every heartbeat commit
//! cost a fifth of PostgreSQL's CPU per heartbeat (docs/benchmarks.md). So a
//! committed heartbeat moves the employee's presence forward here, in
//! memory, and a flusher writes what changed once a second: one row per
//! employee heard from in that second, however many heartbeats came.
//!
//! Readers see no difference: they take a [`PendingPresence::snapshot`]
//! *before* reading the rows and let the newer of the two win, so an entry
//! that a flush writes and removes meanwhile is in one or the other. After a
//! crash the entries are gone but their heartbeats are not: start-up moves
//! each employee's row forward to its newest stored heartbeat
//! (`PgStore::recover_presence`).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use wfh_protocol::HeartbeatStatus;

use super::{NewHeartbeat, Presence};

/// An employee's newest heartbeat, as the employees' row keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub device_id: i64,
    pub status: HeartbeatStatus,
    pub hostname: String,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
}

impl Seen {
    fn of(h: &NewHeartbeat) -> Self {
        Self {
            device_id: h.device_id,
            status: h.status,
            hostname: h.hostname.clone(),
            occurred_at: h.timestamp.with_timezone(&Utc),
            received_at: h.received_at,
        }
    }

    pub fn presence(&self, employee_id: i64) -> Presence {
        Presence {
            employee_id,
            status: self.status,
            hostname: self.hostname.clone(),
            occurred_at: self.occurred_at,
        }
    }
}

/// Newest heartbeat per employee, committed but not yet on the employee's row.
#[derive(Debug, Default)]
pub struct PendingPresence {
    seen: Mutex<HashMap<i64, Seen>>,
}

impl PendingPresence {
    /// Heartbeats just committed: each moves its employee forward if newer
    /// (by the agent's time, as on the row) than what is pending.
    pub fn record<'a>(&self, committed: impl IntoIterator<Item = &'a NewHeartbeat>) {
        let mut seen = self.lock();
        for h in committed {
            let at = h.timestamp.with_timezone(&Utc);
            match seen.get_mut(&h.employee_id) {
                Some(cur) if cur.occurred_at >= at => {}
                Some(cur) => *cur = Seen::of(h),
                None => {
                    seen.insert(h.employee_id, Seen::of(h));
                }
            }
        }
    }

    /// A copy of what is pending, for a reader or a flush.
    pub fn snapshot(&self) -> HashMap<i64, Seen> {
        self.lock().clone()
    }

    /// What is pending for one employee.
    pub fn get(&self, employee_id: i64) -> Option<Seen> {
        self.lock().get(&employee_id).cloned()
    }

    /// After `flushed` is committed: forget the entries that have not moved
    /// since (those that have stay for the next flush).
    pub fn settle(&self, flushed: &HashMap<i64, Seen>) {
        let mut seen = self.lock();
        for (id, written) in flushed {
            if seen.get(id) == Some(written) {
                seen.remove(id);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Seen>> {
        // Every critical section leaves the map whole, so a poisoned lock's
        // data is still good.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The newer of a row's presence and a pending one.
pub fn newer(row: Option<Presence>, pending: Option<&Seen>, employee_id: i64) -> Option<Presence> {
    match (row, pending) {
        (Some(r), Some(p)) if r.occurred_at >= p.occurred_at => Some(r),
        (_, Some(p)) => Some(p.presence(employee_id)),
        (r, None) => r,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, FixedOffset, TimeZone as _};
    use uuid::Uuid;

    use super::*;

    fn hb(employee_id: i64, device_id: i64, minute: i64) -> NewHeartbeat {
        let base = Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap();
        NewHeartbeat {
            event_id: Uuid::new_v4(),
            employee_id,
            device_id,
            username: "ada".into(),
            hostname: format!("host{device_id}"),
            status: HeartbeatStatus::Online,
            timestamp: (base + Duration::minutes(minute))
                .with_timezone(&FixedOffset::east_opt(3600).unwrap()),
            received_at: base + Duration::minutes(minute + 1),
        }
    }

    #[test]
    fn the_newest_heartbeat_by_agent_time_wins_whatever_the_order() {
        let pending = PendingPresence::default();
        pending.record(&[hb(1, 10, 5), hb(1, 11, 9), hb(2, 20, 1)]);
        pending.record(&[hb(1, 10, 7)]); // older than the pending one: a backlog
        assert_eq!(pending.snapshot().len(), 2);
        let one = pending.get(1).unwrap();
        assert_eq!((one.device_id, one.hostname.as_str()), (11, "host11"));
        assert_eq!(pending.get(2).unwrap().device_id, 20);
        pending.record(&[hb(1, 10, 12)]);
        assert_eq!(pending.get(1).unwrap().device_id, 10);
    }

    #[test]
    fn settling_a_flush_keeps_what_moved_meanwhile() {
        let pending = PendingPresence::default();
        pending.record(&[hb(1, 10, 5), hb(2, 20, 5)]);
        let flushed = pending.snapshot();
        pending.record(&[hb(2, 20, 6)]); // arrives while the flush commits
        pending.settle(&flushed);
        assert!(pending.get(1).is_none());
        assert_eq!(
            pending.get(2).unwrap().occurred_at,
            flushed[&2].occurred_at + Duration::minutes(1)
        );
        pending.settle(&pending.snapshot());
        assert!(pending.snapshot().is_empty());
    }

    #[test]
    fn readers_take_the_newer_of_row_and_pending() {
        let pending = PendingPresence::default();
        pending.record(&[hb(1, 10, 5)]);
        let p = pending.get(1).unwrap();
        let row = |minute| {
            Some(Presence {
                employee_id: 1,
                status: HeartbeatStatus::Idle,
                hostname: "row".into(),
                occurred_at: p.occurred_at + Duration::minutes(minute),
            })
        };
        assert_eq!(newer(row(1), Some(&p), 1).unwrap().hostname, "row");
        assert_eq!(newer(row(0), Some(&p), 1).unwrap().hostname, "row");
        assert_eq!(newer(row(-1), Some(&p), 1).unwrap().hostname, "host10");
        assert_eq!(newer(None, Some(&p), 1).unwrap().hostname, "host10");
        assert_eq!(newer(row(-1), None, 1).unwrap().hostname, "row");
        assert!(newer(None, None, 1).is_none());
    }
}
