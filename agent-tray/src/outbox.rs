//! The agent's on-disk state: the outbox, the day plans, the sent log and a
//! few facts, in one SQLite file (WAL, `synchronous=FULL`).
//!
//! Nothing lost: an event is committed here before anything tries to send it,
//! and leaves the outbox only in the transaction that records it as sent.
//! Nothing doubled: every item carries its event id, which the server is
//! idempotent on, so a send that crashed half-way is simply sent again.
//! A detailed log enters the outbox in the same transaction that marks its
//! slot taken, so a crash can never leave one without the other.
//!
//! Bounds (documented in `docs/agent.md`): items older than
//! `outbox_max_age_days` are dropped; beyond `outbox_max_mib` the oldest
//! heartbeats go first, then the oldest events and logs. Items the server
//! refused for good (a 4xx) are set aside with the error and kept for the
//! employee to see, for the same age limit.

use std::path::Path;
use std::time::Duration as StdDuration;

use chrono::{DateTime, NaiveDate, Utc};
use rand::Rng;
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use uuid::Uuid;
use wfh_protocol::{AgentEventRequest, HeartbeatRequest, LogMeta};

use crate::scheduler::{DayPlan, PlanBook};

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("agent state database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("agent state database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("agent state is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, OutboxError>;

/// Something to deliver.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Heartbeat(HeartbeatRequest),
    Log {
        meta: LogMeta,
        image: Vec<u8>,
        mime: String,
    },
    Event(AgentEventRequest),
    Activity(wfh_protocol::ActivityRequest),
}

impl Item {
    pub fn event_id(&self) -> Uuid {
        match self {
            Item::Heartbeat(h) => h.event_id,
            Item::Log { meta, .. } => meta.event_id,
            Item::Event(e) => e.event_id,
            Item::Activity(a) => a.event_id,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Item::Heartbeat(_) => "heartbeat",
            Item::Log { .. } => "log",
            Item::Event(_) => "event",
            Item::Activity(_) => "activity",
        }
    }

    fn body(&self) -> String {
        match self {
            Item::Heartbeat(h) => serde_json::to_string(h),
            Item::Log { meta, .. } => serde_json::to_string(meta),
            Item::Event(e) => serde_json::to_string(e),
            Item::Activity(a) => serde_json::to_string(a),
        }
        .expect("wire types serialise")
    }
}

/// An item waiting in the outbox.
#[derive(Debug, Clone)]
pub struct Queued {
    pub seq: i64,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub item: Item,
}

/// A row of the sent log (what the employee can browse): an item the
/// server took, or one it refused for good (`refused` holds its reason).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentEntry {
    pub event_id: Uuid,
    pub kind: String,
    pub body: serde_json::Value,
    pub image_bytes: Option<u64>,
    /// When it was delivered, or refused.
    pub sent_at: DateTime<Utc>,
    pub refused: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutboxStats {
    pub queued: u64,
    pub set_aside: u64,
    pub bytes: u64,
    pub oldest: Option<DateTime<Utc>>,
}

/// How long to wait before the next attempt: exponential from `base`, capped
/// at `max`, with "equal jitter" (half fixed, half random) so that a fleet of
/// agents does not come back all at once after an outage.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: StdDuration,
    pub max: StdDuration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: StdDuration::from_secs(5),
            max: StdDuration::from_secs(15 * 60),
        }
    }
}

impl Backoff {
    pub fn delay<R: Rng>(&self, attempts: u32, rng: &mut R) -> StdDuration {
        let exp = self.base.saturating_mul(1u32 << attempts.min(20)).min(self.max);
        let half = exp / 2;
        half + StdDuration::from_nanos(rng.random_range(0..=half.as_nanos().min(u128::from(u64::MAX)) as u64))
    }
}

/// Limits on what the outbox keeps.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_bytes: u64,
    pub max_age: chrono::Duration,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub too_old: u64,
    pub over_size: u64,
}

#[derive(Debug, Clone)]
pub struct Outbox {
    pool: SqlitePool,
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| OutboxError::Corrupt(format!("bad timestamp {v}")))
}

