//! Bad input: every case a 4xx JSON error, nothing stored, the server still serving.

use chrono::Duration;
use serde_json::{json, Value};
use wfh_protocol::HeartbeatStatus;

use crate::helpers::{png, Backend, TestApp};
use crate::on_both_backends;

async fn expect_error(res: reqwest::Response, status: u16, code: &str, what: &str) {
    assert_eq!(res.status().as_u16(), status, "{what}");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{what}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(!body["error"]["message"].as_str().unwrap().is_empty(), "{what}");
}

async fn bad_heartbeats_are_refused_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("max").await;
    let post = |body: reqwest::Body, content_type: &'static str| {
        app.http
            .post(app.url("/api/heartbeat"))
            .bearer_auth(token.expose())
            .header("content-type", content_type)
            .body(body)
    };
    let good = serde_json::to_value(app.heartbeat("max", HeartbeatStatus::Online)).unwrap();
    let with = |key: &str, v: Value| {
        let mut b = good.clone();
        b[key] = v;
        b.to_string()
    };
    let without = |key: &str| {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(key);
        b.to_string()
    };
    let json_ct = "application/json";
    let cases: Vec<(&str, String, &str, u16, &str)> = vec![
        (
            "malformed JSON",
            "{\"username\": ".into(),
            json_ct,
            400,
            "invalid_body",
        ),
        ("not an object", "[1,2,3]".into(), json_ct, 400, "invalid_body"),
        ("missing status", without("status"), json_ct, 400, "invalid_body"),
        (
            "missing event_id",
            without("event_id"),
            json_ct,
            400,
            "invalid_body",
        ),
        (
            "unknown status",
            with("status", json!("away")),
            json_ct,
            400,
            "invalid_body",
        ),
        (
            "event id not a UUID",
            with("event_id", json!("42")),
            json_ct,
            400,
            "invalid_body",
        ),
        (
            "timestamp without offset",
            with("timestamp", json!("2026-01-01T10:00:00")),
            json_ct,
            400,
            "invalid_body",
        ),
        (
            "unknown field",
            with("extra", json!(1)),
            json_ct,
            400,
            "invalid_body",
        ),
        (
            "timestamp in 1970",
            with("timestamp", json!("1970-01-01T00:00:00Z")),
            json_ct,
            422,
            "expired",
        ),
        (
            "timestamp in 3000",
            with("timestamp", json!("3000-01-01T00:00:00+05:00")),
            json_ct,
            422,
            "timestamp_in_future",
        ),
        (
            "empty username",
            with("username", json!("  ")),
            json_ct,
            422,
            "invalid_field",
        ),
        (
            "huge hostname",
            with("hostname", json!("h".repeat(300))),
            json_ct,
            422,
            "invalid_field",
        ),
        (
            "control characters",
            with("hostname", json!("a\u{0}b")),
            json_ct,
            422,
            "invalid_field",
        ),
        (
            "wrong content type",
            good.to_string(),
            "text/plain",
            415,
            "unsupported_media_type",
        ),
        (
            "oversize body",
            format!("{{\"pad\": \"{}\"}}", "x".repeat(100_000)),
            json_ct,
            413,
            "payload_too_large",
        ),
    ];
    for (what, body, ct, status, code) in cases {
        expect_error(post(body.into(), ct).send().await.unwrap(), status, code, what).await;
    }
    // A bit later than allowed skew is refused; within it is accepted.
    let mut future = app.heartbeat("max", HeartbeatStatus::Online);
    future.timestamp = app.now() + Duration::minutes(11);
    let refused = app.client.heartbeat(&token, &future).await.unwrap_err();
    assert_eq!(refused.status().unwrap(), 422);
    assert_eq!(refused.code(), Some("timestamp_in_future"));
    future.timestamp = app.now() + Duration::minutes(9);
    app.client.heartbeat(&token, &future).await.unwrap();

    assert_eq!(
        app.count("heartbeats").await,
        1,
        "only the valid heartbeat is stored"
    );
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

