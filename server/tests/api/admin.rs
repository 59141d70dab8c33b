use chrono::Duration;
use secrecy::ExposeSecret as _;
use serde_json::Value;
use sqlx::Connection as _;
use wfh_protocol::HeartbeatStatus;
use wfh_server::clock::Clock as _;
use wfh_server::db::NewHeartbeat;
use wfh_server::Application;

use crate::helpers::{ago, png, Backend, TestApp};
use crate::on_both_backends;

async fn listings_filter_by_employee_and_dates_and_paginate(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ray, ray_e) = app.enrolled("ray").await;
    let (sam, _) = app.enrolled("sam").await;
    // Ray: 7 heartbeats an hour apart, 3 days ago; Sam: 2 now.
    let mut sent = Vec::new();
    for h in 0..7 {
        let mut hb = app.heartbeat("ray", HeartbeatStatus::Online);
        hb.timestamp = ago(&app, Duration::days(3) - Duration::hours(h));
        app.client.heartbeat(&ray, &hb).await.unwrap();
        sent.push(hb.event_id.to_string());
    }
    for _ in 0..2 {
        app.client
            .heartbeat(&sam, &app.heartbeat("sam", HeartbeatStatus::Idle))
            .await
            .unwrap();
    }
    sent.reverse(); // newest first

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/api/admin/heartbeats?employee_id={}&limit=3", ray_e.employee.id);
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = app.admin_get(&path).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["event_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, sent, "every heartbeat once, newest first");
    assert_eq!(pages, 3);

    // Date range: only the last 2 days → Sam's two.
    let from = (app.clock.now() - Duration::days(2)).to_rfc3339();
    let (_, recent) = app
        .admin_get(&format!("/api/admin/heartbeats?from={}", urlencode(&from)))
        .await;
    assert_eq!(recent["items"].as_array().unwrap().len(), 2);
    assert!(recent["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["username"] == "sam"));
    // A whole day by date (UTC), `to` inclusive.
    let day = (app.clock.now() - Duration::days(3)).date_naive();
    let (_, that_day) = app
        .admin_get(&format!("/api/admin/heartbeats?from={day}&to={day}"))
        .await;
    let expected = sent
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            (app.clock.now() - Duration::days(3) + Duration::hours(6 - *i as i64)).date_naive() == day
        })
        .count();
    assert_eq!(that_day["items"].as_array().unwrap().len(), expected);
}

async fn employees_show_presence_derived_from_the_latest_heartbeat(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (tia, _) = app.enrolled("tia").await;
    let (uma, _) = app.enrolled("uma").await;
    app.enrolled("vic").await; // never sends anything
    let mut paused = app.heartbeat("tia", HeartbeatStatus::Paused);
    paused.timestamp = ago(&app, Duration::minutes(1));
    app.client.heartbeat(&tia, &paused).await.unwrap();
    // An older heartbeat delivered late (from the outbox) does not win.
    let mut late = app.heartbeat("tia", HeartbeatStatus::Online);
    late.timestamp = ago(&app, Duration::minutes(4));
    app.client.heartbeat(&tia, &late).await.unwrap();
    let mut old = app.heartbeat("uma", HeartbeatStatus::Online);
    old.timestamp = ago(&app, Duration::minutes(11));
    app.client.heartbeat(&uma, &old).await.unwrap();

    let status_of = |list: &Value, name: &str| {
        list["employees"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["username"] == name)
            .unwrap()["status"]
            .clone()
    };
    let (_, list) = app.admin_get("/api/admin/employees").await;
    assert_eq!(list["heartbeat_interval_secs"], 300);
    assert_eq!(status_of(&list, "tia"), "paused");
    assert_eq!(
        status_of(&list, "uma"),
        "offline",
        "11 minutes is more than two intervals"
    );
    assert_eq!(status_of(&list, "vic"), "offline");
    // Each employee's own page says what the list says.
    for e in list["employees"].as_array().unwrap() {
        let (status, one) = app.admin_get(&format!("/api/admin/employees/{}", e["id"])).await;
        assert_eq!(status, 200, "{one}");
        assert_eq!(&one, e);
    }
    app.clock.advance(Duration::minutes(10));
    let (_, list) = app.admin_get("/api/admin/employees").await;
    assert_eq!(status_of(&list, "tia"), "offline");
}

