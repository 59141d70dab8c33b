//! SQLite storage: the zero-setup default (one file, no server).
//!
//! Timestamps are stored as INTEGER microseconds since the Unix epoch (UTC),
//! UUIDs as 16-byte blobs, lists as JSON text. Write transactions start with
//! `BEGIN IMMEDIATE` so concurrent writers queue instead of failing.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, SqlitePool};
use uuid::Uuid;
use wfh_protocol::admin::{Device, HeartbeatRecord};
use wfh_protocol::{EmployeeRef, EventAccepted, LogRecord};

use super::*;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(row: &SqliteRow, column: &str) -> StoreResult<DateTime<Utc>> {
    let v: i64 = row.try_get(column)?;
    DateTime::from_timestamp_micros(v).ok_or_else(|| StoreError::Corrupt(format!("bad time in {column}")))
}

fn opt_time(row: &SqliteRow, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
    let v: Option<i64> = row.try_get(column)?;
    v.map(|v| {
        DateTime::from_timestamp_micros(v).ok_or_else(|| StoreError::Corrupt(format!("bad time in {column}")))
    })
    .transpose()
}

const ADMIN_TOKEN_COLUMNS: &str = "id, label, created_at, expires_at, last_used_at, revoked_at";

fn admin_token(row: &SqliteRow) -> StoreResult<AdminToken> {
    Ok(AdminToken {
        id: row.try_get("id")?,
        label: row.try_get("label")?,
        created_at: time(row, "created_at")?,
        expires_at: opt_time(row, "expires_at")?,
        last_used_at: opt_time(row, "last_used_at")?,
        revoked_at: opt_time(row, "revoked_at")?,
    })
}

fn employee_ref(row: &SqliteRow) -> Result<EmployeeRef, sqlx::Error> {
    Ok(EmployeeRef {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
    })
}

fn device(row: &SqliteRow) -> StoreResult<Device> {
    Ok(Device {
        id: row.try_get("id")?,
        employee_id: row.try_get("employee_id")?,
        username: row.try_get("username")?,
        hostname: row.try_get("hostname")?,
        created_at: time(row, "created_at")?,
        revoked_at: opt_time(row, "revoked_at")?,
    })
}

fn log_record(row: &SqliteRow) -> StoreResult<LogRecord> {
    let local_ips: String = row.try_get("local_ips")?;
    LogColumns {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        employee_id: row.try_get("employee_id")?,
        device_id: row.try_get("device_id")?,
        username: row.try_get("username")?,
        hostname: row.try_get("hostname")?,
        local_ips: serde_json::from_str(&local_ips).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        reported_public_ip: row.try_get("reported_public_ip")?,
        observed_ip: row.try_get("observed_ip")?,
        city: row.try_get("city")?,
        region: row.try_get("region")?,
        country: row.try_get("country")?,
        country_code: row.try_get("country_code")?,
        latitude: row.try_get("latitude")?,
        longitude: row.try_get("longitude")?,
        accuracy_radius_km: row.try_get("accuracy_radius_km")?,
        image_format: row.try_get("image_format")?,
        image_bytes: row.try_get("image_bytes")?,
        image_width: row.try_get("image_width")?,
        image_height: row.try_get("image_height")?,
        image_sha256: row.try_get("image_sha256")?,
        occurred_at: time(row, "occurred_at")?,
        utc_offset_secs: row.try_get("utc_offset_secs")?,
        received_at: time(row, "received_at")?,
    }
    .into_record()
}

const LOG_COLUMNS: &str = "id, event_id, employee_id, device_id, username, hostname, local_ips, \
    reported_public_ip, observed_ip, city, region, country, country_code, latitude, longitude, \
    accuracy_radius_km, image_format, image_bytes, image_width, image_height, image_sha256, \
    occurred_at, utc_offset_secs, received_at";

const ACTIVITY_COLUMNS: &str = "event_id, employee_id, device_id, username, hostname, occurred_at, \
    utc_offset_secs, duration_secs, observed_secs, active_secs, idle_secs, key_presses, apps, sites, received_at";

