use sha2::Digest as _;
use wfh_protocol::{HeartbeatStatus, LogRecord};

use crate::helpers::{geoip_test_db, png, Backend, TestApp};
use crate::on_both_backends;

async fn enroll_heartbeat_log_then_admin_sees_it_all(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, enrolled) = app.enrolled("ana").await;
    assert!(enrolled.token.starts_with("wfh_d_"));
    assert_eq!(enrolled.employee.username, "ana");

    let hb = app.heartbeat("ana", HeartbeatStatus::Online);
    let accepted = app.client.heartbeat(&token, &hb).await.unwrap();
    assert_eq!(accepted.event_id, hb.event_id);

    let image = png(640, 400);
    let meta = app.log_meta("ana");
    let record = app
        .client
        .log(&token, &meta, image.clone(), "image/png")
        .await
        .unwrap();
    assert_eq!(record.event_id, meta.event_id);
    assert_eq!(record.employee_id, enrolled.employee.id);
    assert_eq!((record.image.width, record.image.height), (640, 400));
    assert_eq!(record.image.bytes, image.len() as u64);
    assert_eq!(record.image.sha256, format!("{:x}", sha2::Sha256::digest(&image)));
    assert_eq!(record.reported_public_ip, meta.public_ip);
    assert_eq!(record.observed_ip.to_string(), "127.0.0.1");
    assert_eq!(record.local_ips, meta.local_ips);
    assert_eq!(record.timestamp, meta.timestamp);

    let whoami = app.client.whoami(&token).await.unwrap();
    assert_eq!(whoami.ip.to_string(), "127.0.0.1");
    assert_eq!(whoami.employee.id, enrolled.employee.id);

    let (status, list) = app.admin_get("/api/admin/employees").await;
    assert_eq!(status, 200);
    let ana = &list["employees"][0];
    assert_eq!(ana["username"], "ana");
    assert_eq!(ana["status"], "online");
    assert_eq!(ana["last_hostname"], "ana-laptop");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(ana["last_seen"].as_str().unwrap()).unwrap(),
        hb.timestamp
    );

    let (_, hbs) = app
        .admin_get(&format!(
            "/api/admin/heartbeats?employee_id={}",
            enrolled.employee.id
        ))
        .await;
    assert_eq!(hbs["items"].as_array().unwrap().len(), 1);
    assert_eq!(hbs["items"][0]["status"], "online");
    assert_eq!(hbs["items"][0]["event_id"], hb.event_id.to_string());

    let (_, logs) = app.admin_get("/api/admin/logs").await;
    let listed: Vec<LogRecord> = serde_json::from_value(logs["items"].clone()).unwrap();
    assert_eq!(listed, vec![record.clone()]);

    let shot = app
        .http
        .get(app.url(&record.image.url))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(shot.status(), 200);
    assert_eq!(shot.headers()["content-type"], "image/png");
    assert_eq!(shot.bytes().await.unwrap().to_vec(), image);
    assert_eq!(app.screenshot_files().len(), 1);
}

async fn retried_heartbeat_is_stored_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("ben").await;
    let hb = app.heartbeat("ben", HeartbeatStatus::Idle);
    let first = app.client.heartbeat(&token, &hb).await.unwrap();
    // Sequential retries, then a burst of concurrent ones (same batch).
    for _ in 0..3 {
        assert_eq!(app.client.heartbeat(&token, &hb).await.unwrap(), first);
    }
    let burst = futures_util::future::join_all((0..20).map(|_| app.client.heartbeat(&token, &hb))).await;
    for answer in burst {
        assert_eq!(answer.unwrap(), first);
    }
    assert_eq!(app.count("heartbeats").await, 1);
}

async fn concurrent_first_deliveries_are_each_stored_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("cem").await;
    let beats: Vec<_> = (0..200)
        .map(|_| app.heartbeat("cem", HeartbeatStatus::Online))
        .collect();
    // Every heartbeat twice, all at once: 400 requests, 200 rows.
    let sends = beats
        .iter()
        .chain(beats.iter())
        .map(|hb| app.client.heartbeat(&token, hb));
    let answers = futures_util::future::join_all(sends).await;
    assert!(answers.iter().all(Result::is_ok));
    assert_eq!(app.count("heartbeats").await, 200);
}

async fn retried_log_is_stored_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("dan").await;
    let meta = app.log_meta("dan");
    let first = app
        .client
        .log(&token, &meta, png(64, 64), "image/png")
        .await
        .unwrap();
    let again = app
        .client
        .log(&token, &meta, png(64, 64), "image/png")
        .await
        .unwrap();
    assert_eq!(again, first);
    let racing = futures_util::future::join_all(
        (0..5).map(|_| app.client.log(&token, &meta, png(64, 64), "image/png")),
    )
    .await;
    assert!(racing.into_iter().all(|r| r.unwrap() == first));
    // Another device may not reuse the event id; its file is not kept.
    let (other, _) = app.enrolled("dee").await;
    let err = app
        .client
        .log(&other, &meta, png(64, 64), "image/png")
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(409), "{err}");
    assert_eq!(app.count("logs").await, 1);
    assert_eq!(app.screenshot_files().len(), 1);
}

