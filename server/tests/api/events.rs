//! Agent events: startup with the boot time, shutdown, missed detailed logs.

use chrono::{Duration, NaiveDate, Utc};
use uuid::Uuid;
use wfh_protocol::admin::AgentEventRecord;
use wfh_protocol::{AgentEvent, AgentEventRequest, MissedReason, ShutdownReason};

use crate::helpers::{ago, Backend, TestApp};
use crate::on_both_backends;

fn missed(app: &TestApp, slot: u8, reason: MissedReason) -> AgentEventRequest {
    AgentEventRequest {
        username: "ana".into(),
        hostname: "ana-laptop".into(),
        timestamp: app.now(),
        event_id: Uuid::new_v4(),
        event: AgentEvent::LogMissed {
            day: NaiveDate::from_ymd_opt(2026, 6, 3).unwrap(),
            slot,
            reason,
            detail: Some("no display".into()),
        },
    }
}

async fn agent_events_are_stored_once_and_listed_for_admins(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, enrolled) = app.enrolled("ana").await;
    let boot =
        chrono::DurationRound::duration_trunc(Utc::now() - Duration::hours(3), Duration::seconds(1)).unwrap();
    let startup = AgentEventRequest {
        username: "ana".into(),
        hostname: "ana-laptop".into(),
        timestamp: app.now(),
        event_id: Uuid::new_v4(),
        event: AgentEvent::Startup {
            boot_time: boot,
            agent_version: "0.1.0".into(),
            os: "Debian GNU/Linux 12".into(),
        },
    };
    let first = app.client.event(&token, &startup).await.unwrap();
    app.clock.advance(Duration::seconds(5));
    let again = app.client.event(&token, &startup).await.unwrap();
    assert_eq!(first, again, "a retry answers as the first delivery did");

    let report = missed(&app, 1, MissedReason::CaptureFailed);
    app.client.event(&token, &report).await.unwrap();
    let bye = AgentEventRequest {
        event_id: Uuid::new_v4(),
        timestamp: app.now(),
        event: AgentEvent::Shutdown {
            reason: ShutdownReason::Session,
        },
        ..startup.clone()
    };
    app.client.event(&token, &bye).await.unwrap();

    let (status, page) = app
        .admin_get(&format!("/api/admin/events?employee_id={}", enrolled.employee.id))
        .await;
    assert_eq!(status, 200, "{page}");
    let items: Vec<AgentEventRecord> = serde_json::from_value(page["items"].clone()).unwrap();
    assert_eq!(items.len(), 3, "{page}");
    let stored_startup = items.iter().find(|e| e.event_id == startup.event_id).unwrap();
    assert_eq!(stored_startup.event, startup.event);
    assert_eq!(stored_startup.timestamp, startup.timestamp);
    assert_eq!(stored_startup.employee_id, enrolled.employee.id);
    assert!(items.iter().any(|e| e.event == report.event));
    assert!(page["items"][0]["event"]["kind"].is_string());
}

async fn bad_agent_events_are_refused_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("ana").await;
    let post = |body: serde_json::Value| {
        app.http
            .post(app.url("/api/event"))
            .bearer_auth(token.expose())
            .json(&body)
            .send()
    };
    let good = serde_json::to_value(missed(&app, 0, MissedReason::NotRunning)).unwrap();

    let mut unknown_kind = good.clone();
    unknown_kind["event"]["kind"] = "coffee_break".into();
    let mut big_slot = good.clone();
    big_slot["event"]["slot"] = 200.into();
    let mut old = good.clone();
    old["timestamp"] = ago(&app, Duration::days(45)).to_rfc3339().into();
    let mut no_event = good.clone();
    no_event.as_object_mut().unwrap().remove("event");

    for (body, status) in [(unknown_kind, 400), (big_slot, 422), (old, 422), (no_event, 400)] {
        let res = post(body.clone()).await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{body}");
        let err: serde_json::Value = res.json().await.unwrap();
        assert!(err["error"]["code"].is_string(), "{err}");
    }
    assert_eq!(app.count("events").await, 0);
    // Still serving.
    assert_eq!(post(good).await.unwrap().status().as_u16(), 201);
}

async fn an_event_id_of_another_device_is_a_conflict(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ana, _) = app.enrolled("ana").await;
    let (ben, _) = app.enrolled("ben").await;
    let ev = missed(&app, 0, MissedReason::Paused);
    app.client.event(&ana, &ev).await.unwrap();
    let err = app.client.event(&ben, &ev).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(409), "{err}");
}

async fn retention_removes_old_agent_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("ana").await;
    let mut old = missed(&app, 0, MissedReason::NotRunning);
    old.timestamp = ago(&app, Duration::days(29));
    app.client.event(&token, &old).await.unwrap();
    app.client
        .event(&token, &missed(&app, 1, MissedReason::NotRunning))
        .await
        .unwrap();
    app.clock.advance(Duration::days(2));
    let report = wfh_server::retention::run(&app.state, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(report.events_deleted, 1);
    assert_eq!(app.count("events").await, 1);
}

on_both_backends!(
    agent_events_are_stored_once_and_listed_for_admins,
    bad_agent_events_are_refused_and_nothing_is_stored,
    an_event_id_of_another_device_is_a_conflict,
    retention_removes_old_agent_events,
);