fn activity_record(row: &SqliteRow) -> StoreResult<ActivityRecord> {
    Ok(ActivityRecord {
        event_id: row.try_get("event_id")?,
        employee_id: row.try_get("employee_id")?,
        device_id: row.try_get("device_id")?,
        username: row.try_get("username")?,
        hostname: row.try_get("hostname")?,
        start: with_offset(time(row, "occurred_at")?, row.try_get("utc_offset_secs")?)?,
        duration_secs: row.try_get("duration_secs")?,
        observed_secs: row.try_get("observed_secs")?,
        active_secs: row.try_get("active_secs")?,
        idle_secs: row.try_get("idle_secs")?,
        key_presses: row.try_get("key_presses")?,
        apps: parse_json_list(row.try_get("apps")?)?,
        sites: parse_json_list(row.try_get("sites")?)?,
        received_at: time(row, "received_at")?,
    })
}

fn push_filters(qb: &mut QueryBuilder<'_, sqlx::Sqlite>, q: &ListQuery, id_column: &str) {
    qb.push(" WHERE 1 = 1");
    if let Some(e) = q.employee_id {
        qb.push(" AND employee_id = ").push_bind(e);
    }
    if let Some(from) = q.from {
        qb.push(" AND occurred_at >= ").push_bind(micros(from));
    }
    if let Some(to) = q.to {
        qb.push(" AND occurred_at < ").push_bind(micros(to));
    }
    if let Some(c) = q.after {
        qb.push(format_args!(" AND (occurred_at, {id_column}) < ("))
            .push_bind(micros(c.occurred_at))
            .push(", ")
            .push_bind(c.id)
            .push(")");
    }
    qb.push(format_args!(
        " ORDER BY occurred_at DESC, {id_column} DESC LIMIT "
    ))
    .push_bind(i64::from(q.limit));
}

impl SqliteStore {
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let io = |e| StoreError::Database(sqlx::Error::Io(e));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private_fs::create_dir_all(dir).map_err(io)?;
        }
        crate::private_fs::create_file(path).map_err(io)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }
}

impl SqliteStore {
    /// The device and receive time of the row stored first under `event_id`
    /// (`table` is one of this module's own table names).
    async fn first_delivery(&self, table: &str, event_id: Uuid) -> StoreResult<Option<(i64, DateTime<Utc>)>> {
        let row: Option<(i64, i64)> = sqlx::query_as(&format!(
            "SELECT device_id, received_at FROM {table} WHERE event_id = ?"
        ))
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(d, t)| {
            DateTime::from_timestamp_micros(t)
                .map(|t| (d, t))
                .ok_or_else(|| StoreError::Corrupt("bad time in received_at".into()))
        })
        .transpose()
    }
}

/// Every employee with the newest presence of any of its devices.
const LAST_SEEN_SQL: &str = "SELECT e.id, e.username, e.display_name, e.active, e.created_at, e.team, \
        p.status, p.hostname, p.occurred_at \
    FROM employees e LEFT JOIN device_presence p ON p.device_id = ( \
        SELECT device_id FROM device_presence WHERE employee_id = e.id \
        ORDER BY occurred_at DESC LIMIT 1)";

