//! Connections the heartbeat writers keep from one batch to the next.
//!
//! sqlx's pool makes a round trip to PostgreSQL (an empty `Sync`) when it
//! hands out an idle connection and another when it takes one back: two
//! wake-ups of a backend per batch, the first on every heartbeat's way to
//! its answer (under load, 6 % of the server's CPU by `perf`, and about a
//! sixth of PostgreSQL's per heartbeat: docs/benchmarks.md). A writer takes
//! its connection from here instead: one a batch gave back, as it was left,
//! or else one from the pool; and it gives it back only when the batch's
//! statements left it usable.
//!
//! A kept connection can die while it waits (PostgreSQL restarted, an
//! administrator ended the backend). The pool's round trip used to find
//! that out before a batch; now the batch finds it, and [`retry_on_new`]
//! says to send it once more on a new connection. A retry is safe: if the
//! first attempt did commit, the second meets its own event ids and answers
//! them as duplicates of themselves.

use std::sync::Mutex;

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

#[derive(Debug)]
pub struct KeptConnections {
    pool: PgPool,
    idle: Mutex<Vec<PoolConnection<Postgres>>>,
    /// At most this many are kept, so that the rest of the pool stays free
    /// for reads and the log writers.
    most: usize,
}

/// A connection taken for a batch.
pub struct Taken {
    pub conn: PoolConnection<Postgres>,
    /// It waited here since an earlier batch, untested.
    pub kept: bool,
}

impl KeptConnections {
    pub fn new(pool: PgPool, most: usize) -> Self {
        Self {
            pool,
            idle: Mutex::default(),
            most,
        }
    }

    /// A kept connection (no round trip), or else one from the pool.
    pub async fn take(&self) -> Result<Taken, sqlx::Error> {
        if let Some(conn) = self.idle.lock().expect("kept connections").pop() {
            return Ok(Taken { conn, kept: true });
        }
        Ok(Taken {
            conn: self.pool.acquire().await?,
            kept: false,
        })
    }

    /// Keep `conn` for the next batch unless its last statement failed in a
    /// way that leaves it unusable (`failure`); then close it.
    pub fn give_back(&self, mut conn: PoolConnection<Postgres>, failure: Option<&sqlx::Error>) {
        if failure.is_some_and(|e| !usable_after(e)) {
            conn.close_on_drop();
            return;
        }
        let mut idle = self.idle.lock().expect("kept connections");
        if idle.len() < self.most {
            idle.push(conn);
        }
        // Otherwise dropped: back to the pool.
    }
}

/// Whether a batch that failed with `e` on a connection that had been kept
/// should go again on a new one: the connection itself failed, not the
/// statement.
pub fn retry_on_new(taken: &Taken, failure: Option<&sqlx::Error>) -> bool {
    taken.kept && failure.is_some_and(|e| !usable_after(e))
}

/// A connection is still usable after an error PostgreSQL reported about a
/// statement (a duplicate key, a missing partition), not after a broken
/// socket, a protocol error, or PostgreSQL ending the session (SQLSTATE
/// classes 08, connection exception, and 57P, operator intervention).
fn usable_after(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => !db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}