impl Outbox {
    /// Open (creating) the state database at `path` and migrate it.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| OutboxError::Corrupt(format!("{}: {e}", dir.display())))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(StdDuration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations/agent").run(&pool).await?;
        Ok(Self { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // --- small facts -------------------------------------------------------

    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn set_meta(&self, key: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(v) => {
                sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                    .bind(key)
                    .bind(v)
                    .execute(&self.pool)
                    .await?
            }
            None => sqlx::query("DELETE FROM meta WHERE key = ?").bind(key).execute(&self.pool).await?,
        };
        Ok(())
    }

    /// The installation id (drawn once): the root of the slots' event ids.
    pub async fn install_id(&self) -> Result<Uuid> {
        let fresh = Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO meta (key, value) VALUES ('install_id', ?) ON CONFLICT (key) DO NOTHING")
            .bind(&fresh)
            .execute(&self.pool)
            .await?;
        let id = self.meta("install_id").await?.unwrap_or(fresh);
        id.parse()
            .map_err(|_| OutboxError::Corrupt(format!("bad install id {id:?}")))
    }

    // --- plans -------------------------------------------------------------

    pub async fn load_plans(&self) -> Result<PlanBook> {
        let rows = sqlx::query("SELECT plan FROM plans ORDER BY day")
            .fetch_all(&self.pool)
            .await?;
        let mut book = PlanBook::default();
        for row in rows {
            let json: String = row.get(0);
            match serde_json::from_str::<DayPlan>(&json) {
                Ok(plan) => {
                    book.plans.insert(plan.day, plan);
                }
                // A damaged plan is redrawn; its event ids come out the same.
                Err(e) => tracing::warn!(error = %e, "ignoring an unreadable day plan"),
            }
        }
        Ok(book)
    }

    /// Persist the book (and forget days it no longer holds).
    pub async fn save_plans(&self, book: &PlanBook) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        save_plans_in(&mut tx, book).await?;
        tx.commit().await?;
        Ok(())
    }

    // --- the outbox --------------------------------------------------------

    pub async fn enqueue(&self, item: &Item, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let added = insert_item(&mut tx, item, now).await?;
        tx.commit().await?;
        Ok(added)
    }

    /// Enqueue `items` and persist `book` in one transaction: a taken slot and
    /// its log (or a missed slot and its report) are saved together or not at all.
    pub async fn enqueue_with_plans(
        &self,
        items: &[Item],
        book: &PlanBook,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for item in items {
            insert_item(&mut tx, item, now).await?;
        }
        save_plans_in(&mut tx, book).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The oldest item due at `now`.
    pub async fn next_due(&self, now: DateTime<Utc>) -> Result<Option<Queued>> {
        let row = sqlx::query(
            "SELECT seq, kind, body, image, image_mime, attempts, created_at FROM outbox
             WHERE state = 'queued' AND next_attempt_at <= ? ORDER BY seq LIMIT 1",
        )
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let kind: String = row.get("kind");
        let body: String = row.get("body");
        let corrupt = |e: serde_json::Error| OutboxError::Corrupt(format!("outbox {kind} item: {e}"));
        let item = match kind.as_str() {
            "heartbeat" => Item::Heartbeat(serde_json::from_str(&body).map_err(corrupt)?),
            "log" => Item::Log {
                meta: serde_json::from_str(&body).map_err(corrupt)?,
                image: row.get::<Option<Vec<u8>>, _>("image").unwrap_or_default(),
                mime: row.get::<Option<String>, _>("image_mime").unwrap_or_default(),
            },
            "event" => Item::Event(serde_json::from_str(&body).map_err(corrupt)?),
            "activity" => Item::Activity(serde_json::from_str(&body).map_err(corrupt)?),
            other => return Err(OutboxError::Corrupt(format!("unknown outbox kind {other:?}"))),
        };
        Ok(Some(Queued {
            seq: row.get("seq"),
            attempts: u32::try_from(row.get::<i64, _>("attempts")).unwrap_or(0),
            created_at: from_micros(row.get("created_at"))?,
            item,
        }))
    }

    /// When the next queued item becomes due.
    pub async fn next_attempt_at(&self) -> Result<Option<DateTime<Utc>>> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'queued'")
                .fetch_one(&self.pool)
                .await?;
        v.map(from_micros).transpose()
    }

