//! Retention: remove heartbeats, activity, logs, agent events and screenshot files older than
//! `retention_days`, in batches, and sweep files no row names.
//!
//! Rows go first, then their files: a crash in between leaves files without a
//! row, which the sweep removes; never a row without its file.

use std::time::Duration;

use chrono::Duration as Days;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::db::StoreError;
use crate::metrics::KindLabel;
use crate::state::AppState;

const HEARTBEAT_BATCH: u32 = 10_000;
const LOG_BATCH: u32 = 500;
/// Files younger than this are left alone by the sweep (uploads in flight).
pub const SWEEP_GRACE: Duration = Duration::from_secs(3600);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RetentionReport {
    pub heartbeats_deleted: u64,
    pub partitions_dropped: u64,
    pub logs_deleted: u64,
    pub events_deleted: u64,
    pub activity_deleted: u64,
    /// Expired dashboard sessions.
    pub sessions_deleted: u64,
    pub files_deleted: u64,
    pub orphans_removed: u64,
    pub temp_files_removed: u64,
}

/// One pass, as the scheduler and `wfh-server retention run` do it.
pub async fn run(state: &AppState, sweep_grace: Duration) -> Result<RetentionReport, StoreError> {
    let now = state.clock.now();
    let days = state.config.retention_days;
    let cutoff = now - Days::days(i64::from(days));
    state.store.prepare(now, days).await?;
    let mut report = RetentionReport::default();

    let hb = state.store.purge_heartbeats(cutoff, HEARTBEAT_BATCH).await?;
    report.heartbeats_deleted = hb.rows;
    report.partitions_dropped = hb.partitions_dropped;

    loop {
        let purged = state.store.purge_logs(cutoff, LOG_BATCH).await?;
        report.logs_deleted += purged.len() as u64;
        for log in &purged {
            match state.screenshots.remove(&log.screenshot_path).await {
                Ok(true) => report.files_deleted += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(file = log.screenshot_path, error = %e, "could not remove a screenshot")
                }
            }
        }
        if purged.len() < LOG_BATCH as usize {
            break;
        }
        tokio::task::yield_now().await;
    }

    report.activity_deleted = state.store.purge_activity(cutoff, HEARTBEAT_BATCH).await?;
    report.events_deleted = state.store.purge_agent_events(cutoff).await?;
    report.sessions_deleted = state.store.purge_sessions(now).await?;

    let sweep = state.screenshots.sweep(state.store.as_ref(), sweep_grace).await?;
    report.orphans_removed = sweep.orphans_removed;
    report.temp_files_removed = sweep.temp_files_removed;

    let m = &state.metrics.retention_deleted;
    m.get_or_create(&KindLabel { kind: "heartbeats" })
        .inc_by(report.heartbeats_deleted);
    m.get_or_create(&KindLabel { kind: "activity" })
        .inc_by(report.activity_deleted);
    m.get_or_create(&KindLabel { kind: "logs" })
        .inc_by(report.logs_deleted);
    m.get_or_create(&KindLabel { kind: "files" })
        .inc_by(report.files_deleted + report.orphans_removed);
    tracing::info!(
        %cutoff,
        heartbeats = report.heartbeats_deleted,
        partitions = report.partitions_dropped,
        logs = report.logs_deleted,
        events = report.events_deleted,
        activity = report.activity_deleted,
        sessions = report.sessions_deleted,
        files = report.files_deleted,
        orphans = report.orphans_removed,
        temp_files = report.temp_files_removed,
        "retention pass finished"
    );
    Ok(report)
}

/// Start the scheduled job (cron in UTC, from `retention_schedule`).
pub async fn schedule(state: AppState) -> Result<JobScheduler, JobSchedulerError> {
    let scheduler = JobScheduler::new().await?;
    let schedule = state.config.retention_schedule.clone();
    scheduler
        .add(Job::new_async(schedule.as_str(), move |_id, _sched| {
            let state = state.clone();
            Box::pin(async move {
                if let Err(e) = run(&state, SWEEP_GRACE).await {
                    tracing::error!(error = %e, "retention pass failed");
                }
            })
        })?)
        .await?;
    scheduler.start().await?;
    Ok(scheduler)
}
