//! What an outside review found, each kept closed: hostile images, token
//! revocation, unbounded metrics, slow clients, panics on odd input.

use serde_json::Value;
use wfh_protocol::HeartbeatStatus;

use crate::helpers::{png, Backend, TestApp};
use crate::on_both_backends;

/// A PNG whose header declares `width`x`height` pixels and carries a few
/// bytes of data: a decompression bomb.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgba);
    let mut w = enc.write_header().unwrap();
    w.write_chunk(
        png::chunk::IDAT,
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    )
    .unwrap();
    w.finish().unwrap();
    out
}

async fn upload(app: &TestApp, token: &str, username: &str, image: Vec<u8>) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .part(
            "meta",
            reqwest::multipart::Part::bytes(serde_json::to_vec(&app.log_meta(username)).unwrap()),
        )
        .part("screenshot", reqwest::multipart::Part::bytes(image));
    let res = app
        .http
        .post(app.url("/api/log"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn images_that_would_exhaust_or_break_the_server_are_refused_at_upload(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("bo").await;

    let bomb = png_declaring(10_000, 10_000);
    let (status, body) = upload(&app, token.expose(), "bo", bomb).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("image_too_large")),
        "{body}"
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("10000x10000"),
        "{body}"
    );

    // The PNG signature, then a web page.
    let mut fake = b"\x89PNG\r\n\x1a\n".to_vec();
    fake.extend_from_slice(b"<html><body><script>alert(1)</script></body></html>");
    fake.resize(171, b' ');
    let (status, body) = upload(&app, token.expose(), "bo", fake).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (415, Some("unsupported_media_type")),
        "{body}"
    );

    assert_eq!(app.count("logs").await, 0);
    assert!(app.screenshot_files().is_empty(), "{:?}", app.screenshot_files());
    let (status, _) = upload(&app, token.expose(), "bo", png(64, 48)).await;
    assert_eq!(status, 201);
}

async fn a_stored_screenshot_that_cannot_be_decoded_never_answers_a_server_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("cy").await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, body) = upload(&app, token.expose(), "cy", png(64, 48)).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    // What a server before the upload checks may hold: a bomb and a web page
    // under screenshot names (written straight to the disk here).
    let root = app.state.screenshots.root().to_owned();
    let files = app.screenshot_files();
    assert_eq!(files.len(), 2);
    let mut fake = b"\x89PNG\r\n\x1a\n".to_vec();
    fake.extend_from_slice(b"<html>");
    let by_id = |id: &str| files.iter().find(|f| f.contains(id)).unwrap().clone();
    std::fs::write(root.join(by_id(&ids[0])), png_declaring(10_000, 10_000)).unwrap();
    std::fs::write(root.join(by_id(&ids[1])), &fake).unwrap();

    for id in &ids {
        let (status, body) = app.admin_get(&format!("/api/admin/logs/{id}/thumbnail")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("screenshot_unreadable")),
            "{id}: {body}"
        );
        // The file as stored is still there for whoever needs it.
        let res = app
            .http
            .get(app.url(&format!("/api/admin/logs/{id}/screenshot")))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    // The PDF export leaves the picture out and still answers.
    let res = app
        .http
        .get(app.url("/api/admin/logs/export/logs.pdf"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.bytes().await.unwrap().starts_with(b"%PDF"));
}