/// One row of [`LAST_SEEN_SQL`].
fn employee_row(row: &SqliteRow) -> StoreResult<EmployeeRow> {
    let who = employee_ref(row)?;
    let status: Option<String> = row.try_get("status")?;
    let presence = match status {
        Some(s) => Some(Presence {
            employee_id: who.id,
            status: parse_status(&s)?,
            hostname: row.try_get("hostname")?,
            occurred_at: time(row, "occurred_at")?,
        }),
        None => None,
    };
    Ok(EmployeeRow {
        who,
        active: row.try_get("active")?,
        created_at: time(row, "created_at")?,
        team: row.try_get("team")?,
        presence,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("../migrations/sqlite").run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn prepare(&self, _now: DateTime<Utc>, _retention_days: u32) -> StoreResult<()> {
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    async fn create_employee(
        &self,
        username: &str,
        display_name: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<EmployeeRef> {
        let row = sqlx::query(
            "INSERT INTO employees (username, display_name, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (username) DO NOTHING RETURNING id, username, display_name",
        )
        .bind(username)
        .bind(display_name)
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::Conflict(format!("employee {username:?} already exists")))?;
        Ok(employee_ref(&row)?)
    }

    async fn employee(&self, id: i64) -> StoreResult<(EmployeeRef, bool, DateTime<Utc>)> {
        let row =
            sqlx::query("SELECT id, username, display_name, active, created_at FROM employees WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound("employee"))?;
        Ok((
            employee_ref(&row)?,
            row.try_get("active")?,
            time(&row, "created_at")?,
        ))
    }

    #[tracing::instrument(skip(self))]
    async fn set_employee_active(&self, id: i64, active: bool) -> StoreResult<()> {
        let done = sqlx::query("UPDATE employees SET active = ? WHERE id = ?")
            .bind(active)
            .bind(id)
            .execute(&self.pool)
            .await?;
        touched(done.rows_affected(), "employee")
    }

    #[tracing::instrument(skip(self))]
    async fn employees_with_presence(&self) -> StoreResult<Vec<EmployeeRow>> {
        let rows = sqlx::query(&format!("{LAST_SEEN_SQL} ORDER BY e.username"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(employee_row).collect()
    }

    #[tracing::instrument(skip(self))]
    async fn employee_with_presence(&self, id: i64) -> StoreResult<Option<EmployeeRow>> {
        let row = sqlx::query(&format!("{LAST_SEEN_SQL} WHERE e.id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(employee_row).transpose()
    }

    async fn set_employee_team(&self, id: i64, team: Option<&str>) -> StoreResult<()> {
        let done = sqlx::query("UPDATE employees SET team = ? WHERE id = ?")
            .bind(team)
            .bind(id)
            .execute(&self.pool)
            .await?;
        touched(done.rows_affected(), "employee")
    }

    async fn add_enrollment_code(
        &self,
        employee_id: i64,
        code_hash: &TokenHash,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE enrollment_codes SET expires_at = ? WHERE employee_id = ? AND used_at IS NULL AND expires_at > ?",
        )
        .bind(micros(now))
        .bind(employee_id)
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO enrollment_codes (code_hash, employee_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(&code_hash[..])
            .bind(employee_id)
            .bind(micros(now))
            .bind(micros(expires_at))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn redeem_enrollment_code(
        &self,
        code_hash: &TokenHash,
        username: &str,
        hostname: &str,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<(EmployeeRef, i64)> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "SELECT e.id, e.username, e.display_name FROM enrollment_codes c \
             JOIN employees e ON e.id = c.employee_id \
             WHERE c.code_hash = ? AND c.used_at IS NULL AND c.expires_at > ? AND e.active",
        )
        .bind(&code_hash[..])
        .bind(micros(now))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::InvalidCode)?;
        let who = employee_ref(&row)?;
        let device_id: i64 = sqlx::query_scalar(
            "INSERT INTO devices (employee_id, token_hash, username, hostname, created_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(who.id)
        .bind(&token_hash[..])
        .bind(username)
        .bind(hostname)
        .bind(micros(now))
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE enrollment_codes SET used_at = ?, device_id = ? WHERE code_hash = ?")
            .bind(micros(now))
            .bind(device_id)
            .bind(&code_hash[..])
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((who, device_id))
    }

    #[tracing::instrument(skip_all)]
    async fn device_by_token(&self, token_hash: &TokenHash) -> StoreResult<Option<DeviceIdentity>> {
        let row = sqlx::query(
            "SELECT d.id AS device_id, d.revoked_at IS NOT NULL AS revoked, \
                    e.id, e.username, e.display_name, e.active \
             FROM devices d JOIN employees e ON e.id = d.employee_id WHERE d.token_hash = ?",
        )
        .bind(&token_hash[..])
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(DeviceIdentity {
                device_id: row.try_get("device_id")?,
                employee: employee_ref(&row)?,
                employee_active: row.try_get("active")?,
                revoked: row.try_get("revoked")?,
            })
        })
        .transpose()
    }

    async fn devices(&self, employee_id: i64) -> StoreResult<Vec<Device>> {
        let rows = sqlx::query(
            "SELECT id, employee_id, username, hostname, created_at, revoked_at FROM devices \
             WHERE employee_id = ? ORDER BY id",
        )
        .bind(employee_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(device).collect()
    }

    #[tracing::instrument(skip(self))]
    async fn revoke_device(&self, device_id: i64, now: DateTime<Utc>) -> StoreResult<Device> {
        let row = sqlx::query(
            "UPDATE devices SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? \
             RETURNING id, employee_id, username, hostname, created_at, revoked_at",
        )
        .bind(micros(now))
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("device"))?;
        device(&row)
    }

    async fn add_admin_token(&self, t: &NewAdminToken) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO admin_tokens (token_hash, label, created_at, expires_at) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(&t.token_hash[..])
        .bind(&t.label)
        .bind(micros(t.created_at))
        .bind(t.expires_at.map(micros))
        .fetch_one(&self.pool)
        .await?)
    }

    async fn admin_token_valid(&self, token_hash: &TokenHash, now: DateTime<Utc>) -> StoreResult<bool> {
        let found: Option<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT id, last_used_at FROM admin_tokens WHERE token_hash = ? AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(&token_hash[..])
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, last_used)) = found else {
            return Ok(false);
        };
        let stale = micros(now) - LAST_USED_PRECISION_SECS * 1_000_000;
        if last_used.is_none_or(|t| t < stale) {
            sqlx::query("UPDATE admin_tokens SET last_used_at = ? WHERE id = ?")
                .bind(micros(now))
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(true)
    }

    async fn admin_tokens(&self) -> StoreResult<Vec<AdminToken>> {
        sqlx::query(&format!(
            "SELECT {ADMIN_TOKEN_COLUMNS} FROM admin_tokens ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(admin_token)
        .collect()
    }

    async fn revoke_admin_token(&self, id: i64, now: DateTime<Utc>) -> StoreResult<AdminToken> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE admin_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? RETURNING {ADMIN_TOKEN_COLUMNS}"
        ))
        .bind(micros(now))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("admin token"))?;
        sqlx::query("DELETE FROM admin_sessions WHERE admin_token_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        admin_token(&row)
    }

    async fn create_session(&self, admin_hash: &TokenHash, session: &NewSession) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO admin_sessions (session_hash, admin_token_id, csrf_token, created_at, expires_at) SELECT ?, id, ?, ?, ? FROM admin_tokens WHERE token_hash = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(&session.session_hash[..])
        .bind(&session.csrf_token)
        .bind(micros(session.created_at))
        .bind(micros(session.expires_at))
        .bind(&admin_hash[..])
        .bind(micros(session.created_at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn session_csrf(
        &self,
        session_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT s.csrf_token FROM admin_sessions s JOIN admin_tokens t ON t.id = s.admin_token_id WHERE s.session_hash = ? AND s.expires_at > ? AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?)",
        )
        .bind(&session_hash[..])
        .bind(micros(now))
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn delete_session(&self, session_hash: &TokenHash) -> StoreResult<()> {
        sqlx::query("DELETE FROM admin_sessions WHERE session_hash = ?")
            .bind(&session_hash[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= ?")
            .bind(micros(now))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    #[tracing::instrument(skip_all, fields(batch = batch.len()))]
    async fn insert_heartbeats(&self, batch: &[NewHeartbeat]) -> StoreResult<Vec<StoredHeartbeat>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut stored = Vec::with_capacity(batch.len());
        for h in batch {
            let done = sqlx::query(
                "INSERT INTO employee_heartbeats (event_id, employee_id, device_id, username, hostname, \
                     status, occurred_at, utc_offset_secs, received_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(h.event_id)
            .bind(h.employee_id)
            .bind(h.device_id)
            .bind(&h.username)
            .bind(&h.hostname)
            .bind(h.status.as_str())
            .bind(micros(h.timestamp.with_timezone(&Utc)))
            .bind(h.timestamp.offset().local_minus_utc())
            .bind(micros(h.received_at))
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                stored.push(h.event_id);
            }
        }
        let (answers, latest) = super::settle_heartbeats(batch, &stored);
        for h in latest {
            sqlx::query(
                "INSERT INTO device_presence (device_id, employee_id, status, hostname, occurred_at, received_at) \
                 VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (device_id) DO UPDATE SET employee_id = excluded.employee_id, \
                     status = excluded.status, hostname = excluded.hostname, \
                     occurred_at = excluded.occurred_at, received_at = excluded.received_at \
                 WHERE device_presence.occurred_at < excluded.occurred_at",
            )
            .bind(h.device_id)
            .bind(h.employee_id)
            .bind(h.status.as_str())
            .bind(&h.hostname)
            .bind(micros(h.timestamp.with_timezone(&Utc)))
            .bind(micros(h.received_at))
            .execute(&mut *tx)
            .await?;
        }
        let mut first_seen = HashMap::new();
        for (h, a) in batch.iter().zip(&answers) {
            if a.is_none() {
                let row =
                    sqlx::query("SELECT received_at, device_id FROM employee_heartbeats WHERE event_id = ?")
                        .bind(h.event_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if let Some(row) = row {
                    first_seen.insert(
                        h.event_id,
                        (time(&row, "received_at")?, row.try_get("device_id")?),
                    );
                }
            }
        }
        tx.commit().await?;
        Ok(super::answer_heartbeats(batch, answers, &first_seen))
    }

    async fn heartbeats(&self, q: &ListQuery) -> StoreResult<Vec<HeartbeatRecord>> {
        let mut qb = QueryBuilder::new(
            "SELECT event_id, employee_id, device_id, username, hostname, status, occurred_at, \
             utc_offset_secs, received_at FROM employee_heartbeats",
        );
        push_filters(&mut qb, q, "event_id");
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(HeartbeatRecord {
                    event_id: row.try_get("event_id")?,
                    employee_id: row.try_get("employee_id")?,
                    device_id: row.try_get("device_id")?,
                    username: row.try_get("username")?,
                    hostname: row.try_get("hostname")?,
                    status: parse_status(row.try_get("status")?)?,
                    timestamp: with_offset(time(row, "occurred_at")?, row.try_get("utc_offset_secs")?)?,
                    received_at: time(row, "received_at")?,
                })
            })
            .collect()
    }

    async fn log_by_event(&self, event_id: Uuid) -> StoreResult<Option<LogRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {LOG_COLUMNS} FROM employee_logs WHERE event_id = ?"
        ))
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(log_record).transpose()
    }

    #[tracing::instrument(skip_all, fields(batch = batch.len()))]
    async fn insert_logs(&self, batch: &[NewLog]) -> StoreResult<Vec<LogInsert>> {
        let local_ips = batch
            .iter()
            .map(|log| {
                let ips: Vec<String> = log.record.local_ips.iter().map(ToString::to_string).collect();
                serde_json::to_string(&ips).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let mut qb = QueryBuilder::new(format!("INSERT INTO employee_logs ({LOG_INSERT_COLUMNS}) "));
        qb.push_values(batch.iter().zip(local_ips), |mut row, (log, local_ips)| {
            let r = &log.record;
            let loc = r.location.as_ref();
            row.push_bind(r.id)
                .push_bind(r.event_id)
                .push_bind(r.employee_id)
                .push_bind(r.device_id)
                .push_bind(&r.username)
                .push_bind(&r.hostname)
                .push_bind(local_ips)
                .push_bind(r.reported_public_ip.map(|ip| ip.to_string()))
                .push_bind(r.observed_ip.to_string())
                .push_bind(loc.and_then(|l| l.city.clone()))
                .push_bind(loc.and_then(|l| l.region.clone()))
                .push_bind(loc.and_then(|l| l.country.clone()))
                .push_bind(loc.and_then(|l| l.country_code.clone()))
                .push_bind(loc.and_then(|l| l.latitude))
                .push_bind(loc.and_then(|l| l.longitude))
                .push_bind(loc.and_then(|l| l.accuracy_radius_km).map(i32::from))
                .push_bind(&log.screenshot_path)
                .push_bind(r.image.format.as_str())
                .push_bind(i64::try_from(r.image.bytes).unwrap_or(i64::MAX))
                .push_bind(i32::try_from(r.image.width).unwrap_or(i32::MAX))
                .push_bind(i32::try_from(r.image.height).unwrap_or(i32::MAX))
                .push_bind(&r.image.sha256)
                .push_bind(micros(r.timestamp.with_timezone(&Utc)))
                .push_bind(r.timestamp.offset().local_minus_utc())
                .push_bind(micros(r.received_at));
        });
        qb.push(" ON CONFLICT (event_id) DO NOTHING RETURNING id");
        let stored: HashSet<Uuid> = qb
            .build_query_scalar()
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .collect();
        log_answers(self, batch, &stored).await
    }

    async fn logs(&self, q: &ListQuery) -> StoreResult<Vec<LogRecord>> {
        let mut qb = QueryBuilder::new(format!("SELECT {LOG_COLUMNS} FROM employee_logs"));
        push_filters(&mut qb, q, "id");
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(log_record).collect()
    }

    async fn log(&self, id: Uuid) -> StoreResult<Option<(LogRecord, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {LOG_COLUMNS}, screenshot_path FROM employee_logs WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((log_record(&row)?, row.try_get("screenshot_path")?)))
            .transpose()
    }

    async fn screenshot_paths_with_prefix(&self, prefix: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT screenshot_path FROM employee_logs WHERE substr(screenshot_path, 1, length(?1)) = ?1",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?)
    }

    #[tracing::instrument(skip_all, fields(event_id = %ev.event_id))]
    async fn insert_agent_event(&self, ev: &NewAgentEvent) -> StoreResult<EventAccepted> {
        let done = sqlx::query(
            "INSERT INTO agent_events (event_id, employee_id, device_id, username, hostname, kind, event, \
             occurred_at, utc_offset_secs, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(ev.event_id)
        .bind(ev.employee_id)
        .bind(ev.device_id)
        .bind(&ev.username)
        .bind(&ev.hostname)
        .bind(ev.event.kind())
        .bind(serde_json::to_string(&ev.event).expect("events serialise"))
        .bind(micros(ev.timestamp.to_utc()))
        .bind(ev.timestamp.offset().local_minus_utc())
        .bind(micros(ev.received_at))
        .execute(&self.pool)
        .await?;
        let stored = done.rows_affected() == 1;
        let first = if stored {
            None
        } else {
            self.first_delivery("agent_events", ev.event_id).await?
        };
        settle_agent_event(ev, stored, first)
    }

    async fn insert_activity(&self, a: &NewActivity) -> StoreResult<EventAccepted> {
        let done = sqlx::query(
            "INSERT INTO employee_activity (event_id, employee_id, device_id, username, hostname, occurred_at, \
             utc_offset_secs, duration_secs, observed_secs, active_secs, idle_secs, key_presses, apps, sites, \
             received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(a.event_id)
        .bind(a.employee_id)
        .bind(a.device_id)
        .bind(&a.username)
        .bind(&a.hostname)
        .bind(micros(a.start.to_utc()))
        .bind(a.start.offset().local_minus_utc())
        .bind(a.duration_secs)
        .bind(a.observed_secs)
        .bind(a.active_secs)
        .bind(a.idle_secs)
        .bind(a.key_presses)
        .bind(serde_json::to_string(&a.apps).expect("lists serialise"))
        .bind(serde_json::to_string(&a.sites).expect("lists serialise"))
        .bind(micros(a.received_at))
        .execute(&self.pool)
        .await?;
        let stored = done.rows_affected() == 1;
        let first = if stored {
            None
        } else {
            self.first_delivery("employee_activity", a.event_id).await?
        };
        settle_event(a.event_id, a.device_id, a.received_at, stored, first)
    }

    async fn activity(&self, q: &ListQuery) -> StoreResult<Vec<ActivityRecord>> {
        let mut qb = QueryBuilder::new(format!("SELECT {ACTIVITY_COLUMNS} FROM employee_activity"));
        push_filters(&mut qb, q, "event_id");
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(activity_record).collect()
    }

    async fn purge_activity(&self, cutoff: DateTime<Utc>, batch: u32) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let done = sqlx::query(
                "DELETE FROM employee_activity WHERE event_id IN ( \
                     SELECT event_id FROM employee_activity WHERE occurred_at < ? LIMIT ?)",
            )
            .bind(micros(cutoff))
            .bind(i64::from(batch))
            .execute(&self.pool)
            .await?;
            total += done.rows_affected();
            if done.rows_affected() < u64::from(batch) {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    async fn summary_rows(
        &self,
        employees: &[i64],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<SummaryRows> {
        // SQLite has no arrays: the ids go in as a JSON list.
        let ids = serde_json::to_string(employees).expect("ids serialise");
        let (from, to) = (micros(from), micros(to));
        let heartbeats: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT employee_id, occurred_at, status FROM employee_heartbeats \
             WHERE employee_id IN (SELECT value FROM json_each(?)) AND occurred_at >= ? AND occurred_at < ? \
             ORDER BY occurred_at",
        )
        .bind(&ids)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let activity = sqlx::query(&format!(
            "SELECT {ACTIVITY_COLUMNS} FROM employee_activity \
             WHERE employee_id IN (SELECT value FROM json_each(?)) AND occurred_at >= ? AND occurred_at < ? \
             ORDER BY occurred_at"
        ))
        .bind(&ids)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let events: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT employee_id, occurred_at, event FROM agent_events \
             WHERE employee_id IN (SELECT value FROM json_each(?)) AND kind IN ('startup', 'shutdown') \
             AND occurred_at >= ? AND occurred_at < ? ORDER BY occurred_at",
        )
        .bind(&ids)
        .bind(from - 86_400_000_000)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let logs: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT employee_id, occurred_at FROM employee_logs \
             WHERE employee_id IN (SELECT value FROM json_each(?)) AND occurred_at >= ? AND occurred_at < ? \
             ORDER BY occurred_at",
        )
        .bind(&ids)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let at = |t: i64| {
            DateTime::from_timestamp_micros(t)
                .ok_or_else(|| StoreError::Corrupt("bad time in occurred_at".into()))
        };
        Ok(SummaryRows {
            heartbeats: heartbeats
                .into_iter()
                .map(|(e, t, s)| Ok((e, at(t)?, parse_status(&s)?)))
                .collect::<StoreResult<_>>()?,
            activity: activity.iter().map(activity_record).collect::<StoreResult<_>>()?,
            events: events
                .into_iter()
                .map(|(e, t, ev)| Ok((e, at(t)?, parse_event(&ev)?)))
                .collect::<StoreResult<_>>()?,
            logs: logs
                .into_iter()
                .map(|(e, t)| Ok((e, at(t)?)))
                .collect::<StoreResult<_>>()?,
        })
    }

    async fn policy(&self) -> StoreResult<Option<(i64, String)>> {
        Ok(
            sqlx::query_as("SELECT revision, policy FROM monitoring_policy WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn set_policy(&self, policy_json: &str, now: DateTime<Utc>) -> StoreResult<i64> {
        let (revision,): (i64,) = sqlx::query_as(
            "INSERT INTO monitoring_policy (id, revision, policy, updated_at) VALUES (1, 1, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET revision = monitoring_policy.revision + 1, \
             policy = excluded.policy, updated_at = excluded.updated_at RETURNING revision",
        )
        .bind(policy_json)
        .bind(micros(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(revision)
    }

    async fn insert_consent(&self, c: &NewConsent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO consents (event_id, employee_id, device_id, consent_version, accepted_at, \
             utc_offset_secs, received_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(c.event_id)
        .bind(c.employee_id)
        .bind(c.device_id)
        .bind(&c.version)
        .bind(micros(c.accepted_at.to_utc()))
        .bind(c.accepted_at.offset().local_minus_utc())
        .bind(micros(c.received_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn consents(&self, employee_id: i64) -> StoreResult<Vec<ConsentEntry>> {
        let rows: Vec<(Uuid, i64, String, i64, i32, i64)> = sqlx::query_as(
            "SELECT event_id, device_id, consent_version, accepted_at, utc_offset_secs, received_at \
             FROM consents WHERE employee_id = ? ORDER BY accepted_at DESC, event_id",
        )
        .bind(employee_id)
        .fetch_all(&self.pool)
        .await?;
        let time = |t: i64| {
            DateTime::from_timestamp_micros(t)
                .ok_or_else(|| StoreError::Corrupt("bad time in consents".into()))
        };
        rows.into_iter()
            .map(|(event_id, device_id, version, at, offset, received_at)| {
                Ok(ConsentEntry {
                    event_id,
                    device_id,
                    version,
                    accepted_at: with_offset(time(at)?, offset)?,
                    received_at: time(received_at)?,
                })
            })
            .collect()
    }

    async fn agent_events(&self, q: &ListQuery) -> StoreResult<Vec<AgentEventRecord>> {
        let mut qb = QueryBuilder::new(
            "SELECT event_id, employee_id, device_id, username, hostname, event, occurred_at, \
             utc_offset_secs, received_at FROM agent_events",
        );
        push_filters(&mut qb, q, "event_id");
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(AgentEventRecord {
                    event_id: row.try_get("event_id")?,
                    employee_id: row.try_get("employee_id")?,
                    device_id: row.try_get("device_id")?,
                    username: row.try_get("username")?,
                    hostname: row.try_get("hostname")?,
                    event: parse_event(row.try_get("event")?)?,
                    timestamp: with_offset(time(row, "occurred_at")?, row.try_get("utc_offset_secs")?)?,
                    received_at: time(row, "received_at")?,
                })
            })
            .collect()
    }

    async fn purge_agent_events(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM agent_events WHERE occurred_at < ?")
            .bind(micros(cutoff))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    #[tracing::instrument(skip(self))]
    async fn purge_heartbeats(&self, cutoff: DateTime<Utc>, batch: u32) -> StoreResult<HeartbeatPurge> {
        let mut purge = HeartbeatPurge::default();
        loop {
            let done = sqlx::query(
                "DELETE FROM employee_heartbeats WHERE (event_id, occurred_at) IN ( \
                     SELECT event_id, occurred_at FROM employee_heartbeats WHERE occurred_at < ? LIMIT ?)",
            )
            .bind(micros(cutoff))
            .bind(i64::from(batch))
            .execute(&self.pool)
            .await?;
            purge.rows += done.rows_affected();
            if done.rows_affected() < u64::from(batch) {
                break;
            }
            tokio::task::yield_now().await;
        }
        Ok(purge)
    }

    #[tracing::instrument(skip(self))]
    async fn purge_logs(&self, cutoff: DateTime<Utc>, batch: u32) -> StoreResult<Vec<PurgedLog>> {
        let paths: Vec<String> = sqlx::query_scalar(
            "DELETE FROM employee_logs WHERE id IN ( \
                 SELECT id FROM employee_logs WHERE occurred_at < ? ORDER BY occurred_at LIMIT ?) \
             RETURNING screenshot_path",
        )
        .bind(micros(cutoff))
        .bind(i64::from(batch))
        .fetch_all(&self.pool)
        .await?;
        Ok(paths
            .into_iter()
            .map(|screenshot_path| PurgedLog { screenshot_path })
            .collect())
    }
}