async fn logs_filter_by_employee_and_single_log_is_served(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (wes, wes_e) = app.enrolled("wes").await;
    let (xia, _) = app.enrolled("xia").await;
    let mine = app
        .client
        .log(&wes, &app.log_meta("wes"), png(30, 20), "image/png")
        .await
        .unwrap();
    app.client
        .log(&xia, &app.log_meta("xia"), png(30, 20), "image/png")
        .await
        .unwrap();
    let (_, page) = app
        .admin_get(&format!("/api/admin/logs?employee_id={}", wes_e.employee.id))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], mine.id.to_string());
    assert_eq!(page["next_cursor"], Value::Null);
    let (status, one) = app.admin_get(&format!("/api/admin/logs/{}", mine.id)).await;
    assert_eq!(status, 200);
    assert_eq!(one["event_id"], mine.event_id.to_string());
}

async fn operations_endpoints_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("yan").await;
    app.client
        .heartbeat(&token, &app.heartbeat("yan", HeartbeatStatus::Online))
        .await
        .unwrap();
    let health: Value = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("wfh_heartbeats_total{outcome=\"stored\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("wfh_http_requests_total{route=\"/api/heartbeat\",method=\"POST\",status=\"201\"} 1"),
        "{metrics}"
    );
    let doc: Value = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/heartbeat"]["post"].is_object());
}

/// The presence written on an employee's row: (agent time, status).
async fn presence_on_row(db: &str, username: &str) -> Option<(chrono::DateTime<chrono::Utc>, String)> {
    let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
    sqlx::query_as("SELECT seen_at, seen_status FROM employees WHERE username = $1 AND seen_at IS NOT NULL")
        .bind(username)
        .fetch_optional(&mut conn)
        .await
        .unwrap()
}