/// A dashboard session opened with `token`: the cookie pair.
async fn session_with(app: &TestApp, token: &str) -> String {
    let res = app
        .http
        .post(app.url("/api/session"))
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let set = crate::dashboard::session_cookie(&res).unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// The status of `GET /api/admin/employees` with a bearer token or a cookie.
async fn admin_status(app: &TestApp, bearer: Option<&str>, cookie: Option<&str>) -> u16 {
    let mut req = app.http.get(app.url("/api/admin/employees"));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(c) = cookie {
        req = req.header(reqwest::header::COOKIE, c);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn an_admin_token_can_be_listed_and_revoked_and_then_nothing_made_from_it_works(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, created) = app
        .admin_post(
            "/api/admin/admin-tokens",
            Some(serde_json::json!({"label": "alice's laptop", "expires_days": 30})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(created["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - app.now()).num_days(), 30);

    // Used once: a session from it and a bearer request work; both are cached
    // by nothing that outlives the revocation.
    let cookie = session_with(&app, &token).await;
    assert_eq!(admin_status(&app, Some(&token), None).await, 200);
    assert_eq!(admin_status(&app, None, Some(&cookie)).await, 200);
    let (status, list) = app.admin_get("/api/admin/admin-tokens").await;
    assert_eq!(status, 200);
    let listed = list.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{list}");
    assert!(
        !list.to_string().contains(&token),
        "a listing never shows a token"
    );
    let mine = listed.iter().find(|t| t["id"] == id).unwrap();
    assert_eq!(mine["label"], "alice's laptop");
    assert!(mine["last_used_at"].is_string(), "{mine}");
    assert!(mine["revoked_at"].is_null());

    let (status, revoked) = app
        .admin_post(&format!("/api/admin/admin-tokens/{id}/revoke"), None)
        .await;
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(admin_status(&app, Some(&token), None).await, 401);
    assert_eq!(admin_status(&app, None, Some(&cookie)).await, 401);
    // No new session from it either; the other token still works.
    let res = app
        .http
        .post(app.url("/api/session"))
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(admin_status(&app, Some(&app.admin_token), None).await, 200);
    let (status, _) = app
        .admin_post("/api/admin/admin-tokens/999999/revoke", None)
        .await;
    assert_eq!(status, 404);
    for bad in [
        serde_json::json!({"label": ""}),
        serde_json::json!({"label": "x", "expires_days": 0}),
        serde_json::json!({"label": "x", "expires_days": 100000}),
    ] {
        let (status, body) = app.admin_post("/api/admin/admin-tokens", Some(bad.clone())).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
}

async fn an_expired_admin_token_and_its_sessions_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, created) = app
        .admin_post(
            "/api/admin/admin-tokens",
            Some(serde_json::json!({"label": "contractor", "expires_days": 1})),
        )
        .await;
    let token = created["token"].as_str().unwrap().to_owned();
    // A session opened an hour before the token expires would live on for
    // eleven hours more on its own.
    app.clock.advance(chrono::Duration::hours(23));
    let cookie = session_with(&app, &token).await;
    assert_eq!(admin_status(&app, Some(&token), None).await, 200);
    assert_eq!(admin_status(&app, None, Some(&cookie)).await, 200);
    app.clock.advance(chrono::Duration::hours(2));
    assert_eq!(admin_status(&app, Some(&token), None).await, 401);
    assert_eq!(admin_status(&app, None, Some(&cookie)).await, 401);
    assert_eq!(admin_status(&app, Some(&app.admin_token), None).await, 200);
}

/// The command line revokes a token that the running server then refuses at
/// once: another process, so no cache of the server's may hold it.
async fn an_admin_token_revoked_from_the_command_line_is_refused_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, created) = app
        .admin_post(
            "/api/admin/admin-tokens",
            Some(serde_json::json!({"label": "ci"})),
        )
        .await;
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(admin_status(&app, Some(&token), None).await, 200);
    let config = (*app.state.config).clone();
    let mut out = Vec::new();
    wfh_server::cli::run(
        wfh_server::cli::Command::AdminToken(wfh_server::cli::AdminTokenCommand::List),
        config.clone(),
        &mut out,
    )
    .await
    .unwrap();
    let listing = String::from_utf8(out).unwrap();
    let line = listing
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&id.to_string()))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(line.contains("ci") && line.ends_with("active"), "{line}");
    assert!(!listing.contains(&token));
    let mut out = Vec::new();
    wfh_server::cli::run(
        wfh_server::cli::Command::AdminToken(wfh_server::cli::AdminTokenCommand::Revoke { id }),
        config,
        &mut out,
    )
    .await
    .unwrap();
    assert_eq!(admin_status(&app, Some(&token), None).await, 401);
}

async fn metrics_stay_the_same_size_whatever_paths_and_methods_clients_send(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let metrics = || async {
        app.http
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // Every route once, so the families exist before the measure.
    for _ in 0..3 {
        app.admin_get("/api/admin/employees").await;
        app.http.get(app.url("/api/nope")).send().await.unwrap();
    }
    let before = metrics().await.len();
    for i in 0..550 {
        let method = reqwest::Method::from_bytes(format!("X{}", i % 7).as_bytes()).unwrap();
        app.http
            .request(method, app.url(&format!("/random-{i}/{}", uuid::Uuid::new_v4())))
            .send()
            .await
            .unwrap();
        app.http
            .get(app.url(&format!("/api/admin/logs/{i}/x/y")))
            .send()
            .await
            .unwrap();
    }
    let text = metrics().await;
    assert!(
        text.len() < before + 2048,
        "/metrics grew from {before} to {} bytes",
        text.len()
    );
    assert!(!text.contains("random-"), "{text}");
    assert!(text.contains(r#"route="unmatched""#), "{text}");
    assert!(
        text.contains(r#"route="/api/admin/employees",method="GET",status="200""#),
        "{text}"
    );
    for name in [
        "wfh_build_info{version=",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(text.contains(name), "{name}: {text}");
    }
}

/// Raw bytes to the server; everything it answers until it closes the
/// connection (or `patience` passes, which fails the test).
async fn exchange(app: &TestApp, request: &[u8], patience: std::time::Duration) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(patience, stream.read_to_end(&mut out))
        .await
        .expect("the server closed the connection in time")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

async fn a_client_that_sends_half_a_request_is_cut_off(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.header_read_timeout_secs = 1;
        c.request_timeout_secs = 2;
    })
    .await;
    let (token, _) = app.enrolled("sly").await;
    // Half a header, then nothing: closed after the header timeout.
    let started = std::time::Instant::now();
    exchange(
        &app,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ",
        std::time::Duration::from_secs(10),
    )
    .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Headers in full, then a body that never comes: 408 and closed.
    let head = format!(
        "POST /api/heartbeat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{{\"username\"",
        token.expose()
    );
    let answer = exchange(&app, head.as_bytes(), std::time::Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    // The server is fine.
    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

async fn odd_dates_and_methods_get_clear_answers_not_dropped_connections(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in [
        "/api/admin/heartbeats?to=%2B262142-12-31",
        "/api/admin/heartbeats?from=-262143-01-01",
        "/api/admin/logs?to=9999-12-31",
        "/api/admin/summary?period=month&date=%2B262142-12-31",
        "/api/admin/summary?period=week&date=0000-01-01",
        "/api/admin/logs/export/logs.csv?to=%2B262142-12-31",
    ] {
        let (status, body) = app.admin_get(path).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(body["error"]["code"], "invalid_field", "{path}: {body}");
    }
    let (status, _) = app.admin_get("/api/admin/heartbeats?to=9998-12-31").await;
    assert_eq!(status, 200);
    for (path, allow) in [
        ("/api/heartbeat", "POST"),
        ("/api/admin/employees", "GET, POST"),
        ("/", "GET"),
    ] {
        let res = app
            .http
            .request(reqwest::Method::TRACE, app.url(path))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{path}");
        assert_eq!(res.headers()["allow"], allow, "{path}");
    }
}

async fn guessing_codes_or_admin_tokens_is_cut_off_per_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let (_, code) = app.add_employee("gus").await;
    let enroll = |from: &'static str, code: String| {
        app.http
            .post(app.url("/api/enroll"))
            .header("x-forwarded-for", from)
            .json(&serde_json::json!({"code": code, "username": "gus", "hostname": "gus-pc"}))
            .send()
    };
    let (attacker, office) = ("203.0.113.66", "198.51.100.7");
    for i in 0..wfh_server::throttle::FAILURES_ALLOWED {
        let res = enroll(attacker, format!("AAAA-BBBB-{i:04}")).await.unwrap();
        assert_eq!(res.status(), 401, "guess {i}");
    }
    let res = enroll(attacker, "AAAA-BBBB-CCCC".into()).await.unwrap();
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=15 * 60).contains(&wait), "{wait}");
    // Blocked means blocked: the right code from there waits too.
    assert_eq!(enroll(attacker, code.clone()).await.unwrap().status(), 429);
    // Everyone else is not held up by it.
    assert_eq!(enroll(office, code).await.unwrap().status(), 201);

    let sign_in = |from: &'static str, token: String| {
        app.http
            .post(app.url("/api/session"))
            .header("x-forwarded-for", from)
            .json(&serde_json::json!({ "token": token }))
            .send()
    };
    for i in 0..wfh_server::throttle::FAILURES_ALLOWED {
        let res = sign_in(attacker, format!("wfh_a_guess{i}")).await.unwrap();
        assert_eq!(res.status(), 401, "guess {i}");
    }
    assert_eq!(
        sign_in(attacker, app.admin_token.clone()).await.unwrap().status(),
        429
    );
    assert_eq!(
        sign_in(office, app.admin_token.clone()).await.unwrap().status(),
        201
    );
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (route, refused) in [("/api/enroll", 2), ("/api/session", 1)] {
        assert!(
            metrics.contains(&format!("wfh_rate_limited_total{{route=\"{route}\"}} {refused}")),
            "{route}: {metrics}"
        );
    }
    // The window ends.
    app.clock.advance(chrono::Duration::minutes(15));
    assert_eq!(
        sign_in(attacker, app.admin_token.clone()).await.unwrap().status(),
        201
    );
}

