//! Storage: one interface, two engines.
//!
//! [`Store`] is everything the server asks of its database. PostgreSQL
//! ([`postgres::PgStore`]) is the production engine: daily partitions for
//! heartbeats, batched `UNNEST` inserts. SQLite ([`sqlite::SqliteStore`]) is
//! the zero-setup default. Both pass the same integration suite. All SQL
//! lives in these modules; handlers only orchestrate.

mod kept_connections;
mod pending_presence;
pub mod postgres;
mod roster;
pub mod sqlite;

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, FixedOffset, Utc};
use uuid::Uuid;
use wfh_protocol::admin::{
    ActivityRecord, AdminToken, AgentEventRecord, ConsentEntry, Device, Employee, HeartbeatRecord,
};
use wfh_protocol::{
    AgentEvent, AppTime, EmployeeRef, EventAccepted, HeartbeatStatus, ImageFormat, Location, LogRecord,
    SiteTime,
};

use crate::auth::TokenHash;
use crate::config::{Config, DatabaseTarget};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("the enrolment code is not valid, expired or already used")]
    InvalidCode,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What a device token resolves to.
#[derive(Debug, Clone)]
pub struct DeviceIdentity {
    pub device_id: i64,
    pub employee: EmployeeRef,
    pub employee_active: bool,
    pub revoked: bool,
}

/// A heartbeat ready to store: identity from the token, fields as reported.
#[derive(Debug, Clone)]
pub struct NewHeartbeat {
    pub event_id: Uuid,
    pub employee_id: i64,
    pub device_id: i64,
    pub username: String,
    pub hostname: String,
    pub status: HeartbeatStatus,
    pub timestamp: DateTime<FixedOffset>,
    pub received_at: DateTime<Utc>,
}

/// A heartbeat as stored: the answer, and the device whose delivery was
/// stored (another device's, when this one reused its event id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHeartbeat {
    pub accepted: EventAccepted,
    pub device_id: i64,
}

/// A detailed log ready to store; its screenshot is already on disk.
#[derive(Debug, Clone)]
pub struct NewLog {
    pub record: LogRecord,
    /// Relative to the screenshot directory.
    pub screenshot_path: String,
}

#[derive(Debug)]
pub enum LogInsert {
    Stored(LogRecord),
    /// The event id was already stored: the first record.
    Duplicate(LogRecord),
}

/// An agent event ready to store (startup, shutdown, missed log).
#[derive(Debug, Clone)]
pub struct NewAgentEvent {
    pub event_id: Uuid,
    pub employee_id: i64,
    pub device_id: i64,
    pub username: String,
    pub hostname: String,
    pub event: AgentEvent,
    pub timestamp: DateTime<FixedOffset>,
    pub received_at: DateTime<Utc>,
}

/// A bucket of activity ready to store: identity from the token, the rest as
/// reported (already restricted to what the policy allows).
#[derive(Debug, Clone)]
pub struct NewActivity {
    pub event_id: Uuid,
    pub employee_id: i64,
    pub device_id: i64,
    pub username: String,
    pub hostname: String,
    pub start: DateTime<FixedOffset>,
    pub duration_secs: u32,
    pub observed_secs: u32,
    pub active_secs: Option<u32>,
    pub idle_secs: Option<u32>,
    pub key_presses: Option<u32>,
    pub apps: Vec<AppTime>,
    pub sites: Vec<SiteTime>,
    pub received_at: DateTime<Utc>,
}

/// Everything a summary is computed from, for some employees and a span of
/// time, each list in time order.
#[derive(Debug, Clone, Default)]
pub struct SummaryRows {
    /// (employee, device time, status)
    pub heartbeats: Vec<(i64, DateTime<Utc>, HeartbeatStatus)>,
    pub activity: Vec<ActivityRecord>,
    /// (employee, device time, event): start-ups and shutdowns.
    pub events: Vec<(i64, DateTime<Utc>, AgentEvent)>,
    /// (employee, device time) of each detailed log.
    pub logs: Vec<(i64, DateTime<Utc>)>,
}

