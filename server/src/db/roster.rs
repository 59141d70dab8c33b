//! Every employee with its presence, kept in memory (PostgreSQL).
//!
//! The admin list ("last seen" for every employee) used to read all rows of
//! `employees` each time: 10–20 ms for 10,000 employees on a slow machine,
//! most of it producing and decoding rows that had not changed since the
//! last time. Instead the store keeps the rows it has read, and each read
//! fetches only the rows written since the previous one.
//!
//! "Since" is a transaction number, not a time. Every row records the
//! transaction that last wrote it (`written_by`, set by a trigger, migration
//! 0008), and every read notes its snapshot's xmin: the oldest transaction
//! still running when it read. Each transaction older than that had finished,
//! so its writes were in that read; each other one — running then, or begun
//! since — has a number at least that. The next read therefore asks for the
//! rows written by transactions from that number on: a row may come twice,
//! none is missed, whatever order transactions commit in and whichever
//! process wrote them (another server, the CLI, a person in psql). After a
//! read, the copy is the table as that read's snapshot saw it.
//!
//! Employees are disabled, never deleted, so rows only come and change.

use std::collections::BTreeMap;

use tokio::sync::{Mutex, MutexGuard};

use super::EmployeeRow;

/// The employees as last read, and from which transaction to read again.
#[derive(Debug, Default)]
pub struct Roster {
    state: Mutex<RosterState>,
}

impl Roster {
    /// One reader at a time brings the copy up to date; the others wait and
    /// then find little or nothing new.
    pub async fn lock(&self) -> MutexGuard<'_, RosterState> {
        self.state.lock().await
    }
}

#[derive(Debug, Default)]
pub struct RosterState {
    rows: BTreeMap<i64, EmployeeRow>,
    /// Rows written by this transaction or a later one may have changed
    /// since the last read; 0 before the first read (everything).
    since: i64,
}

impl RosterState {
    pub fn since(&self) -> i64 {
        self.since
    }

    /// What a read returned: the rows written from [`Self::since`] on, as its
    /// snapshot saw them, and that snapshot's xmin.
    pub fn apply(&mut self, snapshot_xmin: i64, changed: impl IntoIterator<Item = EmployeeRow>) {
        for row in changed {
            self.rows.insert(row.who.id, row);
        }
        self.since = snapshot_xmin;
    }

    /// Every employee, by id.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &EmployeeRow> {
        self.rows.values()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone as _, Utc};
    use wfh_protocol::EmployeeRef;

    use super::*;

    fn row(id: i64, username: &str, active: bool) -> EmployeeRow {
        EmployeeRow {
            who: EmployeeRef {
                id,
                username: username.into(),
                display_name: None,
            },
            active,
            created_at: Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap(),
            team: None,
            presence: None,
        }
    }

    #[test]
    fn a_read_adds_new_rows_replaces_changed_ones_and_moves_since() {
        let mut state = RosterState::default();
        assert_eq!(state.since(), 0);
        state.apply(100, [row(2, "grace", true), row(1, "ada", true)]);
        assert_eq!(state.since(), 100);
        state.apply(104, [row(2, "grace", false), row(3, "alan", true)]);
        let rows: Vec<_> = state
            .rows()
            .map(|r| (r.who.id, r.who.username.as_str(), r.active))
            .collect();
        assert_eq!(rows, [(1, "ada", true), (2, "grace", false), (3, "alan", true)]);
        assert_eq!(state.since(), 104);
        // A read that found nothing new still moves on.
        state.apply(110, []);
        assert_eq!((state.rows().len(), state.since()), (3, 110));
    }
}