async fn a_new_enrolment_code_cancels_the_one_before(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, first) = app.add_employee("hal").await;
    let (status, second) = app
        .admin_post(&format!("/api/admin/employees/{id}/enrollment-codes"), None)
        .await;
    assert_eq!(status, 201);
    let refused = app.client.enroll(&first, "hal", "hal-pc").await.unwrap_err();
    assert_eq!(refused.status().unwrap(), 401);
    app.client
        .enroll(second["code"].as_str().unwrap(), "hal", "hal-pc")
        .await
        .unwrap();
}

async fn a_device_that_floods_heartbeats_is_slowed_to_far_above_the_policy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("flo").await;
    let (other, _) = app.enrolled("ivy").await;
    // An outbox catching up after three days offline goes through at once.
    let burst = wfh_server::throttle::HEARTBEAT_BURST as usize;
    let sends = (0..burst).map(|i| {
        let mut hb = app.heartbeat("flo", HeartbeatStatus::Online);
        hb.timestamp = app.now() - chrono::Duration::minutes(5 * i as i64);
        let (client, token) = (&app.client, &token);
        async move { client.heartbeat(token, &hb).await }
    });
    for answer in futures_util::future::join_all(sends).await {
        answer.unwrap();
    }
    // One more now is too fast: 429, and when to go on.
    let refused = app
        .client
        .heartbeat(&token, &app.heartbeat("flo", HeartbeatStatus::Online))
        .await
        .unwrap_err();
    assert_eq!(refused.status().unwrap(), 429);
    assert_eq!(refused.code(), Some("rate_limited"));
    assert_eq!(refused.retry_after(), Some(std::time::Duration::from_secs(3)));
    // Another device is not affected; the first goes on after the wait.
    app.client
        .heartbeat(&other, &app.heartbeat("ivy", HeartbeatStatus::Online))
        .await
        .unwrap();
    app.clock.advance(chrono::Duration::seconds(3));
    app.client
        .heartbeat(&token, &app.heartbeat("flo", HeartbeatStatus::Online))
        .await
        .unwrap();
}