    /// Delivered: leave the outbox and enter the sent log, in one commit.
    pub async fn delivered(
        &self,
        q: &Queued,
        at: DateTime<Utc>,
        received_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let (image_bytes, thumbnail) = match &q.item {
            Item::Log { image, .. } => {
                let len = i64::try_from(image.len()).unwrap_or(i64::MAX);
                let image = image.clone();
                let thumb = tokio::task::spawn_blocking(move || crate::capture::thumbnail(&image))
                    .await
                    .ok()
                    .flatten();
                (Some(len), thumb)
            }
            _ => (None, None),
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO sent (event_id, kind, body, image_bytes, sent_at, received_at, thumbnail)
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(q.item.event_id().to_string())
        .bind(q.item.kind())
        .bind(q.item.body())
        .bind(image_bytes)
        .bind(micros(at))
        .bind(received_at.map(|t| t.to_rfc3339()))
        .bind(thumbnail)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM outbox WHERE seq = ?")
            .bind(q.seq)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn retry_later(&self, q: &Queued, next: DateTime<Utc>, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE seq = ?",
        )
        .bind(micros(next))
        .bind(error)
        .bind(q.seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The server refused it for good: keep it, with the reason, out of the
    /// way; the sent log lists it as refused.
    pub async fn set_aside(&self, q: &Queued, error: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET state = 'set_aside', attempts = attempts + 1, last_error = ?, set_aside_at = ? \
             WHERE seq = ?",
        )
        .bind(error)
        .bind(micros(now))
        .bind(q.seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Everything queued becomes due now (the server is back, or a new token).
    pub async fn retry_all_now(&self, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE outbox SET next_attempt_at = ? WHERE state = 'queued' AND next_attempt_at > ?")
            .bind(micros(now))
            .bind(micros(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn stats(&self) -> Result<OutboxStats> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(state = 'queued'), 0), COALESCE(SUM(state = 'set_aside'), 0),
                    COALESCE(SUM(bytes), 0), MIN(CASE WHEN state = 'queued' THEN created_at END) FROM outbox",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxStats {
            queued: row.get::<i64, _>(0) as u64,
            set_aside: row.get::<i64, _>(1) as u64,
            bytes: row.get::<i64, _>(2) as u64,
            oldest: row.get::<Option<i64>, _>(3).map(from_micros).transpose()?,
        })
    }

    /// Apply the bounds policy; returns what was dropped.
    pub async fn enforce(&self, bounds: Bounds, now: DateTime<Utc>) -> Result<Dropped> {
        let mut dropped = Dropped::default();
        let cutoff = micros(now - bounds.max_age);
        dropped.too_old = sqlx::query("DELETE FROM outbox WHERE created_at < ?")
            .bind(cutoff)
            .execute(&self.pool)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM sent WHERE sent_at < ?")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        let mut total = self.stats().await?.bytes;
        // Oldest heartbeats first (the cheapest to lose), then the rest, oldest first.
        while total > bounds.max_bytes {
            let victim: Option<(i64, i64)> = sqlx::query_as(
                "SELECT seq, bytes FROM outbox ORDER BY (kind = 'heartbeat') DESC, seq LIMIT 1",
            )
            .fetch_optional(&self.pool)
            .await?;
            let Some((seq, bytes)) = victim else { break };
            sqlx::query("DELETE FROM outbox WHERE seq = ?")
                .bind(seq)
                .execute(&self.pool)
                .await?;
            total = total.saturating_sub(bytes as u64);
            dropped.over_size += 1;
        }
        if dropped != Dropped::default() {
            tracing::warn!(
                too_old = dropped.too_old,
                over_size = dropped.over_size,
                "outbox bounds: items dropped"
            );
        }
        Ok(dropped)
    }

    /// The sent log, newest first, with the items the server refused.
    pub async fn sent(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<SentEntry>> {
        let rows = sqlx::query(
            "SELECT event_id, kind, body, image_bytes, sent_at, NULL AS refused FROM sent WHERE sent_at >= ?
             UNION ALL
             SELECT event_id, kind, body, LENGTH(image), set_aside_at, COALESCE(last_error, 'refused')
             FROM outbox WHERE state = 'set_aside' AND set_aside_at >= ?
             ORDER BY sent_at DESC LIMIT ?",
        )
        .bind(micros(since))
        .bind(micros(since))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let id: String = r.get("event_id");
                Ok(SentEntry {
                    event_id: id
                        .parse()
                        .map_err(|_| OutboxError::Corrupt(format!("bad event id {id:?}")))?,
                    kind: r.get("kind"),
                    body: serde_json::from_str(&r.get::<String, _>("body"))
                        .map_err(|e| OutboxError::Corrupt(e.to_string()))?,
                    image_bytes: r.get::<Option<i64>, _>("image_bytes").map(|b| b as u64),
                    sent_at: from_micros(r.get("sent_at"))?,
                    refused: r.get("refused"),
                })
            })
            .collect()
    }

    /// The thumbnail kept of a sent screenshot.
    pub async fn thumbnail(&self, event_id: Uuid) -> Result<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT thumbnail FROM sent WHERE event_id = ?")
                .bind(event_id.to_string())
                .fetch_optional(&self.pool)
                .await?
                .flatten(),
        )
    }

