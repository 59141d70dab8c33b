//! PostgreSQL storage: the production engine.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Days, NaiveDate, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;
use wfh_protocol::admin::{Device, HeartbeatRecord};
use wfh_protocol::{EmployeeRef, EventAccepted, LogRecord};

use super::kept_connections::{self, KeptConnections, Taken};
use super::pending_presence::{self, PendingPresence};
use super::roster::Roster;
use super::*;

const PARTITION_PREFIX: &str = "employee_heartbeats_p";

const ADMIN_TOKEN_COLUMNS: &str = "id, label, created_at, expires_at, last_used_at, revoked_at";

fn admin_token(row: &PgRow) -> StoreResult<AdminToken> {
    Ok(AdminToken {
        id: row.try_get("id")?,
        label: row.try_get("label")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Presence committed with heartbeats but not yet on the employees' rows.
    pending: Arc<PendingPresence>,
    /// Every employee as last read, brought up to date on each read.
    roster: Arc<Roster>,
    /// The heartbeat writers' connections between batches.
    writers: Arc<KeptConnections<PoolConnection<Postgres>>>,
}

impl PgStore {
    pub async fn connect(url: &SecretString, max_connections: u32) -> StoreResult<Self> {
        let options: PgConnectOptions = url.expose_secret().parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self {
            // Half the pool at most: the rest for reads and the log writers.
            writers: Arc::new(KeptConnections::new(
                (max_connections / 2) as usize,
                kept_connections::MAX_IDLE,
            )),
            pool,
            pending: Arc::default(),
            roster: Arc::default(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl PgStore {
    /// The batch on `conn`, making a missing day's partition if need be.
    async fn insert_heartbeats_on(
        &self,
        conn: &mut PgConnection,
        batch: &[NewHeartbeat],
    ) -> StoreResult<Vec<StoredHeartbeat>> {
        match self.insert_heartbeats_once(conn, batch).await {
            // No partition for a day (the hourly job has not made it yet): make it, try again.
            Err(StoreError::Database(sqlx::Error::Database(e))) if e.code().as_deref() == Some("23514") => {
                for day in batch.iter().map(|h| h.timestamp.with_timezone(&Utc).date_naive()) {
                    self.create_partition(day).await?;
                }
                self.insert_heartbeats_once(conn, batch).await
            }
            other => other,
        }
    }

    async fn insert_heartbeats_once(
        &self,
        conn: &mut PgConnection,
        batch: &[NewHeartbeat],
    ) -> StoreResult<Vec<StoredHeartbeat>> {
        let n = batch.len();
        let columns = HeartbeatColumns::of(batch);
        // One statement, one round trip, one implicit transaction. The
        // employees' presence moves forward in memory once it is committed
        // (see `pending_presence`), not in this commit.
        //
        // A plain INSERT first: `ON CONFLICT DO NOTHING` costs PostgreSQL an
        // extra index probe and WAL record per row (docs/benchmarks.md), and
        // duplicates are rare — an agent's retry after a lost answer. When
        // one is in the batch the statement fails, nothing is stored, and
        // the batch goes again skipping duplicates.
        let returned;
        let stored = match columns.insert(&mut *conn).await {
            Ok(()) => &columns.ids,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                returned = columns.insert_new(&mut *conn).await?;
                &returned
            }
            Err(e) => return Err(e.into()),
        };
        let (answers, latest) = super::settle_heartbeats(batch, stored);
        self.pending.record(latest);
        let mut first_seen = HashMap::new();
        if stored.len() < n {
            // Duplicates answer with the first delivery's time.
            let rows = sqlx::query(
                "SELECT i.event_id, h.received_at, h.device_id FROM heartbeat_event_ids i \
                 JOIN employee_heartbeats h ON h.event_id = i.event_id AND h.occurred_at = i.occurred_at \
                 WHERE i.event_id = ANY($1::uuid[])",
            )
            .bind(&columns.ids)
            .fetch_all(&mut *conn)
            .await?;
            for row in rows {
                first_seen.insert(
                    row.try_get::<Uuid, _>("event_id")?,
                    (row.try_get("received_at")?, row.try_get("device_id")?),
                );
            }
        }
        Ok(super::answer_heartbeats(batch, answers, &first_seen))
    }

    /// Run `sql` (a delete of at most `$2` rows older than `$1`) until it
    /// deletes fewer than a batch; how many it deleted. Small batches keep
    /// each lock and WAL burst short beside the ingest.
    async fn delete_in_batches(
        &self,
        sql: &'static str,
        cutoff: DateTime<Utc>,
        batch: u32,
    ) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let done = sqlx::query(sql)
                .bind(cutoff)
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

    async fn create_partition(&self, day: NaiveDate) -> StoreResult<()> {
        let next = day + Days::new(1);
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF employee_heartbeats \
             FOR VALUES FROM ('{day} 00:00:00+00') TO ('{next} 00:00:00+00')",
            partition_name(day)
        );
        sqlx::raw_sql(&sql).execute(&self.pool).await?;
        Ok(())
    }
}

/// A heartbeat batch as the columns of its insert.
struct HeartbeatColumns<'a> {
    ids: Vec<Uuid>,
    employees: Vec<i64>,
    devices: Vec<i64>,
    usernames: Vec<&'a str>,
    hostnames: Vec<&'a str>,
    statuses: Vec<&'static str>,
    times: Vec<DateTime<Utc>>,
    offsets: Vec<i32>,
    received: Vec<DateTime<Utc>>,
}

impl<'a> HeartbeatColumns<'a> {
    fn of(batch: &'a [NewHeartbeat]) -> Self {
        let n = batch.len();
        let mut c = Self {
            ids: Vec::with_capacity(n),
            employees: Vec::with_capacity(n),
            devices: Vec::with_capacity(n),
            usernames: Vec::with_capacity(n),
            hostnames: Vec::with_capacity(n),
            statuses: Vec::with_capacity(n),
            times: Vec::with_capacity(n),
            offsets: Vec::with_capacity(n),
            received: Vec::with_capacity(n),
        };
        for h in batch {
            c.ids.push(h.event_id);
            c.employees.push(h.employee_id);
            c.devices.push(h.device_id);
            c.usernames.push(h.username.as_str());
            c.hostnames.push(h.hostname.as_str());
            c.statuses.push(h.status.as_str());
            c.times.push(h.timestamp.with_timezone(&Utc));
            c.offsets.push(h.timestamp.offset().local_minus_utc());
            c.received.push(h.received_at);
        }
        c
    }

    /// Store the whole batch, or nothing: a duplicate event id fails the
    /// statement (23505). Nothing comes back: every row was stored.
    async fn insert(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let done = self.bind(sqlx::query(HEARTBEAT_INSERT)).execute(conn).await?;
        if done.rows_affected() != self.ids.len() as u64 {
            return Err(sqlx::Error::Protocol(format!(
                "{} of {} heartbeats inserted",
                done.rows_affected(),
                self.ids.len()
            )));
        }
        Ok(())
    }

    /// Store the rows whose event id is new; the event ids of those stored.
    async fn insert_new(&self, conn: &mut PgConnection) -> Result<Vec<Uuid>, sqlx::Error> {
        self.bind(sqlx::query(HEARTBEAT_INSERT_NEW))
            .fetch_all(conn)
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect()
    }

    fn bind<'q>(&'q self, query: PgQuery<'q>) -> PgQuery<'q> {
        query
            .bind(&self.ids)
            .bind(&self.employees)
            .bind(&self.devices)
            .bind(&self.usernames)
            .bind(&self.hostnames)
            .bind(&self.statuses)
            .bind(&self.times)
            .bind(&self.offsets)
            .bind(&self.received)
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// A heartbeat batch as rows `k`, one array per column (a macro so that
/// `concat!` can extend it).
macro_rules! heartbeat_rows {
    () => {
        "WITH k AS (SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::int8[], $4::text[], $5::text[], \
         $6::text[], $7::timestamptz[], $8::int4[], $9::timestamptz[]) \
         AS k(event_id, employee_id, device_id, username, hostname, status, occurred_at, \
         utc_offset_secs, received_at)) "
    };
}
macro_rules! heartbeat_insert_into {
    () => {
        "INSERT INTO employee_heartbeats (event_id, employee_id, device_id, username, hostname, \
         status, occurred_at, utc_offset_secs, received_at) "
    };
}
/// Each id is claimed in `heartbeat_event_ids` in the same statement, so one
/// id is one row whatever its timestamp: a known id fails the whole
/// statement (23505), as a duplicate timestamp does.
const HEARTBEAT_INSERT: &str = concat!(
    heartbeat_rows!(),
    ", ids AS (INSERT INTO heartbeat_event_ids (event_id, occurred_at) SELECT event_id, occurred_at FROM k) ",
    heartbeat_insert_into!(),
    "SELECT * FROM k"
);
/// The same, skipping event ids already stored. The clause costs an index
/// probe and a WAL record per row (docs/benchmarks.md), and `RETURNING`
/// the rows coming back: only for a batch the plain insert refused.
const HEARTBEAT_INSERT_NEW: &str = concat!(
    heartbeat_rows!(),
    ", ids AS (INSERT INTO heartbeat_event_ids (event_id, occurred_at) SELECT event_id, occurred_at FROM k \
     ON CONFLICT DO NOTHING RETURNING event_id, occurred_at) ",
    heartbeat_insert_into!(),
    "SELECT k.* FROM k JOIN ids USING (event_id, occurred_at) ON CONFLICT DO NOTHING RETURNING event_id"
);

/// The database's error behind a store error, if that is what it is.
fn sqlx_error<T>(result: &StoreResult<T>) -> Option<&sqlx::Error> {
    match result {
        Err(StoreError::Database(e)) => Some(e),
        _ => None,
    }
}

fn partition_name(day: NaiveDate) -> String {
    format!("{PARTITION_PREFIX}{}", day.format("%Y%m%d"))
}

fn partition_day(name: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(name.strip_prefix(PARTITION_PREFIX)?, "%Y%m%d").ok()
}

fn employee_ref(row: &PgRow) -> Result<EmployeeRef, sqlx::Error> {
    Ok(EmployeeRef {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
    })
}

fn device(row: &PgRow) -> Result<Device, sqlx::Error> {
    Ok(Device {
        id: row.try_get("id")?,
        employee_id: row.try_get("employee_id")?,
        username: row.try_get("username")?,
        hostname: row.try_get("hostname")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn log_record(row: &PgRow) -> StoreResult<LogRecord> {
    LogColumns {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        employee_id: row.try_get("employee_id")?,
        device_id: row.try_get("device_id")?,
        username: row.try_get("username")?,
        hostname: row.try_get("hostname")?,
        local_ips: row.try_get("local_ips")?,
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
        occurred_at: row.try_get("occurred_at")?,
        utc_offset_secs: row.try_get("utc_offset_secs")?,
        received_at: row.try_get("received_at")?,
    }
    .into_record()
}

const LOG_COLUMNS: &str = "id, event_id, employee_id, device_id, username, hostname, local_ips, \
    reported_public_ip, observed_ip, city, region, country, country_code, latitude, longitude, \
    accuracy_radius_km, image_format, image_bytes, image_width, image_height, image_sha256, \
    occurred_at, utc_offset_secs, received_at";

const ACTIVITY_COLUMNS: &str = "event_id, employee_id, device_id, username, hostname, occurred_at, \
    utc_offset_secs, duration_secs, observed_secs, active_secs, idle_secs, key_presses, apps::text AS apps, \
    sites::text AS sites, received_at";

fn activity_record(row: &PgRow) -> StoreResult<ActivityRecord> {
    let secs = |c: &str| -> StoreResult<Option<u32>> {
        Ok(row.try_get::<Option<i32>, _>(c)?.map(|v| v.max(0) as u32))
    };
    Ok(ActivityRecord {
        event_id: row.try_get("event_id")?,
        employee_id: row.try_get("employee_id")?,
        device_id: row.try_get("device_id")?,
        username: row.try_get("username")?,
        hostname: row.try_get("hostname")?,
        start: with_offset(row.try_get("occurred_at")?, row.try_get("utc_offset_secs")?)?,
        duration_secs: secs("duration_secs")?.unwrap_or(0),
        observed_secs: secs("observed_secs")?.unwrap_or(0),
        active_secs: secs("active_secs")?,
        idle_secs: secs("idle_secs")?,
        key_presses: secs("key_presses")?,
        apps: parse_json_list(row.try_get("apps")?)?,
        sites: parse_json_list(row.try_get("sites")?)?,
        received_at: row.try_get("received_at")?,
    })
}

/// `WHERE` clauses shared by the two listings; `id_column` is the tiebreak.
fn push_filters(qb: &mut QueryBuilder<'_, sqlx::Postgres>, q: &ListQuery, id_column: &str) {
    qb.push(" WHERE TRUE");
    if let Some(e) = q.employee_id {
        qb.push(" AND employee_id = ").push_bind(e);
    }
    if let Some(from) = q.from {
        qb.push(" AND occurred_at >= ").push_bind(from);
    }
    if let Some(to) = q.to {
        qb.push(" AND occurred_at < ").push_bind(to);
    }
    if let Some(c) = q.after {
        qb.push(format_args!(" AND (occurred_at, {id_column}) < ("))
            .push_bind(c.occurred_at)
            .push(", ")
            .push_bind(c.id)
            .push(")");
    }
    qb.push(format_args!(
        " ORDER BY occurred_at DESC, {id_column} DESC LIMIT "
    ))
    .push_bind(i64::from(q.limit));
}

/// One employee with the latest heartbeat of any of its devices. The
/// presence lives on the employee's row (migration 0007), no join.
const EMPLOYEE_SQL: &str = "SELECT id, username, display_name, active, created_at, team, \
    seen_status AS status, seen_hostname AS hostname, seen_at AS occurred_at FROM employees WHERE id = $1";

/// The employees written by transaction `$1` or a later one, each row with
/// the snapshot's xmin (from which to read next time, see `roster`); when
/// none was, one row with only the xmin. `$1` = 0 reads them all.
const ROSTER_SINCE_SQL: &str = "SELECT s.snapshot_xmin, e.id, e.username, e.display_name, e.active, \
    e.created_at, e.team, e.seen_status AS status, e.seen_hostname AS hostname, e.seen_at AS occurred_at \
    FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8 AS snapshot_xmin) s \
    LEFT JOIN employees e ON e.written_by >= $1::int8::text::xid8";

/// One row of [`EMPLOYEE_SQL`] or [`ROSTER_SINCE_SQL`].
fn employee_row(row: &PgRow) -> StoreResult<EmployeeRow> {
    let who = employee_ref(row)?;
    let status: Option<String> = row.try_get("status")?;
    let presence = match status {
        Some(s) => Some(Presence {
            employee_id: who.id,
            status: parse_status(&s)?,
            hostname: row.try_get("hostname")?,
            occurred_at: row.try_get("occurred_at")?,
        }),
        None => None,
    };
    Ok(EmployeeRow {
        who,
        active: row.try_get("active")?,
        created_at: row.try_get("created_at")?,
        team: row.try_get("team")?,
        presence,
    })
}

impl PgStore {
    /// The device and receive time of the row stored first under `event_id`
    /// (`table` is one of this module's own table names).
    async fn first_delivery(&self, table: &str, event_id: Uuid) -> StoreResult<Option<(i64, DateTime<Utc>)>> {
        Ok(sqlx::query_as(&format!(
            "SELECT device_id, received_at FROM {table} WHERE event_id = $1"
        ))
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await?)
    }
}

#[async_trait]
impl Store for PgStore {
    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("../migrations/postgres").run(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn prepare(&self, now: DateTime<Utc>, retention_days: u32) -> StoreResult<()> {
        let today = now.date_naive();
        let first = today - Days::new(u64::from(retention_days) + 1);
        let last = today + Days::new(2);
        for day in first.iter_days().take_while(|d| *d <= last) {
            self.create_partition(day).await?;
        }
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
            "INSERT INTO employees (username, display_name, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (username) DO NOTHING RETURNING id, username, display_name",
        )
        .bind(username)
        .bind(display_name)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::Conflict(format!("employee {username:?} already exists")))?;
        Ok(employee_ref(&row)?)
    }

    async fn employee(&self, id: i64) -> StoreResult<(EmployeeRef, bool, DateTime<Utc>)> {
        let row =
            sqlx::query("SELECT id, username, display_name, active, created_at FROM employees WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound("employee"))?;
        Ok((
            employee_ref(&row)?,
            row.try_get("active")?,
            row.try_get("created_at")?,
        ))
    }

    #[tracing::instrument(skip(self))]
    async fn set_employee_active(&self, id: i64, active: bool) -> StoreResult<()> {
        let done = sqlx::query("UPDATE employees SET active = $2 WHERE id = $1")
            .bind(id)
            .bind(active)
            .execute(&self.pool)
            .await?;
        touched(done.rows_affected(), "employee")
    }

    #[tracing::instrument(skip(self))]
    async fn employees_with_presence(&self) -> StoreResult<Vec<EmployeeRow>> {
        // Pending first, rows second: what a flush moves meanwhile is in one.
        let pending = self.pending.snapshot();
        let mut roster = self.roster.lock().await;
        // Not a prepared statement: planned for each `since`, the usual few
        // rows are an index scan and the first read of all a sequential one.
        let rows = sqlx::query(ROSTER_SINCE_SQL)
            .bind(roster.since())
            .persistent(false)
            .fetch_all(&self.pool)
            .await?;
        let snapshot_xmin: i64 = rows
            .first()
            .ok_or(sqlx::Error::RowNotFound)?
            .try_get("snapshot_xmin")?;
        let mut changed = Vec::with_capacity(rows.len());
        for row in &rows {
            if row.try_get::<Option<i64>, _>("id")?.is_some() {
                changed.push(employee_row(row)?);
            }
        }
        roster.apply(snapshot_xmin, changed);
        Ok(roster
            .rows()
            .map(|e| {
                let mut e = e.clone();
                e.presence = pending_presence::newer(e.presence.take(), pending.get(&e.who.id), e.who.id);
                e
            })
            .collect())
    }

    #[tracing::instrument(skip(self))]
    async fn employee_with_presence(&self, id: i64) -> StoreResult<Option<EmployeeRow>> {
        let pending = self.pending.get(id);
        let row = sqlx::query(EMPLOYEE_SQL)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut e = employee_row(&row)?;
        e.presence = pending_presence::newer(e.presence, pending.as_ref(), id);
        Ok(Some(e))
    }

    #[tracing::instrument(skip(self))]
    async fn flush_presence(&self) -> StoreResult<usize> {
        let flushed = self.pending.snapshot();
        if flushed.is_empty() {
            return Ok(0);
        }
        let n = flushed.len();
        let (mut ids, mut devices, mut statuses, mut hosts, mut times, mut received) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (id, seen) in &flushed {
            ids.push(*id);
            devices.push(seen.device_id);
            statuses.push(seen.status.as_str());
            hosts.push(seen.hostname.as_str());
            times.push(seen.occurred_at);
            received.push(seen.received_at);
        }
        // Only forward: a row already newer (another server's flush, or the
        // recovery at start-up) keeps its presence.
        let done = sqlx::query(
            "UPDATE employees e SET seen_device_id = l.device_id, seen_status = l.status, \
                 seen_hostname = l.hostname, seen_at = l.occurred_at, seen_received_at = l.received_at \
             FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[]) \
                 AS l(employee_id, device_id, status, hostname, occurred_at, received_at) \
             WHERE e.id = l.employee_id AND (e.seen_at IS NULL OR e.seen_at < l.occurred_at)",
        )
        .bind(&ids)
        .bind(&devices)
        .bind(&statuses)
        .bind(&hosts)
        .bind(&times)
        .bind(&received)
        .execute(&self.pool)
        .await?;
        self.pending.settle(&flushed);
        Ok(done.rows_affected() as usize)
    }

    #[tracing::instrument(skip(self))]
    async fn recover_presence(&self) -> StoreResult<usize> {
        // One index probe per employee into the heartbeats newer than its
        // row's presence, usually none. The bound is a plain comparison with
        // the partition key so that the partitions before that day are
        // pruned as the probe runs (an `IS NULL OR` kept all 34 and took 4×
        // as long: 1.1–1.7 s against 0.27–0.34 s for 10,064 employees).
        let done = sqlx::query(
            "UPDATE employees e SET seen_device_id = h.device_id, seen_status = h.status, \
                 seen_hostname = h.hostname, seen_at = h.occurred_at, seen_received_at = h.received_at \
             FROM employees o CROSS JOIN LATERAL ( \
                 SELECT device_id, status, hostname, occurred_at, received_at FROM employee_heartbeats \
                 WHERE employee_id = o.id AND occurred_at > COALESCE(o.seen_at, '-infinity') \
                 ORDER BY occurred_at DESC LIMIT 1 \
             ) h \
             WHERE e.id = o.id",
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() as usize)
    }

    #[tracing::instrument(skip(self))]
    async fn set_employee_team(&self, id: i64, team: Option<&str>) -> StoreResult<()> {
        let done = sqlx::query("UPDATE employees SET team = $2 WHERE id = $1")
            .bind(id)
            .bind(team)
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
            "UPDATE enrollment_codes SET expires_at = $1 WHERE employee_id = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(employee_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO enrollment_codes (code_hash, employee_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&code_hash[..])
        .bind(employee_id)
        .bind(now)
        .bind(expires_at)
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
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT e.id, e.username, e.display_name FROM enrollment_codes c \
             JOIN employees e ON e.id = c.employee_id \
             WHERE c.code_hash = $1 AND c.used_at IS NULL AND c.expires_at > $2 AND e.active \
             FOR UPDATE OF c",
        )
        .bind(&code_hash[..])
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::InvalidCode)?;
        let who = employee_ref(&row)?;
        let device_id: i64 = sqlx::query_scalar(
            "INSERT INTO devices (employee_id, token_hash, username, hostname, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(who.id)
        .bind(&token_hash[..])
        .bind(username)
        .bind(hostname)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE enrollment_codes SET used_at = $2, device_id = $3 WHERE code_hash = $1")
            .bind(&code_hash[..])
            .bind(now)
            .bind(device_id)
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
             FROM devices d JOIN employees e ON e.id = d.employee_id WHERE d.token_hash = $1",
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
             WHERE employee_id = $1 ORDER BY id",
        )
        .bind(employee_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(device).collect::<Result<_, _>>()?)
    }

    #[tracing::instrument(skip(self))]
    async fn revoke_device(&self, device_id: i64, now: DateTime<Utc>) -> StoreResult<Device> {
        let row = sqlx::query(
            "UPDATE devices SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 \
             RETURNING id, employee_id, username, hostname, created_at, revoked_at",
        )
        .bind(device_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("device"))?;
        Ok(device(&row)?)
    }

    async fn add_admin_token(&self, t: &NewAdminToken) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO admin_tokens (token_hash, label, created_at, expires_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(&t.token_hash[..])
        .bind(&t.label)
        .bind(t.created_at)
        .bind(t.expires_at)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn admin_token_valid(&self, token_hash: &TokenHash, now: DateTime<Utc>) -> StoreResult<bool> {
        let found: Option<(i64, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT id, last_used_at FROM admin_tokens WHERE token_hash = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(&token_hash[..])
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, last_used)) = found else {
            return Ok(false);
        };
        let stale = now - chrono::Duration::seconds(LAST_USED_PRECISION_SECS);
        if last_used.is_none_or(|t| t < stale) {
            sqlx::query("UPDATE admin_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
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
            "UPDATE admin_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING {ADMIN_TOKEN_COLUMNS}"
        ))
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("admin token"))?;
        sqlx::query("DELETE FROM admin_sessions WHERE admin_token_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        admin_token(&row)
    }

    async fn create_session(&self, admin_hash: &TokenHash, session: &NewSession) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO admin_sessions (session_hash, admin_token_id, csrf_token, created_at, expires_at) SELECT $1, id, $2, $3, $4 FROM admin_tokens WHERE token_hash = $5 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $3)",
        )
        .bind(&session.session_hash[..])
        .bind(&session.csrf_token)
        .bind(session.created_at)
        .bind(session.expires_at)
        .bind(&admin_hash[..])
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
            "SELECT s.csrf_token FROM admin_sessions s JOIN admin_tokens t ON t.id = s.admin_token_id WHERE s.session_hash = $1 AND s.expires_at > $2 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)",
        )
        .bind(&session_hash[..])
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn delete_session(&self, session_hash: &TokenHash) -> StoreResult<()> {
        sqlx::query("DELETE FROM admin_sessions WHERE session_hash = $1")
            .bind(&session_hash[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    #[tracing::instrument(skip_all, fields(batch = batch.len()))]
    async fn insert_heartbeats(&self, batch: &[NewHeartbeat]) -> StoreResult<Vec<StoredHeartbeat>> {
        let mut taken = self.writers.take(self.pool.acquire()).await?;
        loop {
            let result = self.insert_heartbeats_on(&mut taken.conn, batch).await;
            let connection_failed = sqlx_error(&result).is_some_and(|e| !kept_connections::usable_after(e));
            if !connection_failed {
                self.writers.give_back(taken.conn);
                return result;
            }
            // Close it. A kept one may have died while it waited: go again,
            // once, on a new one.
            taken.conn.close_on_drop();
            if !taken.kept {
                return result;
            }
            tracing::info!(
                "a kept database connection had closed: the heartbeat batch goes again on a new one"
            );
            taken = Taken {
                conn: self.pool.acquire().await?,
                kept: false,
            };
        }
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
                    timestamp: with_offset(row.try_get("occurred_at")?, row.try_get("utc_offset_secs")?)?,
                    received_at: row.try_get("received_at")?,
                })
            })
            .collect()
    }

    async fn log_by_event(&self, event_id: Uuid) -> StoreResult<Option<LogRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {LOG_COLUMNS} FROM employee_logs WHERE event_id = $1"
        ))
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(log_record).transpose()
    }

    #[tracing::instrument(skip_all, fields(batch = batch.len()))]
    async fn insert_logs(&self, batch: &[NewLog]) -> StoreResult<Vec<LogInsert>> {
        let mut qb = QueryBuilder::new(format!("INSERT INTO employee_logs ({LOG_INSERT_COLUMNS}) "));
        qb.push_values(batch, |mut row, log| {
            let r = &log.record;
            let loc = r.location.as_ref();
            let local_ips: Vec<String> = r.local_ips.iter().map(ToString::to_string).collect();
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
                .push_bind(r.timestamp.with_timezone(&Utc))
                .push_bind(r.timestamp.offset().local_minus_utc())
                .push_bind(r.received_at);
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
            "SELECT {LOG_COLUMNS}, screenshot_path FROM employee_logs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((log_record(&row)?, row.try_get("screenshot_path")?)))
            .transpose()
    }

    async fn screenshot_paths_with_prefix(&self, prefix: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT screenshot_path FROM employee_logs WHERE starts_with(screenshot_path, $1)",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?)
    }

    #[tracing::instrument(skip(self))]
    async fn purge_heartbeats(&self, cutoff: DateTime<Utc>, batch: u32) -> StoreResult<HeartbeatPurge> {
        let mut purge = HeartbeatPurge::default();
        // Whole days before the cutoff: detach without blocking ingest, then drop.
        let tables = sqlx::query(
            "SELECT c.relname::text AS name, \
                    EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid) AS attached \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind = 'r' \
               AND c.relname ~ '^employee_heartbeats_p[0-9]{8}$'",
        )
        .fetch_all(&self.pool)
        .await?;
        for row in tables {
            let name: String = row.try_get("name")?;
            let Some(day) = partition_day(&name) else { continue };
            let end = (day + Days::new(1)).and_hms_opt(0, 0, 0).map(|t| t.and_utc());
            if end.is_none_or(|end| end > cutoff) {
                continue;
            }
            let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {name}"))
                .fetch_one(&self.pool)
                .await?;
            if row.try_get::<bool, _>("attached")? {
                let detach = format!("ALTER TABLE employee_heartbeats DETACH PARTITION {name} CONCURRENTLY");
                if sqlx::raw_sql(&detach).execute(&self.pool).await.is_err() {
                    // An earlier detach was interrupted: finish it.
                    let finalize =
                        format!("ALTER TABLE employee_heartbeats DETACH PARTITION {name} FINALIZE");
                    sqlx::raw_sql(&finalize).execute(&self.pool).await?;
                }
            }
            sqlx::raw_sql(&format!("DROP TABLE IF EXISTS {name}"))
                .execute(&self.pool)
                .await?;
            purge.rows += u64::try_from(rows).unwrap_or_default();
            purge.partitions_dropped += 1;
        }
        // The day the cutoff falls in: delete row by row, in small batches.
        purge.rows += self
            .delete_in_batches(
                "DELETE FROM employee_heartbeats WHERE (event_id, occurred_at) IN ( \
                     SELECT event_id, occurred_at FROM employee_heartbeats WHERE occurred_at < $1 LIMIT $2)",
                cutoff,
                batch,
            )
            .await?;
        // Their ids go with them: an id may then be stored again, but a
        // heartbeat that old is refused as expired before it gets here.
        self.delete_in_batches(
            "DELETE FROM heartbeat_event_ids WHERE event_id IN ( \
                 SELECT event_id FROM heartbeat_event_ids WHERE occurred_at < $1 LIMIT $2)",
            cutoff,
            batch,
        )
        .await?;
        Ok(purge)
    }

    #[tracing::instrument(skip_all, fields(event_id = %ev.event_id))]
    async fn insert_agent_event(&self, ev: &NewAgentEvent) -> StoreResult<EventAccepted> {
        let done = sqlx::query(
            "INSERT INTO agent_events (event_id, employee_id, device_id, username, hostname, kind, event, \
             occurred_at, utc_offset_secs, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(ev.event_id)
        .bind(ev.employee_id)
        .bind(ev.device_id)
        .bind(&ev.username)
        .bind(&ev.hostname)
        .bind(ev.event.kind())
        .bind(serde_json::to_string(&ev.event).expect("events serialise"))
        .bind(ev.timestamp.to_utc())
        .bind(ev.timestamp.offset().local_minus_utc())
        .bind(ev.received_at)
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
             received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14::jsonb, $15) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(a.event_id)
        .bind(a.employee_id)
        .bind(a.device_id)
        .bind(&a.username)
        .bind(&a.hostname)
        .bind(a.start.to_utc())
        .bind(a.start.offset().local_minus_utc())
        .bind(a.duration_secs as i32)
        .bind(a.observed_secs as i32)
        .bind(a.active_secs.map(|v| v as i32))
        .bind(a.idle_secs.map(|v| v as i32))
        .bind(a.key_presses.map(|v| v as i32))
        .bind(serde_json::to_string(&a.apps).expect("lists serialise"))
        .bind(serde_json::to_string(&a.sites).expect("lists serialise"))
        .bind(a.received_at)
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

    #[tracing::instrument(skip(self))]
    async fn purge_activity(&self, cutoff: DateTime<Utc>, batch: u32) -> StoreResult<u64> {
        self.delete_in_batches(
            "DELETE FROM employee_activity WHERE event_id IN ( \
                 SELECT event_id FROM employee_activity WHERE occurred_at < $1 LIMIT $2)",
            cutoff,
            batch,
        )
        .await
    }

    #[tracing::instrument(skip(self, employees), fields(employees = employees.len()))]
    async fn summary_rows(
        &self,
        employees: &[i64],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<SummaryRows> {
        let heartbeats: Vec<(i64, DateTime<Utc>, String)> = sqlx::query_as(
            "SELECT employee_id, occurred_at, status FROM employee_heartbeats \
             WHERE employee_id = ANY($1) AND occurred_at >= $2 AND occurred_at < $3 ORDER BY occurred_at",
        )
        .bind(employees)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let activity = sqlx::query(&format!(
            "SELECT {ACTIVITY_COLUMNS} FROM employee_activity \
             WHERE employee_id = ANY($1) AND occurred_at >= $2 AND occurred_at < $3 ORDER BY occurred_at"
        ))
        .bind(employees)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        // Start-ups are looked up a day early: the boot they report may be
        // in the span although the agent started after it.
        let events: Vec<(i64, DateTime<Utc>, String)> = sqlx::query_as(
            "SELECT employee_id, occurred_at, event::text FROM agent_events \
             WHERE employee_id = ANY($1) AND kind IN ('startup', 'shutdown') \
             AND occurred_at >= $2 AND occurred_at < $3 ORDER BY occurred_at",
        )
        .bind(employees)
        .bind(from - chrono::Duration::days(1))
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let logs: Vec<(i64, DateTime<Utc>)> = sqlx::query_as(
            "SELECT employee_id, occurred_at FROM employee_logs \
             WHERE employee_id = ANY($1) AND occurred_at >= $2 AND occurred_at < $3 ORDER BY occurred_at",
        )
        .bind(employees)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(SummaryRows {
            heartbeats: heartbeats
                .into_iter()
                .map(|(e, t, s)| Ok((e, t, parse_status(&s)?)))
                .collect::<StoreResult<_>>()?,
            activity: activity.iter().map(activity_record).collect::<StoreResult<_>>()?,
            events: events
                .into_iter()
                .map(|(e, t, ev)| Ok((e, t, parse_event(&ev)?)))
                .collect::<StoreResult<_>>()?,
            logs,
        })
    }

    async fn policy(&self) -> StoreResult<Option<(i64, String)>> {
        Ok(
            sqlx::query_as("SELECT revision, policy::text FROM monitoring_policy WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn set_policy(&self, policy_json: &str, now: DateTime<Utc>) -> StoreResult<i64> {
        let (revision,): (i64,) = sqlx::query_as(
            "INSERT INTO monitoring_policy (id, revision, policy, updated_at) VALUES (1, 1, $1::jsonb, $2) \
             ON CONFLICT (id) DO UPDATE SET revision = monitoring_policy.revision + 1, \
             policy = EXCLUDED.policy, updated_at = EXCLUDED.updated_at RETURNING revision",
        )
        .bind(policy_json)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(revision)
    }

    async fn insert_consent(&self, c: &NewConsent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO consents (event_id, employee_id, device_id, consent_version, accepted_at, \
             utc_offset_secs, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(c.event_id)
        .bind(c.employee_id)
        .bind(c.device_id)
        .bind(&c.version)
        .bind(c.accepted_at.to_utc())
        .bind(c.accepted_at.offset().local_minus_utc())
        .bind(c.received_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn consents(&self, employee_id: i64) -> StoreResult<Vec<ConsentEntry>> {
        let rows: Vec<(Uuid, i64, String, DateTime<Utc>, i32, DateTime<Utc>)> = sqlx::query_as(
            "SELECT event_id, device_id, consent_version, accepted_at, utc_offset_secs, received_at \
             FROM consents WHERE employee_id = $1 ORDER BY accepted_at DESC, event_id",
        )
        .bind(employee_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(event_id, device_id, version, at, offset, received_at)| {
                Ok(ConsentEntry {
                    event_id,
                    device_id,
                    version,
                    accepted_at: with_offset(at, offset)?,
                    received_at,
                })
            })
            .collect()
    }

    async fn agent_events(&self, q: &ListQuery) -> StoreResult<Vec<AgentEventRecord>> {
        let mut qb = QueryBuilder::new(
            "SELECT event_id, employee_id, device_id, username, hostname, event::text AS event, occurred_at, \
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
                    timestamp: with_offset(row.try_get("occurred_at")?, row.try_get("utc_offset_secs")?)?,
                    received_at: row.try_get("received_at")?,
                })
            })
            .collect()
    }

    async fn purge_agent_events(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM agent_events WHERE occurred_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    #[tracing::instrument(skip(self))]
    async fn purge_logs(&self, cutoff: DateTime<Utc>, batch: u32) -> StoreResult<Vec<PurgedLog>> {
        let paths: Vec<String> = sqlx::query_scalar(
            "DELETE FROM employee_logs WHERE id IN ( \
                 SELECT id FROM employee_logs WHERE occurred_at < $1 ORDER BY occurred_at LIMIT $2) \
             RETURNING screenshot_path",
        )
        .bind(cutoff)
        .bind(i64::from(batch))
        .fetch_all(&self.pool)
        .await?;
        Ok(paths
            .into_iter()
            .map(|screenshot_path| PurgedLog { screenshot_path })
            .collect())
    }
}
