use serde_json::Value;
use wfh_agent::client::{DeviceToken, Disposition};
use wfh_protocol::HeartbeatStatus;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

async fn error_of(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    (
        status,
        body["error"]["code"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn missing_wrong_and_revoked_tokens_get_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, enrolled) = app.enrolled("gil").await;
    let hb = app.heartbeat("gil", HeartbeatStatus::Online);

    let res = app
        .http
        .post(app.url("/api/heartbeat"))
        .json(&hb)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await, (401, "missing_token".into()));
    let res = app
        .http
        .post(app.url("/api/heartbeat"))
        .header("authorization", "Basic abc")
        .json(&hb)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await, (401, "missing_token".into()));
    let wrong = DeviceToken::new(format!("wfh_d_{}", "A".repeat(43)));
    let e = app.client.heartbeat(&wrong, &hb).await.unwrap_err();
    assert_eq!(
        (e.status().unwrap().as_u16(), e.code().unwrap()),
        (401, "invalid_token")
    );
    assert_eq!(e.disposition(), Disposition::Reenroll);

    app.client.heartbeat(&token, &hb).await.unwrap();
    let (status, _) = app
        .admin_post(&format!("/api/admin/devices/{}/revoke", enrolled.device_id), None)
        .await;
    assert_eq!(status, 200);
    let e = app
        .client
        .heartbeat(&token, &app.heartbeat("gil", HeartbeatStatus::Online))
        .await
        .unwrap_err();
    assert_eq!(
        (e.status().unwrap().as_u16(), e.code().unwrap()),
        (401, "device_revoked")
    );
    assert_eq!(app.count("heartbeats").await, 1);
}

async fn disabled_employee_is_refused_until_enabled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, enrolled) = app.enrolled("hal").await;
    let id = enrolled.employee.id;
    let (status, body) = app
        .admin_post(&format!("/api/admin/employees/{id}/disable"), None)
        .await;
    assert_eq!((status, body["active"].clone()), (200, Value::Bool(false)));
    let e = app
        .client
        .heartbeat(&token, &app.heartbeat("hal", HeartbeatStatus::Online))
        .await
        .unwrap_err();
    assert_eq!(
        (e.status().unwrap().as_u16(), e.code().unwrap()),
        (403, "employee_disabled")
    );
    // A disabled employee's codes cannot enrol either.
    let (_, code) = app
        .admin_post(&format!("/api/admin/employees/{id}/enrollment-codes"), None)
        .await;
    let e = app
        .client
        .enroll(code["code"].as_str().unwrap(), "hal", "h2")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("invalid_enrollment_code"));
    app.admin_post(&format!("/api/admin/employees/{id}/enable"), None)
        .await;
    app.client
        .heartbeat(&token, &app.heartbeat("hal", HeartbeatStatus::Online))
        .await
        .unwrap();
}

async fn device_token_on_the_admin_api_is_403(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("ida").await;
    for path in ["/api/admin/employees", "/api/admin/logs", "/api/admin/heartbeats"] {
        let res = app
            .http
            .get(app.url(path))
            .bearer_auth(token.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(res).await, (403, "admin_only".into()), "{path}");
    }
    let res = app
        .http
        .get(app.url("/api/admin/employees"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.0, 401);
    let res = app
        .http
        .get(app.url("/api/admin/employees"))
        .bearer_auth("wfh_a_notreal")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await, (401, "invalid_token".into()));
    // And an admin token is not a device token.
    let res = app
        .http
        .get(app.url("/api/whoami"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await, (401, "invalid_token".into()));
}

async fn enrolment_codes_are_single_use_and_expire(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, code) = app.add_employee("jon").await;
    // Case, spaces and dashes do not matter when typing it.
    let sloppy = code.replace('-', " ").to_lowercase();
    app.client.enroll(&sloppy, "jon", "jon-laptop").await.unwrap();
    let e = app.client.enroll(&code, "jon", "jon-laptop").await.unwrap_err();
    assert_eq!(
        (e.status().unwrap().as_u16(), e.code().unwrap()),
        (401, "invalid_enrollment_code")
    );

    let (_, body) = app.admin_get("/api/admin/employees").await;
    let id = body["employees"][0]["id"].as_i64().unwrap();
    let (_, fresh) = app
        .admin_post(&format!("/api/admin/employees/{id}/enrollment-codes"), None)
        .await;
    app.clock.advance(chrono::Duration::hours(24 * 7 + 1));
    let e = app
        .client
        .enroll(fresh["code"].as_str().unwrap(), "jon", "jon-2")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("invalid_enrollment_code"));
    let (_, devices) = app.admin_get(&format!("/api/admin/employees/{id}/devices")).await;
    assert_eq!(devices.as_array().unwrap().len(), 1);
}

async fn the_token_decides_who_is_speaking(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (kim, kim_enrolled) = app.enrolled("kim").await;
    app.enrolled("lea").await;
    // Kim's device claims to be Lea: stored under Kim, with the claim as reported.
    let hb = app.heartbeat("lea", HeartbeatStatus::Online);
    app.client.heartbeat(&kim, &hb).await.unwrap();
    let (_, body) = app.admin_get("/api/admin/heartbeats").await;
    assert_eq!(body["items"][0]["employee_id"], kim_enrolled.employee.id);
    assert_eq!(body["items"][0]["username"], "lea");
    let (_, list) = app.admin_get("/api/admin/employees").await;
    let lea = list["employees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["username"] == "lea")
        .unwrap()
        .clone();
    assert_eq!(lea["status"], "offline");
}

on_both_backends!(
    missing_wrong_and_revoked_tokens_get_401,
    disabled_employee_is_refused_until_enabled,
    device_token_on_the_admin_api_is_403,
    enrolment_codes_are_single_use_and_expire,
    the_token_decides_who_is_speaking,
);