/// An employee with what the admin list shows about them.
#[derive(Debug, Clone)]
pub struct EmployeeRow {
    pub who: EmployeeRef,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub team: Option<String>,
    pub presence: Option<Presence>,
}

/// Latest heartbeat of one device.
#[derive(Debug, Clone)]
pub struct Presence {
    pub employee_id: i64,
    pub status: HeartbeatStatus,
    pub hostname: String,
    pub occurred_at: DateTime<Utc>,
}

/// An admin token to store: only its hash.
#[derive(Debug, Clone)]
pub struct NewAdminToken {
    pub token_hash: TokenHash,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// How stale an admin token's `last_used_at` may be before a use writes it.
pub const LAST_USED_PRECISION_SECS: i64 = 60;

/// Filter and page of an admin listing. Newest first.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub employee_id: Option<i64>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: u32,
    pub after: Option<Cursor>,
}

/// Keyset position: (device time, event id) of the last item seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub occurred_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let raw = format!("{}|{}", self.occurred_at.timestamp_micros(), self.id);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (micros, id) = raw.split_once('|')?;
        Some(Self {
            occurred_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: id.parse().ok()?,
        })
    }
}

/// What one retention pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatPurge {
    pub rows: u64,
    pub partitions_dropped: u64,
}

/// A log row removed by retention: its file must go too.
#[derive(Debug, Clone)]
pub struct PurgedLog {
    pub screenshot_path: String,
}