async fn a_record_that_retention_would_delete_at_once_is_refused_as_expired(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("jo").await;
    let mut edge = app.heartbeat("jo", HeartbeatStatus::Online);
    edge.timestamp = app.now() - chrono::Duration::days(30) + chrono::Duration::seconds(15);
    let refused = app.client.heartbeat(&token, &edge).await.unwrap_err();
    assert_eq!(
        (refused.status().unwrap().as_u16(), refused.code()),
        (422, Some("expired"))
    );
    let mut kept = app.heartbeat("jo", HeartbeatStatus::Online);
    kept.timestamp = app.now() - chrono::Duration::days(28);
    app.client.heartbeat(&token, &kept).await.unwrap();
    wfh_server::retention::run(&app.state, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(app.count("heartbeats").await, 1);
}

async fn names_that_read_backwards_are_refused_and_answers_are_not_cached(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("kai").await;
    for bad in ["kai\u{202e}gpj.exe", "\u{2066}kai", "kai\u{202a}"] {
        let mut hb = app.heartbeat("kai", HeartbeatStatus::Online);
        hb.hostname = bad.into();
        let refused = app.client.heartbeat(&token, &hb).await.unwrap_err();
        assert_eq!(refused.status().unwrap(), 422, "{bad:?}");
    }
    // Names in any script are fine.
    let mut hb = app.heartbeat("কাই", HeartbeatStatus::Online);
    hb.hostname = "রাহিম-ল্যাপটপ".into();
    app.client.heartbeat(&token, &hb).await.unwrap();
    let res = app
        .http
        .get(app.url("/api/admin/employees"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(
        res.headers().get("strict-transport-security").is_none(),
        "plain HTTP"
    );
}

async fn the_embedded_database_and_screenshots_are_private_whatever_the_umask(backend: Backend) {
    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt as _;
    let app = TestApp::spawn(backend).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(app.state.screenshots.root()), 0o700);
    if backend == Backend::Sqlite {
        let db = app.state.config.data_dir.join("wfh.db");
        assert_eq!(mode(&db), 0o600);
        for journal in ["wfh.db-wal", "wfh.db-shm"] {
            let p = app.state.config.data_dir.join(journal);
            if p.exists() {
                assert_eq!(mode(&p), 0o600, "{journal}");
            }
        }
    }
}

/// Generated hostile payloads for every parser a device can reach: valid
/// requests with bytes flipped, cut short, fields swapped for other types,
/// multipart bodies with odd parts. Nothing answers 5xx, the server keeps
/// serving, and exactly the requests answered 201 are stored. Seeded, so a
/// failure repeats.
async fn generated_hostile_payloads_get_clear_refusals_and_store_nothing(backend: Backend) {
    use rand::{Rng as _, SeedableRng as _};
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("eve").await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let heartbeat = serde_json::to_value(app.heartbeat("eve", HeartbeatStatus::Online)).unwrap();
    let event = serde_json::json!({
        "username": "eve", "hostname": "eve-laptop", "timestamp": app.now(),
        "event_id": uuid::Uuid::new_v4(),
        "event": {"kind": "log_missed", "day": app.now().date_naive(), "slot": 1, "reason": "paused"}
    });
    let junk = [
        serde_json::json!(null),
        serde_json::json!(-1),
        serde_json::json!(1e308),
        serde_json::json!("\u{0}\u{202e}"),
        serde_json::json!([]),
        serde_json::json!({"a": {"b": [1, {"c": null}]}}),
        serde_json::json!("x".repeat(5000)),
    ];
    let (mut created, mut answered) = (0, 0);
    for i in 0..240 {
        let (path, base) = if i % 2 == 0 {
            ("/api/heartbeat", &heartbeat)
        } else {
            ("/api/event", &event)
        };
        let mut value = base.clone();
        value["event_id"] = serde_json::json!(uuid::Uuid::new_v4());
        let fields: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        let field = &fields[rng.random_range(0..fields.len())];
        match rng.random_range(0..4) {
            0 => value[field.as_str()] = junk[rng.random_range(0..junk.len())].clone(),
            1 => {
                value.as_object_mut().unwrap().remove(field);
            }
            2 => value[format!("extra{i}")] = serde_json::json!(1),
            _ => {}
        }
        let mut body = serde_json::to_vec(&value).unwrap();
        if rng.random_range(0..3) == 0 {
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..body.len());
                body[at] = rng.random();
            }
        }
        if rng.random_range(0..6) == 0 {
            body.truncate(rng.random_range(0..body.len()));
        }
        let res = app
            .http
            .post(app.url(path))
            .bearer_auth(token.expose())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        assert!(status < 500, "{path}: {status}: {:?}", res.text().await);
        answered += 1;
        if status == 201 && path == "/api/heartbeat" {
            created += 1;
        }
    }
    // Multipart: odd part names, types, sizes and bodies.
    for i in 0..60 {
        let bytes =
            |n: usize, rng: &mut rand::rngs::StdRng| (0..n).map(|_| rng.random()).collect::<Vec<u8>>();
        let meta = if i % 3 == 0 {
            bytes(rng.random_range(0..300), &mut rng)
        } else {
            serde_json::to_vec(&app.log_meta("eve")).unwrap()
        };
        let mut image = png(16, 16);
        if i % 2 == 1 {
            let at = rng.random_range(8..image.len());
            image[at] ^= 0xff;
        }
        let names = ["meta", "screenshot", "", "meta\"x", "screenshot"];
        let form = reqwest::multipart::Form::new()
            .part(
                names[rng.random_range(0..2)],
                reqwest::multipart::Part::bytes(meta),
            )
            .part(
                names[rng.random_range(0..names.len())],
                reqwest::multipart::Part::bytes(image).file_name("../x.png"),
            );
        let res = app
            .http
            .post(app.url("/api/log"))
            .bearer_auth(token.expose())
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert!(res.status().as_u16() < 500, "log {i}: {}", res.status());
    }
    assert_eq!(answered, 240);
    assert_eq!(app.count("heartbeats").await, created);
    // Every stored log has its file, and no file is without its log.
    let logs = app.count("logs").await;
    assert_eq!(app.screenshot_files().len(), logs, "{:?}", app.screenshot_files());
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

async fn another_devices_reuse_of_a_heartbeat_id_is_a_conflict(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (first, _) = app.enrolled("lea").await;
    let (second, _) = app.enrolled("max").await;
    let hb = app.heartbeat("lea", HeartbeatStatus::Online);
    let accepted = app.client.heartbeat(&first, &hb).await.unwrap();
    // The same device again: the first answer.
    assert_eq!(app.client.heartbeat(&first, &hb).await.unwrap(), accepted);
    // Another device with that id: 409, and nothing more stored.
    let mut reused = hb.clone();
    reused.username = "max".into();
    let refused = app.client.heartbeat(&second, &reused).await.unwrap_err();
    assert_eq!(
        (refused.status().unwrap().as_u16(), refused.code()),
        (409, Some("conflict"))
    );
    assert_eq!(app.count("heartbeats").await, 1);
}

async fn one_heartbeat_id_is_one_row_whatever_its_timestamp(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (first, _) = app.enrolled("lea").await;
    let (second, _) = app.enrolled("max").await;
    let hb = app.heartbeat("lea", HeartbeatStatus::Online);
    let accepted = app.client.heartbeat(&first, &hb).await.unwrap();
    // The same id later the same day, and days earlier (another partition
    // on PostgreSQL): the first delivery's answer, and no second row.
    use chrono::Duration;
    for back in [Duration::minutes(7), Duration::hours(30), Duration::days(3)] {
        let mut moved = hb.clone();
        moved.timestamp = hb.timestamp - back;
        assert_eq!(
            app.client.heartbeat(&first, &moved).await.unwrap(),
            accepted,
            "{back}"
        );
    }
    // Another device with the id and a time of its own: still a conflict.
    let mut reused = hb.clone();
    reused.username = "max".into();
    reused.timestamp = hb.timestamp - Duration::days(2);
    let refused = app.client.heartbeat(&second, &reused).await.unwrap_err();
    assert_eq!(refused.status().unwrap().as_u16(), 409);
    assert_eq!(app.count("heartbeats").await, 1);
    // A batch of fresh ids, one of them twice with two times: one row each.
    let mut twice = app.heartbeat("lea", HeartbeatStatus::Idle);
    app.client.heartbeat(&first, &twice).await.unwrap();
    twice.timestamp -= Duration::hours(1);
    app.client.heartbeat(&first, &twice).await.unwrap();
    assert_eq!(app.count("heartbeats").await, 2);
}

on_both_backends!(
    one_heartbeat_id_is_one_row_whatever_its_timestamp,
    another_devices_reuse_of_a_heartbeat_id_is_a_conflict,
    generated_hostile_payloads_get_clear_refusals_and_store_nothing,
    names_that_read_backwards_are_refused_and_answers_are_not_cached,
    the_embedded_database_and_screenshots_are_private_whatever_the_umask,
    guessing_codes_or_admin_tokens_is_cut_off_per_address,
    a_new_enrolment_code_cancels_the_one_before,
    a_device_that_floods_heartbeats_is_slowed_to_far_above_the_policy,
    a_record_that_retention_would_delete_at_once_is_refused_as_expired,
    metrics_stay_the_same_size_whatever_paths_and_methods_clients_send,
    a_client_that_sends_half_a_request_is_cut_off,
    odd_dates_and_methods_get_clear_answers_not_dropped_connections,
    images_that_would_exhaust_or_break_the_server_are_refused_at_upload,
    a_stored_screenshot_that_cannot_be_decoded_never_answers_a_server_error,
    an_admin_token_can_be_listed_and_revoked_and_then_nothing_made_from_it_works,
    an_expired_admin_token_and_its_sessions_are_refused,
    an_admin_token_revoked_from_the_command_line_is_refused_at_once,
);
