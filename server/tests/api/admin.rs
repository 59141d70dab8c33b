use chrono::Duration;
use serde_json::Value;
use wfh_protocol::HeartbeatStatus;

use wfh_server::clock::Clock as _;

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

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

on_both_backends!(
    listings_filter_by_employee_and_dates_and_paginate,
    employees_show_presence_derived_from_the_latest_heartbeat,
    logs_filter_by_employee_and_single_log_is_served,
    operations_endpoints_answer,
);
