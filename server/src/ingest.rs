//! Ingest: validation shared by every event, and the pipelines that store
//! heartbeats and detailed logs.
//!
//! Heartbeats and log rows are acknowledged only once committed. Many arrive
//! at once, so each request hands its row to a [`GroupCommit`] and waits; a
//! writer takes everything queued and stores it in one commit. With several
//! writers (`heartbeat_writers`, default 2, measured best on two cores: see
//! docs/benchmarks.md) one batch commits while the next ones fill. Nothing
//! waits on a timer. A detailed log's screenshot is on disk (written and
//! fsynced by [`Screenshots::write`]) before its row joins a batch.
//!
//! On PostgreSQL a committed heartbeat moves its employee's "last seen"
//! forward in memory; [`flush_presence`] writes those to the employees'
//! rows once a second, and once more when the server stops.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset, SubsecRound as _, Utc};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use uuid::Uuid;
use wfh_protocol::{
    ActivityRequest, AgentEvent, AgentEventRequest, EventAccepted, HeartbeatRequest, ImageInfo, LogMeta,
    LogRecord,
};

use crate::auth::Device;
use crate::db::{
    screenshot_url, LogInsert, NewActivity, NewAgentEvent, NewConsent, NewHeartbeat, NewLog, Store,
    StoredHeartbeat,
};
use crate::error::ApiError;
use crate::group_commit::{Batching, GroupCommit, Refused};
use crate::metrics::{Metrics, OutcomeLabel};
use crate::screenshots::{self, Screenshots};
use crate::state::AppState;

pub const MAX_BATCH: usize = 2048;
/// While another heartbeat commit is in flight, a batch gathers up to this
/// many rows before it commits too: PostgreSQL's fixed cost per commit
/// (about 300 µs of CPU on a slow 2-core machine) is then spread over 32
/// rows, ~10 µs each (docs/benchmarks.md, 2026-12-03 night).
const HEARTBEAT_FILL: usize = 32;
const QUEUE: usize = 16_384;
/// Log rows per commit: uploads are a few hundred a second at most, and a
/// batch's statement is prepared once per size.
const MAX_LOG_BATCH: usize = 64;
/// Writers for log rows: one commits while the next batch fills.
const LOG_WRITERS: usize = 2;
const MAX_NAME_LEN: usize = 256;
const MAX_LOCAL_IPS: usize = 64;

/// Stores heartbeats in shared commits.
pub type HeartbeatWriter = GroupCommit<NewHeartbeat, StoredHeartbeat>;
/// Stores detailed-log rows in shared commits.
pub type LogWriter = GroupCommit<NewLog, LogInsert>;

/// Start the heartbeat writers.
pub fn heartbeat_writer(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    writers: usize,
) -> (HeartbeatWriter, Vec<JoinHandle<()>>) {
    let store_batch = Arc::new(move |batch: Arc<[NewHeartbeat]>| {
        let (store, metrics) = (store.clone(), metrics.clone());
        Box::pin(async move {
            metrics.heartbeat_batch_size.observe(batch.len() as f64);
            let answers = store.insert_heartbeats(&batch).await?;
            for (hb, answer) in batch.iter().zip(&answers) {
                let outcome = if answer.accepted.received_at == hb.received_at {
                    "stored"
                } else {
                    "duplicate"
                };
                metrics.heartbeats.get_or_create(&OutcomeLabel { outcome }).inc();
            }
            Ok(answers)
        }) as _
    });
    let batching = Batching {
        writers,
        max_batch: MAX_BATCH,
        fill: HEARTBEAT_FILL,
        queue: QUEUE,
    };
    GroupCommit::spawn("heartbeats", batching, store_batch)
}