async fn bad_log_uploads_are_refused_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.max_screenshot_bytes = 1024 * 1024).await;
    let (token, _) = app.enrolled("nia").await;
    let meta = || serde_json::to_vec(&app.log_meta("nia")).unwrap();
    let part = |bytes: Vec<u8>| reqwest::multipart::Part::bytes(bytes);
    let send = |form: reqwest::multipart::Form| {
        app.http
            .post(app.url("/api/log"))
            .bearer_auth(token.expose())
            .multipart(form)
            .send()
    };
    use reqwest::multipart::Form;

    let not_image = Form::new()
        .part("meta", part(meta()))
        .part("screenshot", part(b"%PDF-1.4 hello".to_vec()));
    expect_error(
        send(not_image).await.unwrap(),
        415,
        "unsupported_media_type",
        "not an image",
    )
    .await;
    // Declared as PNG, but a text file: the bytes decide.
    let lying = Form::new().part("meta", part(meta())).part(
        "screenshot",
        part(b"just text, honest".to_vec())
            .mime_str("image/png")
            .unwrap()
            .file_name("x.png"),
    );
    expect_error(
        send(lying).await.unwrap(),
        415,
        "unsupported_media_type",
        "declared png",
    )
    .await;
    let truncated = Form::new()
        .part("meta", part(meta()))
        .part("screenshot", part(png(100, 100)[..20].to_vec()));
    expect_error(
        send(truncated).await.unwrap(),
        415,
        "unsupported_media_type",
        "truncated png",
    )
    .await;
    let empty = Form::new()
        .part("meta", part(meta()))
        .part("screenshot", part(Vec::new()));
    expect_error(send(empty).await.unwrap(), 415, "unsupported_media_type", "empty").await;
    let no_shot = Form::new().part("meta", part(meta()));
    expect_error(send(no_shot).await.unwrap(), 400, "invalid_body", "no screenshot").await;
    let no_meta = Form::new().part("screenshot", part(png(10, 10)));
    expect_error(send(no_meta).await.unwrap(), 400, "invalid_body", "no meta").await;
    let bad_meta = Form::new()
        .part("meta", part(b"{not json".to_vec()))
        .part("screenshot", part(png(10, 10)));
    expect_error(send(bad_meta).await.unwrap(), 400, "invalid_body", "bad meta").await;
    let extra = Form::new()
        .part("meta", part(meta()))
        .part("screenshot", part(png(10, 10)))
        .part("x", part(vec![1]));
    expect_error(send(extra).await.unwrap(), 400, "invalid_body", "unexpected part").await;
    let mut old = app.log_meta("nia");
    old.timestamp = app.now() - Duration::days(31);
    let old_form = Form::new()
        .part("meta", part(serde_json::to_vec(&old).unwrap()))
        .part("screenshot", part(png(10, 10)));
    expect_error(
        send(old_form).await.unwrap(),
        422,
        "expired",
        "older than retention",
    )
    .await;
    // Path traversal in the file name is ignored: the server names files.
    let traversal = Form::new().part("meta", part(meta())).part(
        "screenshot",
        part(png(10, 10)).file_name("../../../../etc/passwd"),
    );
    let res = send(traversal).await.unwrap();
    assert_eq!(res.status(), 201);
    let stored: Value = res.json().await.unwrap();
    // Too big: per part (streamed) and for the whole body (Content-Length).
    let big = Form::new()
        .part("meta", part(meta()))
        .part("screenshot", part(vec![0x89; 1024 * 1024 + 1]));
    expect_error(
        send(big).await.unwrap(),
        413,
        "payload_too_large",
        "over the limit",
    )
    .await;
    // The whole body's Content-Length is judged before a byte of it is read.
    let head = raw_request(
        &app,
        &format!(
            "POST /api/log HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 3000000\r\n\r\n",
            token.expose()
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    // Not multipart at all.
    let res = app
        .http
        .post(app.url("/api/log"))
        .bearer_auth(token.expose())
        .json(&json!({"meta": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);

    assert_eq!(app.count("logs").await, 1);
    let files = app.screenshot_files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with(&format!("{}.png", stored["id"].as_str().unwrap())));
    assert!(!files[0].contains(".."));
    assert_eq!(
        app.http.get(app.url("/healthz")).send().await.unwrap().status(),
        200
    );
}

async fn admin_paths_and_queries_are_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (path, status) in [
        ("/api/admin/logs/..%2F..%2Fetc%2Fpasswd/screenshot", 404),
        ("/api/admin/logs/../../etc/passwd", 404),
        (
            "/api/admin/logs/00000000-0000-0000-0000-000000000000/screenshot",
            404,
        ),
        ("/api/admin/employees/999999", 404),
        ("/api/admin/employees/abc", 404),
        ("/api/admin/logs?limit=0", 422),
        ("/api/admin/logs?limit=5000", 422),
        ("/api/admin/logs?from=yesterday", 422),
        ("/api/admin/logs?from=2026-02-02&to=2026-01-01", 422),
        ("/api/admin/heartbeats?cursor=garbage", 422),
        ("/api/admin/heartbeats?employee_id=x", 400),
        ("/api/admin/heartbeats?bogus=1", 400),
        ("/api/nope", 404),
    ] {
        let (got, body) = app.admin_get(path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }
    let (status, body) = app
        .admin_post("/api/admin/employees", Some(json!({"username": ""})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_field"))
    );
    app.add_employee("oli").await;
    let (status, body) = app
        .admin_post("/api/admin/employees", Some(json!({"username": "oli"})))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("conflict")));
    let res = app.http.delete(app.url("/api/heartbeat")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 405);
}

/// Send raw bytes, return what comes back first.
async fn raw_request(app: &TestApp, request: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

on_both_backends!(
    bad_heartbeats_are_refused_and_nothing_is_stored,
    bad_log_uploads_are_refused_and_nothing_is_stored,
    admin_paths_and_queries_are_checked,
);