    /// The newest delivery of `kind`, if any.
    pub async fn last_sent(&self, kind: &str) -> Result<Option<DateTime<Utc>>> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(sent_at) FROM sent WHERE kind = ?")
            .bind(kind)
            .fetch_one(&self.pool)
            .await?;
        v.map(from_micros).transpose()
    }

    /// Detailed logs of `day` that reached the server.
    pub async fn logs_sent_for(&self, event_ids: &[Uuid]) -> Result<usize> {
        let mut n = 0;
        for id in event_ids {
            // A missed slot's report shares the slot's event id: only a sent
            // log counts as taken.
            let hit: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM sent WHERE event_id = ? AND kind = 'log'")
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
            n += usize::from(hit.is_some());
        }
        Ok(n)
    }

    /// The day plan for `day`, if any (for status displays).
    pub async fn plan(&self, day: NaiveDate) -> Result<Option<DayPlan>> {
        let json: Option<String> = sqlx::query_scalar("SELECT plan FROM plans WHERE day = ?")
            .bind(day.to_string())
            .fetch_optional(&self.pool)
            .await?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| OutboxError::Corrupt(e.to_string())))
            .transpose()
    }
}

async fn insert_item(tx: &mut sqlx::SqliteConnection, item: &Item, now: DateTime<Utc>) -> Result<bool> {
    let body = item.body();
    let (image, mime) = match item {
        Item::Log { image, mime, .. } => (Some(image.as_slice()), Some(mime.as_str())),
        _ => (None, None),
    };
    let bytes = body.len() + image.map_or(0, <[u8]>::len);
    let done = sqlx::query(
        "INSERT INTO outbox (event_id, kind, body, image, image_mime, bytes, created_at, next_attempt_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(item.event_id().to_string())
    .bind(item.kind())
    .bind(body)
    .bind(image)
    .bind(mime)
    .bind(bytes as i64)
    .bind(micros(now))
    .bind(micros(now))
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn save_plans_in(tx: &mut sqlx::SqliteConnection, book: &PlanBook) -> Result<()> {
    let keep: Vec<String> = book.plans.keys().map(ToString::to_string).collect();
    let oldest = keep.first().cloned().unwrap_or_default();
    sqlx::query("DELETE FROM plans WHERE day < ?")
        .bind(&oldest)
        .execute(&mut *tx)
        .await?;
    for plan in book.plans.values() {
        sqlx::query("INSERT INTO plans (day, plan) VALUES (?, ?) ON CONFLICT (day) DO UPDATE SET plan = excluded.plan")
            .bind(plan.day.to_string())
            .bind(serde_json::to_string(plan).expect("plans serialise"))
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wfh_protocol::{AgentEvent, MissedReason};

    #[tokio::test]
    async fn a_missed_slots_report_is_not_a_sent_log() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("agent.db")).await.unwrap();
        let now = Utc::now();
        let (missed, taken) = (Uuid::new_v4(), Uuid::new_v4());
        let report = Item::Event(AgentEventRequest {
            username: "ana".into(),
            hostname: "pc".into(),
            timestamp: now.fixed_offset(),
            event_id: missed,
            event: AgentEvent::LogMissed {
                day: now.date_naive(),
                slot: 0,
                reason: MissedReason::NotRunning,
                detail: None,
            },
        });
        let log = Item::Log {
            meta: LogMeta {
                username: "ana".into(),
                hostname: "pc".into(),
                local_ips: vec![],
                public_ip: None,
                timestamp: now.fixed_offset(),
                event_id: taken,
            },
            image: b"not decoded here".to_vec(),
            mime: "image/jpeg".into(),
        };
        for item in [report, log] {
            outbox.enqueue(&item, now).await.unwrap();
            let q = outbox.next_due(now).await.unwrap().unwrap();
            outbox.delivered(&q, now, None).await.unwrap();
        }
        // Both slots' ids are in the sent log; only one was a screenshot.
        assert_eq!(outbox.logs_sent_for(&[missed, taken]).await.unwrap(), 1);
    }
}