/// On PostgreSQL a committed heartbeat moves "last seen" forward in memory,
/// written to the employee's row once a second (server/src/db/pending_presence.rs).
/// Nothing may get lost that way: the admin API sees it at once, it is
/// written while serving, a graceful stop writes the last one, and after a
/// crash (heartbeats committed, their presence never written) the next start
/// rebuilds it from the heartbeats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_last_seen_is_seen_at_once_written_at_stop_and_rebuilt_after_a_crash() {
    let mut app = TestApp::spawn(Backend::Postgres).await;
    let config = (*app.state.config).clone();
    let db = config.database_url.as_ref().unwrap().expose_secret().to_owned();
    let (ada, ada_e) = app.enrolled("ada").await;
    let first = app.heartbeat("ada", HeartbeatStatus::Idle);
    app.client.heartbeat(&ada, &first).await.unwrap();
    let (_, one) = app
        .admin_get(&format!("/api/admin/employees/{}", ada_e.employee.id))
        .await;
    assert_eq!(one["status"], "idle", "{one}");
    // Written while serving, within a few flushes.
    let first_at = first.timestamp.with_timezone(&chrono::Utc);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while presence_on_row(&db, "ada").await != Some((first_at, "idle".into())) {
        assert!(
            std::time::Instant::now() < deadline,
            "presence never written while serving"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Acknowledged just before a graceful stop: the stop writes it.
    app.clock.advance(Duration::minutes(1));
    let second = app.heartbeat("ada", HeartbeatStatus::Online);
    app.client.heartbeat(&ada, &second).await.unwrap();
    app.stop().await;
    let second_at = second.timestamp.with_timezone(&chrono::Utc);
    assert_eq!(
        presence_on_row(&db, "ada").await,
        Some((second_at, "online".into()))
    );

    // A crash after a commit: the heartbeat is stored, its presence only in
    // the memory of a process that is gone.
    let store = wfh_server::db::connect(&config).await.unwrap();
    let device_id: i64 = {
        let mut conn = sqlx::PgConnection::connect(&db).await.unwrap();
        sqlx::query_scalar("SELECT id FROM devices")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    let later = second.timestamp + Duration::minutes(5);
    store
        .insert_heartbeats(&[NewHeartbeat {
            event_id: uuid::Uuid::new_v4(),
            employee_id: ada_e.employee.id,
            device_id,
            username: "ada".into(),
            hostname: "laptop".into(),
            status: HeartbeatStatus::Paused,
            timestamp: later,
            received_at: later.with_timezone(&chrono::Utc),
        }])
        .await
        .unwrap();
    // That process answered from memory before its row moved.
    let later_at = later.with_timezone(&chrono::Utc);
    let one = store
        .employee_with_presence(ada_e.employee.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.presence.unwrap().occurred_at, later_at);
    let all = store.employees_with_presence().await.unwrap();
    assert_eq!(all[0].presence.as_ref().unwrap().occurred_at, later_at);
    drop(store);
    assert_eq!(
        presence_on_row(&db, "ada").await,
        Some((second_at, "online".into()))
    );

    let restarted = Application::build_with_clock(config, app.clock.clone())
        .await
        .unwrap();
    assert_eq!(
        presence_on_row(&db, "ada").await,
        Some((later_at, "paused".into()))
    );
    let row = restarted
        .state()
        .store
        .employee_with_presence(ada_e.employee.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.presence.unwrap().occurred_at, later_at);
}

/// On PostgreSQL the server keeps every employee in memory and reads only
/// the rows written since its last read (server/src/db/roster.rs). Writes by
/// another process are seen on the next read, and so is a write whose
/// transaction began first but committed after a later one's: "since" is
/// the oldest transaction still running at the last read, not the newest
/// write seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_employee_list_sees_every_write_of_other_processes_in_any_commit_order() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let db = app.database_url();
    let (ada, _) = app.add_employee("ada").await;
    let field = |list: &Value, name: &str, key: &str| {
        list["employees"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["username"] == name)
            .map_or(Value::Null, |e| e[key].clone())
    };
    let (_, list) = app.admin_get("/api/admin/employees").await;
    assert_eq!(list["employees"].as_array().unwrap().len(), 1, "{list}");

    // Another process (the CLI, another server) adds, renames and disables.
    let mut other = sqlx::PgConnection::connect(&db).await.unwrap();
    sqlx::query(
        "INSERT INTO employees (username, display_name, created_at) VALUES ('grace', 'Grace', now())",
    )
    .execute(&mut other)
    .await
    .unwrap();
    let (_, list) = app.admin_get("/api/admin/employees").await;
    assert_eq!(field(&list, "grace", "display_name"), "Grace", "{list}");
    sqlx::query("UPDATE employees SET active = false WHERE id = $1")
        .bind(ada)
        .execute(&mut other)
        .await
        .unwrap();
    let (_, list) = app.admin_get("/api/admin/employees").await;
    assert_eq!(field(&list, "ada", "active"), false, "{list}");

    // A transaction that writes first and commits last.
    let mut slow = sqlx::PgConnection::connect(&db).await.unwrap();
    sqlx::query("BEGIN").execute(&mut slow).await.unwrap();
    sqlx::query("UPDATE employees SET team = 'night' WHERE id = $1")
        .bind(ada)
        .execute(&mut slow)
        .await
        .unwrap();
    sqlx::query("UPDATE employees SET display_name = 'Grace H.' WHERE username = 'grace'")
        .execute(&mut other)
        .await
        .unwrap();
    let (_, list) = app.admin_get("/api/admin/employees").await;
    assert_eq!(field(&list, "grace", "display_name"), "Grace H.", "{list}");
    assert_eq!(
        field(&list, "ada", "team"),
        Value::Null,
        "not committed yet: {list}"
    );
    sqlx::query("COMMIT").execute(&mut slow).await.unwrap();
    let (_, list) = app.admin_get("/api/admin/employees").await;
    assert_eq!(field(&list, "ada", "team"), "night", "{list}");
    // And the list agrees with each employee's own page, read afresh.
    for e in list["employees"].as_array().unwrap() {
        let (_, one) = app.admin_get(&format!("/api/admin/employees/{}", e["id"])).await;
        assert_eq!(&one, e);
    }
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

on_both_backends!(
    listings_filter_by_employee_and_dates_and_paginate,
    employees_show_presence_derived_from_the_latest_heartbeat,
    logs_filter_by_employee_and_single_log_is_served,
    operations_endpoints_answer,
);
