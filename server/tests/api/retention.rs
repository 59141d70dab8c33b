use std::time::Duration as StdDuration;

use chrono::Duration;
use wfh_protocol::HeartbeatStatus;

use crate::helpers::{ago, png, Backend, TestApp};
use crate::on_both_backends;

async fn retention_removes_rows_and_files_past_the_limit_and_keeps_the_rest(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("pia").await;

    // Old data: taken 2 hours ago, so 30 days from now it is past the limit.
    let mut old_hb = app.heartbeat("pia", HeartbeatStatus::Online);
    old_hb.timestamp = ago(&app, Duration::hours(2));
    app.client.heartbeat(&token, &old_hb).await.unwrap();
    let mut old_meta = app.log_meta("pia");
    old_meta.timestamp = ago(&app, Duration::hours(2));
    let old_log = app
        .client
        .log(&token, &old_meta, png(20, 20), "image/png")
        .await
        .unwrap();
    // Data that stays: taken 30 minutes ago.
    let mut kept_hb = app.heartbeat("pia", HeartbeatStatus::Idle);
    kept_hb.timestamp = ago(&app, Duration::minutes(30));
    app.client.heartbeat(&token, &kept_hb).await.unwrap();

    // 30 days less 1 hour later: the cutoff falls between the two.
    app.clock.advance(Duration::days(30) - Duration::hours(1));
    let new_hb = app.heartbeat("pia", HeartbeatStatus::Online);
    app.client.heartbeat(&token, &new_hb).await.unwrap();
    let new_log = app
        .client
        .log(&token, &app.log_meta("pia"), png(20, 20), "image/png")
        .await
        .unwrap();
    assert_eq!(app.count("heartbeats").await, 3);
    assert_eq!(app.screenshot_files().len(), 2);

    // A file no row names (a crash between write and commit) and a stale temp file.
    let day = app.state.screenshots.root().join("2020/01/01");
    std::fs::create_dir_all(&day).unwrap();
    std::fs::write(day.join("orphan.png"), png(4, 4)).unwrap();
    std::fs::write(day.join(".tmp-abandoned"), b"partial").unwrap();

    let report = wfh_server::retention::run(&app.state, StdDuration::ZERO)
        .await
        .unwrap();
    assert_eq!(report.heartbeats_deleted, 1, "{report:?}");
    assert_eq!(report.logs_deleted, 1);
    assert_eq!(report.files_deleted, 1);
    assert_eq!(report.orphans_removed, 1);
    assert_eq!(report.temp_files_removed, 1);
    if backend == Backend::Postgres {
        assert!(report.partitions_dropped >= 1, "{report:?}");
    }

    let (_, hbs) = app.admin_get("/api/admin/heartbeats").await;
    let ids: Vec<_> = hbs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        vec![new_hb.event_id.to_string(), kept_hb.event_id.to_string()]
    );
    let (_, logs) = app.admin_get("/api/admin/logs").await;
    assert_eq!(logs["items"].as_array().unwrap().len(), 1);
    assert_eq!(logs["items"][0]["id"], new_log.id.to_string());
    let (status, _) = app.admin_get(&old_log.image.url).await;
    assert_eq!(status, 404);
    let files = app.screenshot_files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].contains(&new_log.id.to_string()));
    assert!(!day.exists(), "empty day folders are removed");

    // A second pass finds nothing more to do.
    let again = wfh_server::retention::run(&app.state, StdDuration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        (again.heartbeats_deleted, again.logs_deleted, again.files_deleted),
        (0, 0, 0)
    );
    assert_eq!(app.count("heartbeats").await, 2);
}

async fn retention_spares_files_still_being_written(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = app.state.screenshots.root().join("2026/01/01");
    std::fs::create_dir_all(&day).unwrap();
    std::fs::write(day.join(".tmp-in-flight"), b"partial").unwrap();
    std::fs::write(day.join("just-renamed.png"), png(4, 4)).unwrap();
    let report = wfh_server::retention::run(&app.state, wfh_server::retention::SWEEP_GRACE)
        .await
        .unwrap();
    assert_eq!((report.orphans_removed, report.temp_files_removed), (0, 0));
    assert_eq!(app.screenshot_files().len(), 2);
}

on_both_backends!(
    retention_removes_rows_and_files_past_the_limit_and_keeps_the_rest,
    retention_spares_files_still_being_written,
);
