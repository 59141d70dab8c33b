//! The dashboard: sign-in sessions, CSRF, thumbnails and exports over HTTP
//! on both engines; then the whole app in Debian's Chromium, driven by
//! Playwright (`server/dashboard/e2e/`), against the real server on
//! PostgreSQL with a seeded team.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Duration;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::Value;

use crate::helpers::{geoip_test_db, Backend, TestApp};
use crate::on_both_backends;
use crate::seed::{seed_team, TITLE_BAR};
use wfh_server::clock::Clock as _;

on_both_backends!(
    sign_in_gives_a_strict_http_only_cookie_and_sign_out_ends_it,
    changes_made_with_a_cookie_need_the_csrf_token,
    pages_and_assets_are_served_with_a_strict_policy,
    exports_stream_the_filter_as_csv_and_pdf,
);

pub(crate) fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("wfh_session="))
        .map(str::to_owned)
}

/// Sign in; (cookie header value, CSRF token).
async fn sign_in(app: &TestApp) -> (String, String) {
    let res = app
        .http
        .post(app.url("/api/session"))
        .json(&serde_json::json!({"token": app.admin_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let set = session_cookie(&res).expect("a session cookie");
    let body: Value = res.json().await.unwrap();
    let pair = set.split(';').next().unwrap().to_owned();
    (pair, body["csrf_token"].as_str().unwrap().to_owned())
}

async fn sign_in_gives_a_strict_http_only_cookie_and_sign_out_ends_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Wrong and device tokens are refused, and no cookie is set.
    for token in ["wfh_a_not-a-real-token", "nonsense"] {
        let res = app
            .http
            .post(app.url("/api/session"))
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        assert!(session_cookie(&res).is_none());
    }
    let (device, _) = app.enrolled("ana").await;
    let res = app
        .http
        .post(app.url("/api/session"))
        .json(&serde_json::json!({ "token": device.expose() }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "a device token cannot sign in");

    let res = app
        .http
        .post(app.url("/api/session"))
        .json(&serde_json::json!({"token": app.admin_token}))
        .send()
        .await
        .unwrap();
    let set = session_cookie(&res).unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(part), "{set} lacks {part}");
    }
    assert!(!set.contains("Secure"), "plain HTTP on loopback: no Secure flag");
    let cookie = set.split(';').next().unwrap().to_owned();

    let list = |cookie: String| {
        let app = &app;
        async move {
            app.http
                .get(app.url("/api/admin/employees"))
                .header(COOKIE, cookie)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(list(cookie.clone()).await, 200);
    assert_eq!(list("wfh_session=forged".into()).await, 401);

    // Sign-out needs the CSRF token, then the cookie is dead.
    let (_, csrf) = {
        let res = app
            .http
            .get(app.url("/api/session"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let v: Value = res.json().await.unwrap();
        ((), v["csrf_token"].as_str().unwrap().to_owned())
    };
    let res = app
        .http
        .delete(app.url("/api/session"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "sign-out without the CSRF token");
    let res = app
        .http
        .delete(app.url("/api/session"))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(session_cookie(&res).unwrap().contains("Max-Age=0"));
    assert_eq!(list(cookie.clone()).await, 401);

    // Sessions expire: a new one, then 13 hours later.
    let (cookie, _) = sign_in(&app).await;
    app.clock.advance(Duration::hours(13));
    assert_eq!(list(cookie).await, 401);
    // Retention deletes the expired session (the signed-out one is gone already).
    let report = wfh_server::retention::run(&app.state, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(report.sessions_deleted, 1);
}

async fn changes_made_with_a_cookie_need_the_csrf_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (cookie, csrf) = sign_in(&app).await;
    let add = |csrf: Option<&str>, name: &str| {
        let mut req = app
            .http
            .post(app.url("/api/admin/employees"))
            .header(COOKIE, &cookie)
            .json(&serde_json::json!({ "username": name }));
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        req.send()
    };
    let res = add(None, "mallory").await.unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "csrf_failed");
    assert_eq!(add(Some("wrong"), "mallory").await.unwrap().status(), 403);
    let (_, list) = app.admin_get("/api/admin/employees").await;
    assert_eq!(
        list["employees"].as_array().unwrap().len(),
        0,
        "nothing was added"
    );
    assert_eq!(add(Some(&csrf), "alice").await.unwrap().status(), 201);
    // A bearer token needs no CSRF token: it is not sent by browsers on their own.
    assert!(app.add_employee("bob").await.0 > 0);
}

async fn pages_and_assets_are_served_with_a_strict_policy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/", "/login", "/logs", "/admin", "/employees/3/2026-11-20"] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let csp = res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        let html = res.text().await.unwrap();
        assert!(html.contains("/assets/app.js"), "{path}");
    }
    for (path, kind) in [
        ("/assets/app.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
        ("/assets/icon.svg", "image/svg+xml"),
    ] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with(kind));
    }
    let res = app
        .http
        .get(app.url("/assets/../Cargo.toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // The admin API without a session or token is still a JSON 401.
    let res = app
        .http
        .get(app.url("/api/admin/employees"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

/// Checks a PDF's cross-reference table: every offset points at its
/// object. Returns how many objects there are.
fn check_xref(pdf: &[u8]) -> usize {
    let find_last = |needle: &[u8]| pdf.windows(needle.len()).rposition(|w| w == needle).unwrap();
    assert!(pdf.starts_with(b"%PDF-1.7"));
    assert!(String::from_utf8_lossy(&pdf[pdf.len() - 8..])
        .trim_end()
        .ends_with("%%EOF"));
    let tail = String::from_utf8_lossy(&pdf[find_last(b"startxref")..]).into_owned();
    let start: usize = tail.split_whitespace().nth(1).unwrap().parse().unwrap();
    let table = String::from_utf8_lossy(&pdf[start..]).into_owned();
    assert!(table.starts_with("xref"));
    let mut lines = table.lines().skip(1);
    let count: usize = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    lines.next();
    for n in 1..count {
        let off: usize = lines.next().unwrap()[..10].parse().unwrap();
        assert!(
            pdf[off..].starts_with(format!("{n} 0 obj").as_bytes()),
            "object {n} is not at {off}"
        );
    }
    count - 1
}

async fn exports_stream_the_filter_as_csv_and_pdf(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.geoip_db = Some(geoip_test_db());
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let fixture = seed_team(&app).await;
    let ana = &fixture.employees[0];
    let get = |path: String| {
        let app = &app;
        async move {
            let res = app
                .http
                .get(app.url(&path))
                .bearer_auth(&app.admin_token)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let kind = res
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            (status, kind, res.bytes().await.unwrap().to_vec())
        }
    };
    let today = app.clock.now().date_naive();
    let from = today - Duration::days(6);
    let q = format!("employee_id={}&from={from}&to={today}", ana.id);

    let (status, kind, csv) = get(format!("/api/admin/logs/export/logs.csv?{q}")).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/csv"));
    let text = String::from_utf8(csv).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        wfh_server::export::CSV_HEADER.to_vec()
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let expected: usize = fixture.logs_by_day[&ana.id]
        .iter()
        .filter(|(d, _)| d.as_str() >= from.to_string().as_str())
        .map(|(_, n)| n)
        .sum();
    assert_eq!(rows.len(), expected);
    assert!(expected >= 6, "a week holds at least three working days");
    for r in &rows {
        assert_eq!(&r[4], "ana.lopez");
        assert_eq!(&r[5], "Ana López");
        assert_eq!(&r[11], "London", "located from the proxy's X-Forwarded-For");
    }

    // Everyone, the whole retention period (the default), in one PDF.
    let (status, kind, pdf) = get("/api/admin/logs/export/logs.pdf".into()).await;
    assert_eq!(status, 200);
    assert_eq!(kind, "application/pdf");
    let objects = check_xref(&pdf);
    let images = String::from_utf8_lossy(&pdf).matches("/DCTDecode").count();
    let total: usize = fixture.employees.iter().map(|e| e.logs).sum();
    assert_eq!(images, total, "a thumbnail per log");
    assert!(objects > total);

    // Over the retention period, an unknown employee, a bad file name.
    let (status, ..) = get(format!(
        "/api/admin/logs/export/logs.csv?from={}",
        today - Duration::days(60)
    ))
    .await;
    assert_eq!(status, 422);
    let (status, ..) = get("/api/admin/logs/export/logs.csv?employee_id=999999".into()).await;
    assert_eq!(status, 404);
    let (status, ..) = get("/api/admin/logs/export/logs.xlsx".into()).await;
    assert_eq!(status, 404);

    // A thumbnail is a small JPEG of the screenshot.
    let (_, body) = app
        .admin_get(&format!("/api/admin/logs?employee_id={}&limit=1", ana.id))
        .await;
    let id = body["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, kind, thumb) = get(format!("/api/admin/logs/{id}/thumbnail")).await;
    assert_eq!((status, kind.as_str()), (200, "image/jpeg"));
    let img = image::load_from_memory(&thumb).unwrap().to_rgb8();
    assert_eq!((img.width(), img.height()), (384, 216));
    assert!(thumb.len() < 40_000, "{} bytes", thumb.len());
    let bar = img.get_pixel(150, 26).0;
    let near = |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).all(|(x, y)| x.abs_diff(y) < 40);
    assert!(near(bar, TITLE_BAR), "the window's title bar survives: {bar:?}");
}

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard/e2e")
}

/// The dashboard in Chromium. Pictures of every page go to
/// `$WFH_DOCS_PICTURES` when set (`scripts/docs-pictures` sets it to
/// `docs/dashboard`), else to a temporary folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_chromium() {
    let dir = e2e_dir();
    assert!(
        dir.join("node_modules/@playwright/test").exists(),
        "Playwright is not installed: run scripts/test (it runs `npm ci` in {})",
        dir.display()
    );
    let app = TestApp::spawn_with(Backend::Postgres, |c| {
        c.geoip_db = Some(geoip_test_db());
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let fixture = seed_team(&app).await;
    let work = tempfile::tempdir().unwrap();
    let fixture_file = work.path().join("fixture.json");
    std::fs::write(&fixture_file, serde_json::to_vec_pretty(&fixture).unwrap()).unwrap();
    let pictures = std::env::var_os("WFH_DOCS_PICTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| work.path().join("pictures"));
    std::fs::create_dir_all(&pictures).unwrap();

    let base_url = app.base_url.clone();
    let token = app.admin_token.clone();
    let artifacts = work.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("npx")
            .args(["playwright", "test"])
            .current_dir(&dir)
            .env("WFH_URL", base_url)
            .env("WFH_ADMIN_TOKEN", token)
            .env("WFH_FIXTURE", fixture_file)
            .env("WFH_PICTURES", &pictures)
            .env("WFH_ARTIFACTS", artifacts)
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .output()
            .expect("npx runs")
    })
    .await
    .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(out.status.success(), "Playwright tests failed:\n{report}");
}