/// How often presence kept in memory is written to the employees' rows.
pub const PRESENCE_FLUSH_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// Write pending presence every `period` until `stop` turns true (or its
/// sender is gone), then once more. A failed flush keeps its entries for
/// the next.
pub async fn flush_presence(
    store: Arc<dyn Store>,
    period: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.wait_for(|stop| *stop) => true,
        };
        match store.flush_presence().await {
            Ok(0) => {}
            Ok(rows) => tracing::trace!(rows, "presence written"),
            Err(e) => tracing::warn!(error = %e, "writing presence failed; trying again"),
        }
        if stopping {
            return;
        }
    }
}

/// Start the log-row writers.
pub fn log_writer(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> (LogWriter, Vec<JoinHandle<()>>) {
    let store_batch = Arc::new(move |batch: Arc<[NewLog]>| {
        let (store, metrics) = (store.clone(), metrics.clone());
        Box::pin(async move {
            metrics.log_batch_size.observe(batch.len() as f64);
            store.insert_logs(&batch).await
        }) as _
    });
    let batching = Batching {
        writers: LOG_WRITERS,
        max_batch: MAX_LOG_BATCH,
        fill: 0,
        queue: QUEUE,
    };
    GroupCommit::spawn("detailed logs", batching, store_batch)
}

impl From<Refused> for ApiError {
    fn from(e: Refused) -> Self {
        match e {
            Refused::Stopped => ApiError::Unavailable,
            e @ Refused::Store { .. } => ApiError::internal(std::io::Error::other(e.to_string())),
        }
    }
}

pub(crate) fn check_name(field: &'static str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::field(field, "must not be empty"));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(ApiError::field(
            field,
            format!("longer than {MAX_NAME_LEN} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::field(field, "contains control characters"));
    }
    // Bidirectional overrides and isolates make a name read differently
    // from what it is ("alice\u{202e}txt.exe") in the dashboard and exports.
    if value
        .chars()
        .any(|c| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
    {
        return Err(ApiError::field(
            field,
            "contains bidirectional override or isolate characters",
        ));
    }
    Ok(())
}

/// A record must have at least this long to live before retention deletes
/// it, or it is refused as expired: one accepted a moment before the
/// retention job runs would be deleted seconds later, and its agent would
/// believe it delivered.
pub const MIN_TIME_TO_LIVE: Duration = Duration::days(1);

/// A device timestamp must fall inside what the server keeps (with a day to
/// spare, [`MIN_TIME_TO_LIVE`]), and not ahead of the server's clock by more
/// than the allowed skew: such a record is refused with the seconds after
/// which it would be accepted, so the agent sends it again then.
fn check_timestamp(state: &AppState, ts: DateTime<FixedOffset>) -> Result<(), ApiError> {
    let now = state.clock.now();
    let oldest = now - Duration::days(i64::from(state.config.retention_days)) + MIN_TIME_TO_LIVE;
    let skew = Duration::seconds(i64::try_from(state.config.max_clock_skew_secs).unwrap_or(i64::MAX));
    let t = ts.with_timezone(&Utc);
    if t < oldest {
        return Err(ApiError::Expired(format!(
            "older than the {}-day retention period keeps with a day to spare; it would be deleted at once",
            state.config.retention_days
        )));
    }
    if t > now + skew {
        let wait = (t - (now + skew)).num_seconds().max(1);
        return Err(ApiError::TimestampInFuture {
            retry_after_secs: u64::try_from(wait).unwrap_or(u64::MAX),
        });
    }
    Ok(())
}

/// Both engines store microseconds: normalise first, so a retry answers
/// exactly what the first delivery did.
fn micros<Tz: chrono::TimeZone>(t: DateTime<Tz>) -> DateTime<Tz> {
    t.trunc_subsecs(6)
}

pub async fn heartbeat(
    state: &AppState,
    device: &Device,
    req: HeartbeatRequest,
) -> Result<EventAccepted, ApiError> {
    check_name("username", &req.username)?;
    check_name("hostname", &req.hostname)?;
    check_timestamp(state, req.timestamp)?;
    let interval = crate::policy::heartbeat_interval(state);
    let pace = Duration::milliseconds(
        i64::try_from(interval.saturating_mul(1000)).unwrap_or(i64::MAX)
            / i64::from(crate::throttle::HEARTBEAT_PACE_DIVISOR),
    );
    let taken = if state.config.heartbeat_flood_guard {
        state.throttles.heartbeats.take(device.device_id, pace)
    } else {
        Ok(())
    };
    if let Err(retry_after_secs) = taken {
        state
            .metrics
            .rate_limited
            .get_or_create(&crate::metrics::RouteLabel {
                route: "/api/heartbeat",
            })
            .inc();
        tracing::warn!(
            device = device.device_id,
            "heartbeats far faster than the policy allows: refused"
        );
        return Err(ApiError::RateLimited { retry_after_secs });
    }
    let stored = state
        .heartbeats
        .submit(NewHeartbeat {
            event_id: req.event_id,
            employee_id: device.employee.id,
            device_id: device.device_id,
            username: req.username,
            hostname: req.hostname,
            status: req.status,
            timestamp: micros(req.timestamp),
            received_at: micros(state.clock.now()),
        })
        .await?;
    // A retry answers as the first delivery did; another device reusing the
    // id is refused, as logs and events are.
    if stored.device_id != device.device_id {
        return Err(ApiError::Conflict(
            "this event_id was already used by another device".into(),
        ));
    }
    Ok(stored.accepted)
}

const MAX_DETAIL_LEN: usize = 2048;
const MAX_SLOTS: u8 = 24;

/// Store an agent event (startup, shutdown, missed log) once.
pub async fn agent_event(
    state: &AppState,
    device: &Device,
    req: AgentEventRequest,
) -> Result<EventAccepted, ApiError> {
    check_name("username", &req.username)?;
    check_name("hostname", &req.hostname)?;
    check_timestamp(state, req.timestamp)?;
    match &req.event {
        AgentEvent::Startup {
            agent_version, os, ..
        } => {
            check_name("event.agent_version", agent_version)?;
            check_name("event.os", os)?;
        }
        AgentEvent::LogMissed { slot, detail, .. } => {
            if *slot >= MAX_SLOTS {
                return Err(ApiError::field(
                    "event.slot",
                    format!("must be below {MAX_SLOTS}"),
                ));
            }
            if detail.as_ref().is_some_and(|d| d.len() > MAX_DETAIL_LEN) {
                return Err(ApiError::field(
                    "event.detail",
                    format!("longer than {MAX_DETAIL_LEN} bytes"),
                ));
            }
        }
        AgentEvent::Shutdown { .. } => {}
        AgentEvent::ConsentGiven { version } => {
            if version.is_empty() || version.len() > 64 || !version.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(ApiError::field(
                    "event.version",
                    "must be 1 to 64 letters or digits",
                ));
            }
        }
    }
    // A consent is also kept as a record of its own (not subject to the
    // 30-day retention); recorded on a retry too, so nothing is half-stored.
    let consent = match &req.event {
        AgentEvent::ConsentGiven { version } => Some(NewConsent {
            event_id: req.event_id,
            employee_id: device.employee.id,
            device_id: device.device_id,
            version: version.clone(),
            accepted_at: micros(req.timestamp),
            received_at: micros(state.clock.now()),
        }),
        _ => None,
    };
    let accepted = state
        .store
        .insert_agent_event(&NewAgentEvent {
            event_id: req.event_id,
            employee_id: device.employee.id,
            device_id: device.device_id,
            username: req.username,
            hostname: req.hostname,
            event: req.event,
            timestamp: micros(req.timestamp),
            received_at: micros(state.clock.now()),
        })
        .await?;
    if let Some(consent) = consent {
        state.store.insert_consent(&consent).await?;
        tracing::info!(employee = device.employee.id, device = device.device_id, version = %consent.version, "consent recorded");
    }
    Ok(accepted)
}

/// Store a bucket of activity once, keeping only what the policy in force
/// allows (a bucket made under an older policy may carry more).
pub async fn activity(
    state: &AppState,
    device: &Device,
    mut req: ActivityRequest,
) -> Result<EventAccepted, ApiError> {
    check_name("username", &req.username)?;
    check_name("hostname", &req.hostname)?;
    check_timestamp(state, req.start)?;
    let problems = req.problems();
    if !problems.is_empty() {
        return Err(ApiError::field("activity", problems.join("; ")));
    }
    if req.restrict_to(&crate::policy::current(state).policy.activity) {
        tracing::info!(
            employee = device.employee.id,
            device = device.device_id,
            "activity beyond the policy in force was dropped"
        );
    }
    state
        .store
        .insert_activity(&NewActivity {
            event_id: req.event_id,
            employee_id: device.employee.id,
            device_id: device.device_id,
            username: req.username,
            hostname: req.hostname,
            start: micros(req.start),
            duration_secs: req.duration_secs,
            observed_secs: req.observed_secs,
            active_secs: req.active_secs,
            idle_secs: req.idle_secs,
            key_presses: req.key_presses,
            apps: req.apps,
            sites: req.sites,
            received_at: micros(state.clock.now()),
        })
        .await
        .map_err(Into::into)
}

/// Store a detailed log: validate, write the screenshot, then the row.
pub async fn log(
    state: &AppState,
    device: &Device,
    meta: LogMeta,
    image: bytes::Bytes,
    observed_ip: IpAddr,
) -> Result<LogRecord, ApiError> {
    check_name("username", &meta.username)?;
    check_name("hostname", &meta.hostname)?;
    check_timestamp(state, meta.timestamp)?;
    if meta.local_ips.len() > MAX_LOCAL_IPS {
        return Err(ApiError::field(
            "local_ips",
            format!("more than {MAX_LOCAL_IPS} addresses"),
        ));
    }
    let inspected = screenshots::inspect(&image).map_err(|e| match e {
        screenshots::ImageError::TooLarge { .. } => ApiError::ImageTooLarge(e.to_string()),
        e => ApiError::UnsupportedMediaType(e.to_string()),
    })?;
    let id = Uuid::new_v4();
    let received_at = micros(state.clock.now());
    let path = Screenshots::relative_path(received_at, id, inspected.format);
    let record = LogRecord {
        id,
        event_id: meta.event_id,
        employee_id: device.employee.id,
        device_id: device.device_id,
        username: meta.username,
        hostname: meta.hostname,
        local_ips: meta.local_ips,
        reported_public_ip: meta.public_ip,
        observed_ip,
        location: state.geoip.lookup(observed_ip),
        timestamp: micros(meta.timestamp),
        received_at,
        image: ImageInfo {
            format: inspected.format,
            bytes: image.len() as u64,
            width: inspected.width,
            height: inspected.height,
            sha256: hex(&Sha256::digest(&image)),
            url: screenshot_url(id),
        },
    };
    state
        .screenshots
        .write(&path, image)
        .await
        .map_err(ApiError::internal)?;
    // A retry of a stored log is found here, not before: retries are rare,
    // and asking first would cost every upload a query.
    let inserted = state
        .logs
        .submit(NewLog {
            record,
            screenshot_path: path.clone(),
        })
        .await;
    let outcome = match inserted {
        Ok(LogInsert::Stored(r)) => Ok(("stored", r)),
        Ok(LogInsert::Duplicate(first)) => {
            // A retry: keep the first file, drop ours.
            let _ = state.screenshots.remove(&path).await;
            same_device(first, device).map(|r| ("duplicate", r))
        }
        Err(e) => {
            let _ = state.screenshots.remove(&path).await;
            Err(e.into())
        }
    };
    let (outcome, record) = outcome?;
    state.metrics.logs.get_or_create(&OutcomeLabel { outcome }).inc();
    Ok(record)
}

fn same_device(first: LogRecord, device: &Device) -> Result<LogRecord, ApiError> {
    if first.device_id != device.device_id {
        return Err(ApiError::Conflict(
            "this event_id was already used by another device".into(),
        ));
    }
    Ok(first)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