#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Apply pending migrations.
    async fn migrate(&self) -> StoreResult<()>;
    /// A cheap round trip, for health checks.
    async fn ping(&self) -> StoreResult<()>;
    /// Make sure storage exists for rows timed around `now` (PostgreSQL:
    /// daily heartbeat partitions from `now - retention` to `now + 2 days`).
    async fn prepare(&self, now: DateTime<Utc>, retention_days: u32) -> StoreResult<()>;

    async fn create_employee(
        &self,
        username: &str,
        display_name: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<EmployeeRef>;
    async fn employee(&self, id: i64) -> StoreResult<(EmployeeRef, bool, DateTime<Utc>)>;
    async fn set_employee_active(&self, id: i64, active: bool) -> StoreResult<()>;
    /// Every employee with its devices' latest heartbeat, in no particular order.
    async fn employees_with_presence(&self) -> StoreResult<Vec<EmployeeRow>>;
    /// One employee with its devices' latest heartbeat (`None`: no such employee).
    async fn employee_with_presence(&self, id: i64) -> StoreResult<Option<EmployeeRow>>;
    /// Write presence that is kept in memory to the employees' rows; how
    /// many rows moved (PostgreSQL; SQLite writes it with each heartbeat).
    async fn flush_presence(&self) -> StoreResult<usize> {
        Ok(0)
    }
    /// At start-up: move each employee's presence forward to its newest
    /// stored heartbeat, in case the last run stopped before a flush.
    async fn recover_presence(&self) -> StoreResult<usize> {
        Ok(0)
    }
    /// Put an employee in a team (`None`: in none).
    async fn set_employee_team(&self, id: i64, team: Option<&str>) -> StoreResult<()>;

    /// Store a new enrolment code for an employee; it supersedes (expires)
    /// every code of theirs not used yet: a new code is asked for because
    /// the last one was lost or seen by someone else.
    async fn add_enrollment_code(
        &self,
        employee_id: i64,
        code_hash: &TokenHash,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Use a code once: creates the device with `token_hash`, atomically.
    async fn redeem_enrollment_code(
        &self,
        code_hash: &TokenHash,
        username: &str,
        hostname: &str,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<(EmployeeRef, i64)>;

    async fn device_by_token(&self, token_hash: &TokenHash) -> StoreResult<Option<DeviceIdentity>>;
    async fn devices(&self, employee_id: i64) -> StoreResult<Vec<Device>>;
    async fn revoke_device(&self, device_id: i64, now: DateTime<Utc>) -> StoreResult<Device>;

    /// Store a new admin token's hash; returns its id.
    async fn add_admin_token(&self, token: &NewAdminToken) -> StoreResult<i64>;
    /// Whether the token is known, not revoked and not expired at `now`;
    /// a valid token's `last_used_at` moves to `now` when it is more than
    /// [`LAST_USED_PRECISION_SECS`] behind.
    async fn admin_token_valid(&self, token_hash: &TokenHash, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Every admin token, revoked and expired ones too, oldest first.
    async fn admin_tokens(&self) -> StoreResult<Vec<AdminToken>>;
    /// Revoke an admin token and end its dashboard sessions; revoking twice
    /// keeps the first time.
    async fn revoke_admin_token(&self, id: i64, now: DateTime<Utc>) -> StoreResult<AdminToken>;

    /// Open a dashboard session for the admin token with `admin_hash`;
    /// `false` if that token is unknown or revoked.
    async fn create_session(&self, admin_hash: &TokenHash, session: &NewSession) -> StoreResult<bool>;
    /// The CSRF token of a live session (not expired, its admin token not revoked).
    async fn session_csrf(&self, session_hash: &TokenHash, now: DateTime<Utc>)
        -> StoreResult<Option<String>>;
    async fn delete_session(&self, session_hash: &TokenHash) -> StoreResult<()>;
    /// Delete expired sessions; returns how many.
    async fn purge_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64>;

    /// Store a batch in one commit. Answers per input, in order; a duplicate
    /// answers with the first delivery's `received_at`.
    async fn insert_heartbeats(&self, batch: &[NewHeartbeat]) -> StoreResult<Vec<StoredHeartbeat>>;
    async fn heartbeats(&self, q: &ListQuery) -> StoreResult<Vec<HeartbeatRecord>>;

    async fn log_by_event(&self, event_id: Uuid) -> StoreResult<Option<LogRecord>>;
    /// Store a batch in one commit. Answers per input, in order; a log whose
    /// event is already stored answers with the first delivery.
    async fn insert_logs(&self, batch: &[NewLog]) -> StoreResult<Vec<LogInsert>>;
    async fn logs(&self, q: &ListQuery) -> StoreResult<Vec<LogRecord>>;
    /// A log and its screenshot path.
    async fn log(&self, id: Uuid) -> StoreResult<Option<(LogRecord, String)>>;
    /// Screenshot paths (relative) that start with `prefix`.
    async fn screenshot_paths_with_prefix(&self, prefix: &str) -> StoreResult<Vec<String>>;

    /// Store an agent event once; a retry answers with the first `received_at`.
    /// `Conflict` if another device already used the event id.
    async fn insert_agent_event(&self, ev: &NewAgentEvent) -> StoreResult<EventAccepted>;
    async fn agent_events(&self, q: &ListQuery) -> StoreResult<Vec<AgentEventRecord>>;
    /// Delete agent events older than `cutoff`; returns how many.
    async fn purge_agent_events(&self, cutoff: DateTime<Utc>) -> StoreResult<u64>;

    /// Store a bucket of activity once; a retry answers with the first
    /// `received_at`. `Conflict` if another device already used the event id.
    async fn insert_activity(&self, a: &NewActivity) -> StoreResult<EventAccepted>;
    async fn activity(&self, q: &ListQuery) -> StoreResult<Vec<ActivityRecord>>;
    /// Delete activity older than `cutoff`, `batch` rows at a time; returns how many.
    async fn purge_activity(&self, cutoff: DateTime<Utc>, batch: u32) -> StoreResult<u64>;
    /// Heartbeats, activity, start-ups and shutdowns, and detailed logs of
    /// `employees` with device times in `[from, to)`.
    async fn summary_rows(
        &self,
        employees: &[i64],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<SummaryRows>;

    /// The stored monitoring policy (JSON) and its revision; `None` before
    /// the first change (the built-in default applies).
    async fn policy(&self) -> StoreResult<Option<(i64, String)>>;
    /// Replace the policy; returns the new revision.
    async fn set_policy(&self, policy_json: &str, now: DateTime<Utc>) -> StoreResult<i64>;
    /// Record a consent once (idempotent by event id).
    async fn insert_consent(&self, consent: &NewConsent) -> StoreResult<()>;
    /// An employee's consents, newest first.
    async fn consents(&self, employee_id: i64) -> StoreResult<Vec<ConsentEntry>>;

    /// Delete heartbeats older than `cutoff`, `batch` rows at a time.
    async fn purge_heartbeats(&self, cutoff: DateTime<Utc>, batch: u32) -> StoreResult<HeartbeatPurge>;
    /// Delete up to `batch` logs older than `cutoff`; returns what was deleted.
    async fn purge_logs(&self, cutoff: DateTime<Utc>, batch: u32) -> StoreResult<Vec<PurgedLog>>;
}

/// A consent about to be recorded (from a `consent_given` agent event).
#[derive(Debug, Clone)]
pub struct NewConsent {
    pub event_id: Uuid,
    pub employee_id: i64,
    pub device_id: i64,
    pub version: String,
    pub accepted_at: DateTime<FixedOffset>,
    pub received_at: DateTime<Utc>,
}

/// A dashboard session about to be stored.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session_hash: TokenHash,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Open the database the configuration names and apply migrations.
pub async fn connect(config: &Config) -> StoreResult<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match config.database() {
        DatabaseTarget::Postgres(url) => {
            Arc::new(postgres::PgStore::connect(&url, config.database_max_connections).await?)
        }
        DatabaseTarget::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(&path).await?),
    };
    store.migrate().await?;
    Ok(store)
}

/// The columns a new log row fills, in the order both engines bind them.
pub(crate) const LOG_INSERT_COLUMNS: &str = "id, event_id, employee_id, device_id, username, hostname, \
    local_ips, reported_public_ip, observed_ip, city, region, country, country_code, latitude, longitude, \
    accuracy_radius_km, screenshot_path, image_format, image_bytes, image_width, image_height, image_sha256, \
    occurred_at, utc_offset_secs, received_at";

pub(crate) fn screenshot_url(id: Uuid) -> String {
    format!("/api/admin/logs/{id}/screenshot")
}

/// Columns of a log row, engine-neutral, turned into the wire record.
pub(crate) struct LogColumns {
    pub id: Uuid,
    pub event_id: Uuid,
    pub employee_id: i64,
    pub device_id: i64,
    pub username: String,
    pub hostname: String,
    pub local_ips: Vec<String>,
    pub reported_public_ip: Option<String>,
    pub observed_ip: String,
    pub city: Option<String>,
    pub region: Option<String>,
    pub country: Option<String>,
    pub country_code: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub accuracy_radius_km: Option<i32>,
    pub image_format: String,
    pub image_bytes: i64,
    pub image_width: i32,
    pub image_height: i32,
    pub image_sha256: String,
    pub occurred_at: DateTime<Utc>,
    pub utc_offset_secs: i32,
    pub received_at: DateTime<Utc>,
}

fn parse_ip(s: &str) -> StoreResult<IpAddr> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad IP address {s:?}")))
}

pub(crate) fn with_offset(t: DateTime<Utc>, offset_secs: i32) -> StoreResult<DateTime<FixedOffset>> {
    let offset = FixedOffset::east_opt(offset_secs)
        .ok_or_else(|| StoreError::Corrupt(format!("bad UTC offset {offset_secs}")))?;
    Ok(t.with_timezone(&offset))
}

impl LogColumns {
    pub(crate) fn into_record(self) -> StoreResult<LogRecord> {
        let location =
            (self.city.is_some() || self.country.is_some() || self.latitude.is_some()).then(|| Location {
                city: self.city,
                region: self.region,
                country: self.country,
                country_code: self.country_code,
                latitude: self.latitude,
                longitude: self.longitude,
                accuracy_radius_km: self.accuracy_radius_km.and_then(|r| u16::try_from(r).ok()),
            });
        Ok(LogRecord {
            id: self.id,
            event_id: self.event_id,
            employee_id: self.employee_id,
            device_id: self.device_id,
            username: self.username,
            hostname: self.hostname,
            local_ips: self
                .local_ips
                .iter()
                .map(|s| parse_ip(s))
                .collect::<StoreResult<_>>()?,
            reported_public_ip: self.reported_public_ip.as_deref().map(parse_ip).transpose()?,
            observed_ip: parse_ip(&self.observed_ip)?,
            location,
            timestamp: with_offset(self.occurred_at, self.utc_offset_secs)?,
            received_at: self.received_at,
            image: wfh_protocol::ImageInfo {
                format: ImageFormat::parse(&self.image_format).ok_or_else(|| {
                    StoreError::Corrupt(format!("bad image format {:?}", self.image_format))
                })?,
                bytes: u64::try_from(self.image_bytes).unwrap_or_default(),
                width: u32::try_from(self.image_width).unwrap_or_default(),
                height: u32::try_from(self.image_height).unwrap_or_default(),
                sha256: self.image_sha256,
                url: screenshot_url(self.id),
            },
        })
    }
}

pub(crate) fn parse_event(json: &str) -> StoreResult<AgentEvent> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("bad agent event: {e}")))
}