async fn concurrent_log_uploads_each_get_their_own_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("eli").await;
    // 16 different logs (each picture a different size), every one sent
    // twice, all at once (rows queued together share a commit).
    let logs: Vec<_> = (0..16u32).map(|i| (app.log_meta("eli"), 20 + i)).collect();
    let sends = logs
        .iter()
        .chain(logs.iter())
        .map(|(meta, side)| app.client.log(&token, meta, png(*side, *side), "image/png"));
    let answers = futures_util::future::join_all(sends).await;
    let answers: Vec<_> = answers.into_iter().map(Result::unwrap).collect();
    let (first, second) = answers.split_at(16);
    for (((meta, side), a), b) in logs.iter().zip(first).zip(second) {
        assert_eq!(a, b, "both deliveries answer with the one stored record");
        assert_eq!(a.event_id, meta.event_id);
        assert_eq!((a.image.width, a.image.height), (*side, *side));
    }
    assert_eq!(app.count("logs").await, 16);
    assert_eq!(app.screenshot_files().len(), 16);
}

async fn location_comes_from_the_forwarded_ip_of_a_trusted_proxy(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.geoip_db = Some(geoip_test_db());
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let (token, _) = app.enrolled("eva").await;
    let meta = app.log_meta("eva");
    let form = reqwest::multipart::Form::new()
        .part(
            "meta",
            reqwest::multipart::Part::bytes(serde_json::to_vec(&meta).unwrap()),
        )
        .part("screenshot", reqwest::multipart::Part::bytes(png(32, 32)));
    let res = app
        .http
        .post(app.url("/api/log"))
        .bearer_auth(token.expose())
        .header("x-forwarded-for", "10.0.0.7, 81.2.69.142")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let record: LogRecord = res.json().await.unwrap();
    assert_eq!(record.observed_ip.to_string(), "81.2.69.142");
    let loc = record.location.expect("a location for a known address");
    assert_eq!(loc.city.as_deref(), Some("London"));
    assert_eq!(loc.country_code.as_deref(), Some("GB"));

    // A private address the database does not know: null location, not an error.
    let meta = app.log_meta("eva");
    let form = reqwest::multipart::Form::new()
        .part(
            "meta",
            reqwest::multipart::Part::bytes(serde_json::to_vec(&meta).unwrap()),
        )
        .part("screenshot", reqwest::multipart::Part::bytes(png(32, 32)));
    let res = app
        .http
        .post(app.url("/api/log"))
        .bearer_auth(token.expose())
        .header("x-forwarded-for", "10.9.9.9")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.json::<LogRecord>().await.unwrap().location, None);
}

async fn forwarded_for_from_an_untrusted_peer_is_ignored(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.geoip_db = Some(geoip_test_db())).await;
    let (token, _) = app.enrolled("fay").await;
    let res = app
        .http
        .get(app.url("/api/whoami"))
        .bearer_auth(token.expose())
        .header("x-forwarded-for", "81.2.69.142")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["ip"], "127.0.0.1");
}

async fn stopping_the_server_loses_no_acknowledged_heartbeat(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("zoe").await;
    let sends: Vec<_> = (0..300)
        .map(|_| {
            let (client, token, hb) = (
                app.client.clone(),
                token.clone(),
                app.heartbeat("zoe", HeartbeatStatus::Online),
            );
            tokio::spawn(async move { client.heartbeat(&token, &hb).await.map(|a| a.event_id) })
        })
        .collect();
    tokio::task::yield_now().await;
    app.stop().await;
    let acknowledged: Vec<_> = futures_util::future::join_all(sends)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap().ok())
        .collect();
    let query = wfh_server::db::ListQuery {
        limit: 1000,
        ..Default::default()
    };
    let stored: Vec<_> = app
        .state
        .store
        .heartbeats(&query)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.event_id)
        .collect();
    for id in &acknowledged {
        assert!(stored.contains(id), "acknowledged heartbeat {id} was not stored");
    }
}

on_both_backends!(
    stopping_the_server_loses_no_acknowledged_heartbeat,
    enroll_heartbeat_log_then_admin_sees_it_all,
    retried_heartbeat_is_stored_once,
    concurrent_first_deliveries_are_each_stored_once,
    retried_log_is_stored_once,
    concurrent_log_uploads_each_get_their_own_answer,
    location_comes_from_the_forwarded_ip_of_a_trusted_proxy,
    forwarded_for_from_an_untrusted_peer_is_ignored,
);

/// The heartbeat writers keep their database connections from one batch to
/// the next, untested (no round trip). When PostgreSQL has closed them in
/// the meantime (a restart, an administrator ending sessions), no heartbeat
/// fails for it: the batch goes again on a new connection and each
/// heartbeat is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_heartbeats_are_stored_after_the_database_closed_the_kept_connections() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let (token, _) = app.enrolled("zoe").await;
    let mut other = app.database_connection().await;
    let send_20 = || {
        futures_util::future::join_all((0..20).map(|_| {
            let (client, token, hb) = (
                app.client.clone(),
                token.clone(),
                app.heartbeat("zoe", HeartbeatStatus::Online),
            );
            async move { client.heartbeat(&token, &hb).await }
        }))
    };
    for round in 0..3 {
        for answer in send_20().await {
            answer.unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        // End every other session on the server's database, the kept
        // connections among them, and wait until they are gone.
        let ended: Vec<i32> = sqlx::query_scalar(
            "WITH server AS MATERIALIZED (SELECT pid FROM pg_stat_activity \
             WHERE datname = current_database() AND usename = current_user AND pid <> pg_backend_pid()) \
             SELECT pid FROM server WHERE pg_terminate_backend(pid)",
        )
        .fetch_all(&mut other)
        .await
        .unwrap();
        assert!(!ended.is_empty(), "round {round}: the server holds no connection");
        for _ in 0..100 {
            let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                .bind(&ended)
                .fetch_one(&mut other)
                .await
                .unwrap();
            if left == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    for answer in send_20().await {
        answer.unwrap_or_else(|e| panic!("after the last round: {e}"));
    }
    assert_eq!(app.count("heartbeats").await, 80);
}
