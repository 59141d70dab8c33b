//! The monitoring policy (public to agents, changed by admins) and consents.

use serde_json::json;
use uuid::Uuid;
use wfh_protocol::admin::ConsentEntry;
use wfh_protocol::{AgentEvent, AgentEventRequest, MonitoringPolicy, PolicyDocument};

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

async fn put_policy(app: &TestApp, body: serde_json::Value) -> (u16, serde_json::Value) {
    app.admin_put("/api/admin/policy", body).await
}

async fn the_policy_is_public_and_admins_change_it(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.retention_days = 21).await;
    // Public: an agent reads it before it is enrolled.
    let first = app.client.policy().await.unwrap();
    assert_eq!(first.revision, 0, "the built-in default");
    assert_eq!(
        first.policy.retention_days, 21,
        "retention comes from the server's setting"
    );
    assert_eq!(first.consent, first.policy.consent());
    assert!(first.consent.sections[2]
        .items
        .iter()
        .any(|i| i.contains("after 21 days")));

    let (status, body) = put_policy(
        &app,
        json!({"organisation": "Acme Ltd", "viewers": "your team lead and HR",
               "heartbeat_interval_secs": 600, "logs_per_day": 2,
               "working_days": ["mon", "tue", "wed", "thu"], "window_start": "09:00", "window_end": "17:30",
               "pause": {"allowed": true, "max_minutes": 60}, "quit_allowed": false, "retention_days": 999}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let doc: PolicyDocument = serde_json::from_value(body).unwrap();
    assert_eq!(doc.revision, 1);
    assert_eq!(
        doc.policy.retention_days, 21,
        "retention_days is not the admin API's to change"
    );
    assert_ne!(doc.consent.version, first.consent.version);
    assert!(doc.consent.title.starts_with("Acme Ltd"));

    let seen = app.client.policy().await.unwrap();
    assert_eq!(seen, doc, "agents see the new policy");
    let (status, admin_view) = app.admin_get("/api/admin/policy").await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_value::<PolicyDocument>(admin_view).unwrap(), doc);

    // Presence follows the policy's interval: 15 minutes without a heartbeat
    // is offline at 5-minute heartbeats, still online at 10-minute ones.
    let (token, enrolled) = app.enrolled("ana").await;
    app.client
        .heartbeat(
            &token,
            &app.heartbeat("ana", wfh_protocol::HeartbeatStatus::Online),
        )
        .await
        .unwrap();
    app.clock.advance(chrono::Duration::minutes(15));
    let (_, ana) = app
        .admin_get(&format!("/api/admin/employees/{}", enrolled.employee.id))
        .await;
    assert_eq!(ana["status"], "online", "{ana}");

    // A second change bumps the revision again.
    let (status, body) = put_policy(&app, serde_json::to_value(MonitoringPolicy::default()).unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revision"], 2);
}

async fn a_bad_policy_is_refused_with_every_reason_and_nothing_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = app.client.policy().await.unwrap();
    let (status, body) = put_policy(
        &app,
        json!({"heartbeat_interval_secs": 0, "working_days": ["monday"], "window_start": "18:00", "window_end": "08:00"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_field");
    let message = body["error"]["message"].as_str().unwrap();
    for part in ["heartbeat_interval_secs", "\"monday\"", "before window_end"] {
        assert!(message.contains(part), "{message}");
    }
    let (status, body) = put_policy(&app, json!({"screenshots_per_hour": 60})).await;
    assert_eq!(status, 400, "unknown keys are refused: {body}");
    assert_eq!(app.client.policy().await.unwrap(), before);

    // Device tokens cannot change it.
    let (token, _) = app.enrolled("ana").await;
    let res = app
        .http
        .put(app.url("/api/admin/policy"))
        .bearer_auth(token.expose())
        .json(&MonitoringPolicy::default())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
}

async fn consents_are_recorded_once_and_kept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, enrolled) = app.enrolled("ana").await;
    let version = app.client.policy().await.unwrap().consent.version;
    let given = AgentEventRequest {
        username: "ana".into(),
        hostname: "ana-laptop".into(),
        timestamp: app.now(),
        event_id: Uuid::new_v4(),
        event: AgentEvent::ConsentGiven {
            version: version.clone(),
        },
    };
    let first = app.client.event(&token, &given).await.unwrap();
    let again = app.client.event(&token, &given).await.unwrap();
    assert_eq!(first, again);
    let (status, body) = app
        .admin_get(&format!("/api/admin/employees/{}/consents", enrolled.employee.id))
        .await;
    assert_eq!(status, 200, "{body}");
    let consents: Vec<ConsentEntry> = serde_json::from_value(body).unwrap();
    assert_eq!(consents.len(), 1, "a retry records nothing twice");
    assert_eq!(consents[0].version, version);
    assert_eq!(consents[0].accepted_at, given.timestamp);
    assert_eq!(consents[0].device_id, enrolled.device_id);

    // Kept past the 30-day retention (it is the record of the agreement).
    app.clock.advance(chrono::Duration::days(45));
    let report = wfh_server::retention::run(&app.state, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        report.events_deleted, 1,
        "the consent event itself goes: {report:?}"
    );
    let (_, body) = app
        .admin_get(&format!("/api/admin/employees/{}/consents", enrolled.employee.id))
        .await;
    assert_eq!(body.as_array().map(Vec::len), Some(1), "{body}");

    // A malformed version is refused and nothing is stored.
    let bad = AgentEventRequest {
        event_id: Uuid::new_v4(),
        timestamp: app.now(),
        event: AgentEvent::ConsentGiven {
            version: "../../etc".into(),
        },
        ..given
    };
    let err = app.client.event(&token, &bad).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(422));
    let (_, body) = app
        .admin_get(&format!("/api/admin/employees/{}/consents", enrolled.employee.id))
        .await;
    assert_eq!(body.as_array().map(Vec::len), Some(1));
    let (status, _) = app.admin_get("/api/admin/employees/9999/consents").await;
    assert_eq!(status, 404);
}

on_both_backends!(
    the_policy_is_public_and_admins_change_it,
    a_bad_policy_is_refused_with_every_reason_and_nothing_changes,
    consents_are_recorded_once_and_kept,
);