/// The answer to an agent event insert: the stored one, or the first delivery.
pub(crate) fn settle_agent_event(
    ev: &NewAgentEvent,
    stored: bool,
    first: Option<(i64, DateTime<Utc>)>,
) -> StoreResult<EventAccepted> {
    settle_event(ev.event_id, ev.device_id, ev.received_at, stored, first)
}

/// The answer to a single-row idempotent insert: the new row, the first
/// delivery of a retry, or a conflict when another device used the id.
pub(crate) fn settle_event(
    event_id: Uuid,
    device_id: i64,
    received_at: DateTime<Utc>,
    stored: bool,
    first: Option<(i64, DateTime<Utc>)>,
) -> StoreResult<EventAccepted> {
    if stored {
        return Ok(EventAccepted {
            event_id,
            received_at,
        });
    }
    match first {
        Some((device, received_at)) if device == device_id => Ok(EventAccepted {
            event_id,
            received_at,
        }),
        Some(_) => Err(StoreError::Conflict(
            "this event_id was already used by another device".into(),
        )),
        None => Err(StoreError::NotFound("event")),
    }
}

/// The answers to a batch of logs of which the rows with ids in `stored`
/// were inserted; the others' events were stored before.
pub(crate) async fn log_answers<S: Store + ?Sized>(
    store: &S,
    batch: &[NewLog],
    stored: &std::collections::HashSet<Uuid>,
) -> StoreResult<Vec<LogInsert>> {
    let mut answers = Vec::with_capacity(batch.len());
    for log in batch {
        let r = &log.record;
        answers.push(if stored.contains(&r.id) {
            LogInsert::Stored(r.clone())
        } else {
            let first = store
                .log_by_event(r.event_id)
                .await?
                .ok_or(StoreError::NotFound("log"))?;
            LogInsert::Duplicate(first)
        });
    }
    Ok(answers)
}

