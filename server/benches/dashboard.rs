//! Dashboard benchmark: prints figures, asserts nothing about speed.
//!
//! Seeds PostgreSQL through the real API — 1,000 employees with a recent
//! heartbeat each, and for 100 of them two detailed logs (a 1280×720 JPEG)
//! on each of the last 30 days, 6,000 in all — then measures:
//!
//! * the admin queries behind the pages, from this process over loopback
//!   (employees list; logs over 30 days for everyone and for one person);
//! * full page loads in Debian's Chromium (`server/dashboard/e2e/bench.mjs`):
//!   navigation until the page has rendered its data, and the server time
//!   the browser saw for the API call behind it.
//!
//! Run with `scripts/bench-dashboard` (see docs/benchmarks.md). Environment:
//! WFH_BENCH_POSTGRES_URL (a role that may create databases), WFH_BENCH_RUNS (9).

use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use secrecy::SecretString;
use sqlx::Connection as _;
use wfh_server::config::Config;
use wfh_server::Application;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(1280, 720, |x, y| {
        image::Rgb([(x / 5) as u8, (y / 3) as u8, ((x ^ y) & 0xff) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 70)
        .encode_image(&img)
        .unwrap();
    out.into_inner()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let admin_url =
        std::env::var("WFH_BENCH_POSTGRES_URL").expect("WFH_BENCH_POSTGRES_URL: run scripts/bench-dashboard");
    let runs: usize = std::env::var("WFH_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(9);
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    for q in [
        "DROP DATABASE IF EXISTS wfh_bench_dashboard WITH (FORCE)",
        "CREATE DATABASE wfh_bench_dashboard",
    ] {
        sqlx::query(q).execute(&mut admin).await.unwrap();
    }
    let mut db_url = url::Url::parse(&admin_url).unwrap();
    db_url.set_path("wfh_bench_dashboard");
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        database_url: Some(SecretString::from(db_url.to_string())),
        ..Config::default()
    };
    let app = Application::build(config).await.expect("server starts");
    let addr = app.local_addr();
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let base = format!("http://{addr}");
    let admin_token = wfh_server::auth::create_admin_token(state.store.as_ref(), "bench", None, Utc::now())
        .await
        .unwrap()
        .token;
    let http = reqwest::Client::new();

    // Seed through the API, 16 requests at a time.
    let t = Instant::now();
    let now = Utc::now();
    let shot = bytes::Bytes::from(jpeg());
    let statuses = ["online", "online", "online", "idle", "paused"];
    let employees: Vec<(i64, String)> = futures_util::future::join_all((0..1000).map(|i| {
        let (http, base, admin_token) = (http.clone(), base.clone(), admin_token.clone());
        async move {
            let name = format!("person{i:04}");
            let created: serde_json::Value = http
                .post(format!("{base}/api/admin/employees"))
                .bearer_auth(&admin_token)
                .json(&serde_json::json!({"username": name, "display_name": format!("Person {i:04}")}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let code = created["enrollment"]["code"].as_str().unwrap().to_owned();
            let enrolled: serde_json::Value = http
                .post(format!("{base}/api/enroll"))
                .json(&serde_json::json!({"code": code, "username": name, "hostname": format!("{name}-laptop")}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (
                created["employee"]["id"].as_i64().unwrap(),
                enrolled["token"].as_str().unwrap().to_owned(),
            )
        }
    }))
    .await;
    let mut sends = Vec::new();
    for (i, (_, token)) in employees.iter().enumerate() {
        let ago = if i % 7 == 6 { 3600 } else { 60 };
        sends.push(
            http.post(format!("{base}/api/heartbeat"))
                .bearer_auth(token)
                .json(&serde_json::json!({
                    "username": format!("person{i:04}"), "hostname": format!("person{i:04}-laptop"),
                    "status": statuses[i % statuses.len()],
                    "timestamp": (now - chrono::Duration::seconds(ago)).to_rfc3339(),
                    "event_id": uuid::Uuid::new_v4(),
                }))
                .send(),
        );
    }
    for r in futures_util::future::join_all(sends).await {
        assert_eq!(r.unwrap().status(), 201);
    }
    let mut uploads = Vec::new();
    for (i, (_, token)) in employees.iter().take(100).enumerate() {
        for day in 0..30 {
            for slot in 0..2 {
                let ts =
                    now - chrono::Duration::days(day) - chrono::Duration::minutes(60 + slot * 300 + i as i64);
                if ts < now - chrono::Duration::days(30) + chrono::Duration::hours(1) {
                    continue;
                }
                uploads.push((token.clone(), i, ts));
            }
        }
    }
    let log_count = uploads.len();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    let tasks: Vec<_> = uploads
        .into_iter()
        .map(|(token, i, ts)| {
            let (http, base, shot, sem) = (http.clone(), base.clone(), shot.clone(), sem.clone());
            tokio::spawn(async move {
                let _permit = sem.acquire().await.unwrap();
                let meta = serde_json::json!({
                    "username": format!("person{i:04}"), "hostname": format!("person{i:04}-laptop"),
                    "local_ips": ["192.168.1.20"], "public_ip": null,
                    "timestamp": ts.to_rfc3339(), "event_id": uuid::Uuid::new_v4(),
                });
                let form = reqwest::multipart::Form::new()
                    .part(
                        "meta",
                        reqwest::multipart::Part::bytes(serde_json::to_vec(&meta).unwrap())
                            .mime_str("application/json")
                            .unwrap(),
                    )
                    .part(
                        "screenshot",
                        reqwest::multipart::Part::stream(reqwest::Body::from(shot))
                            .file_name("s.jpg")
                            .mime_str("image/jpeg")
                            .unwrap(),
                    );
                let res = http
                    .post(format!("{base}/api/log"))
                    .bearer_auth(&token)
                    .multipart(form)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 201);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "seeded 1,000 employees and {log_count} detailed logs (100 employees x 30 days x 2) in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The API calls behind the pages, from here.
    let today = now.date_naive();
    let from = today - chrono::Duration::days(29);
    let one = employees[0].0;
    let calls = [
        ("employees list (1,000)", "/api/admin/employees".to_owned()),
        (
            "logs, everyone, 30 days, first page of 50",
            format!("/api/admin/logs?from={from}&to={today}&limit=50"),
        ),
        (
            "logs, one employee, 30 days, first page of 50",
            format!("/api/admin/logs?employee_id={one}&from={from}&to={today}&limit=50"),
        ),
    ];
    println!("API over loopback, median of {runs}:");
    for (label, path) in &calls {
        let mut times = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let res = http
                .get(format!("{base}{path}"))
                .bearer_auth(&admin_token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let _ = res.bytes().await.unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!("  {label:<48} {:>7.1} ms", median(times));
    }

    // Full page loads in Chromium.
    let e2e = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard/e2e");
    let base_for_node = base.clone();
    let token_for_node = admin_token.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("bench.mjs")
            .current_dir(e2e)
            .env("WFH_URL", base_for_node)
            .env("WFH_ADMIN_TOKEN", token_for_node)
            .env("WFH_BENCH_RUNS", runs.to_string())
            .env("WFH_FROM", from.to_string())
            .env("WFH_TO", today.to_string())
            .env("WFH_EMPLOYEE", one.to_string())
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser benchmark failed");

    let _ = stop.send(());
    let _ = server.await;
    sqlx::query("DROP DATABASE IF EXISTS wfh_bench_dashboard WITH (FORCE)")
        .execute(&mut admin)
        .await
        .unwrap();
}
