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
//! Only a connection used within [`MAX_IDLE`] is taken untested: one that
//! sat longer goes back to the pool, which tests it. A firewall or NAT
//! between the server and PostgreSQL may drop a quiet connection without
//! telling either end, and a batch sent on it would wait for TCP to give
//! up; under load a batch comes every few milliseconds, so the saving stays.
//!
//! A kept connection can still die while it waits (PostgreSQL restarted, an
//! administrator ended the backend). The pool's round trip used to find
//! that out before a batch; now the batch finds it ([`usable_after`] tells
//! a failed connection from a failed statement) and goes once more on a
//! new connection. A retry is safe: if the first attempt did commit, the
//! second meets its own event ids and answers them as duplicates of
//! themselves.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long a connection may wait here and still be taken untested.
pub const MAX_IDLE: Duration = Duration::from_secs(30);

/// Connections (`C`) given back, each with the time it was.
#[derive(Debug)]
pub struct KeptConnections<C> {
    idle: Mutex<Vec<(C, Instant)>>,
    /// At most this many are kept, so that the rest of the pool stays free
    /// for reads and the log writers.
    most: usize,
    max_idle: Duration,
}

/// A connection taken for a batch.
pub struct Taken<C> {
    pub conn: C,
    /// It waited here since an earlier batch, untested.
    pub kept: bool,
}

impl<C> KeptConnections<C> {
    pub fn new(most: usize, max_idle: Duration) -> Self {
        Self {
            idle: Mutex::default(),
            most,
            max_idle,
        }
    }

    /// The connection given back last, if it was within `max_idle`; or else
    /// one from `fresh` (the pool). Those that waited too long are dropped,
    /// which gives them back to the pool.
    pub async fn take<E>(&self, fresh: impl Future<Output = Result<C, E>>) -> Result<Taken<C>, E> {
        let (recent, stale) = {
            let mut idle = self.idle.lock().expect("kept connections");
            let now = Instant::now();
            let stale: Vec<_> = idle
                .extract_if(.., |(_, since)| now.duration_since(*since) > self.max_idle)
                .collect();
            (idle.pop(), stale)
        };
        drop(stale);
        match recent {
            Some((conn, _)) => Ok(Taken { conn, kept: true }),
            None => Ok(Taken {
                conn: fresh.await?,
                kept: false,
            }),
        }
    }

    /// Keep `conn` for the next batch (the caller has checked that it is
    /// usable), unless `most` are kept already: then it is dropped.
    pub fn give_back(&self, conn: C) {
        let mut idle = self.idle.lock().expect("kept connections");
        if idle.len() < self.most {
            idle.push((conn, Instant::now()));
        }
    }
}

/// A connection is still usable after an error PostgreSQL reported about a
/// statement (a duplicate key, a missing partition), not after a broken
/// socket, a protocol error, or PostgreSQL ending the session (SQLSTATE
/// classes 08, connection exception, and 57P, operator intervention).
pub fn usable_after(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => !db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn new_one(n: u32) -> Result<u32, ()> {
        Ok(n)
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_taken_again_only_while_recently_used() {
        let kept = KeptConnections::new(2, Duration::from_secs(30));
        let first = kept.take(new_one(1)).await.unwrap();
        assert!(!first.kept, "nothing kept yet: one from the pool");
        kept.give_back(first.conn);

        tokio::time::advance(Duration::from_secs(29)).await;
        let again = kept.take(new_one(2)).await.unwrap();
        assert_eq!(
            (again.conn, again.kept),
            (1, true),
            "used 29 s ago: taken untested"
        );
        kept.give_back(again.conn);

        tokio::time::advance(Duration::from_secs(31)).await;
        let after_a_pause = kept.take(new_one(3)).await.unwrap();
        assert_eq!(
            (after_a_pause.conn, after_a_pause.kept),
            (3, false),
            "quiet for 31 s: back to the pool, a tested one taken"
        );
        assert!(kept.idle.lock().unwrap().is_empty(), "the quiet one is not kept");
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_than_most_are_kept_and_the_last_given_back_goes_first() {
        let kept = KeptConnections::new(2, Duration::from_secs(30));
        for n in [1, 2, 3] {
            kept.give_back(n);
        }
        assert_eq!(kept.take(new_one(9)).await.unwrap().conn, 2);
        assert_eq!(kept.take(new_one(9)).await.unwrap().conn, 1);
        assert_eq!(kept.take(new_one(9)).await.unwrap().conn, 9);
    }
}