/// `Ok` when an update touched a row, else `NotFound(what)`.
pub(crate) fn touched(rows_affected: u64, what: &'static str) -> StoreResult<()> {
    if rows_affected == 0 {
        return Err(StoreError::NotFound(what));
    }
    Ok(())
}

pub(crate) fn parse_json_list<T: serde::de::DeserializeOwned>(s: &str) -> StoreResult<Vec<T>> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("bad stored list: {e}")))
}

pub(crate) fn parse_status(s: &str) -> StoreResult<HeartbeatStatus> {
    HeartbeatStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("bad status {s:?}")))
}

/// After a batch insert: the answers known so far (`None` for duplicates,
/// which need the first delivery's time) and, per device, the newest stored
/// heartbeat for the presence table.
pub(crate) fn settle_heartbeats<'a>(
    batch: &'a [NewHeartbeat],
    stored: &[Uuid],
) -> (Vec<Option<EventAccepted>>, Vec<&'a NewHeartbeat>) {
    let mut fresh: std::collections::HashSet<Uuid> = stored.iter().copied().collect();
    let mut latest: std::collections::HashMap<i64, &NewHeartbeat> = std::collections::HashMap::new();
    let answers = batch
        .iter()
        .map(|h| {
            // The first occurrence of a stored id is the one that was stored.
            fresh.remove(&h.event_id).then(|| {
                latest
                    .entry(h.device_id)
                    .and_modify(|cur| {
                        if h.timestamp > cur.timestamp {
                            *cur = h;
                        }
                    })
                    .or_insert(h);
                EventAccepted {
                    event_id: h.event_id,
                    received_at: h.received_at,
                }
            })
        })
        .collect();
    (answers, latest.into_values().collect())
}

/// Fill in duplicates with the first delivery's `received_at` and device.
pub(crate) fn answer_heartbeats(
    batch: &[NewHeartbeat],
    answers: Vec<Option<EventAccepted>>,
    first_seen: &std::collections::HashMap<Uuid, (DateTime<Utc>, i64)>,
) -> Vec<StoredHeartbeat> {
    batch
        .iter()
        .zip(answers)
        .map(|(h, a)| match a {
            Some(accepted) => StoredHeartbeat {
                accepted,
                device_id: h.device_id,
            },
            None => {
                let (received_at, device_id) = first_seen
                    .get(&h.event_id)
                    .copied()
                    .unwrap_or((h.received_at, h.device_id));
                StoredHeartbeat {
                    accepted: EventAccepted {
                        event_id: h.event_id,
                        received_at,
                    },
                    device_id,
                }
            }
        })
        .collect()
}

/// Fold the presence rows (newest first per employee) into the admin view.
pub fn employee_view(row: EmployeeRow, now: DateTime<Utc>, interval_secs: u64) -> Employee {
    let EmployeeRow {
        who: employee,
        active,
        created_at,
        team,
        presence,
    } = row;
    let offline_after = chrono::Duration::seconds(i64::try_from(interval_secs * 2).unwrap_or(i64::MAX));
    let status = match &presence {
        Some(p) if now - p.occurred_at <= offline_after => p.status.into(),
        _ => wfh_protocol::PresenceStatus::Offline,
    };
    Employee {
        id: employee.id,
        username: employee.username,
        display_name: employee.display_name,
        active,
        created_at,
        last_seen: presence.as_ref().map(|p| p.occurred_at),
        last_hostname: presence.map(|p| p.hostname),
        status,
        team,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor {
            occurred_at: DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("not a cursor"), None);
        assert_eq!(Cursor::decode(""), None);
    }

    #[test]
    fn presence_goes_offline_after_two_intervals() {
        let now = Utc::now();
        let who = EmployeeRef {
            id: 1,
            username: "ana".into(),
            display_name: None,
        };
        let p = |ago: i64| Presence {
            employee_id: 1,
            status: HeartbeatStatus::Idle,
            hostname: "h".into(),
            occurred_at: now - chrono::Duration::seconds(ago),
        };
        let view = |presence| {
            let row = EmployeeRow {
                who: who.clone(),
                active: true,
                created_at: now,
                team: None,
                presence,
            };
            employee_view(row, now, 300).status
        };
        use wfh_protocol::PresenceStatus::*;
        assert_eq!(view(Some(p(599))), Idle);
        assert_eq!(view(Some(p(600))), Idle);
        assert_eq!(view(Some(p(601))), Offline);
        assert_eq!(view(None), Offline);
    }
}
