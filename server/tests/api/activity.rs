//! Activity buckets (applications, websites, idle time, key counts): stored
//! once and only within the policy; summaries per employee and team.

use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde_json::json;
use uuid::Uuid;
use wfh_protocol::admin::{ActiveIdleSource, ActivityRecord, Summary};
use wfh_protocol::{ActivityRequest, AppTime, HeartbeatStatus, SiteTime};

use crate::helpers::{ago, Backend, TestApp};
use crate::on_both_backends;

/// Switch activity collection on: applications without titles, websites
/// without addresses, idle time; no key counts.
async fn some_activity_on(app: &TestApp) {
    let (status, body) = app
        .admin_put(
            "/api/admin/policy",
            json!({"activity": {"applications": true, "websites": true, "idle_time": true}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

fn bucket(start: DateTime<FixedOffset>) -> ActivityRequest {
    ActivityRequest {
        username: "ana".into(),
        hostname: "ana-laptop".into(),
        event_id: Uuid::new_v4(),
        start,
        duration_secs: 300,
        observed_secs: 300,
        active_secs: Some(240),
        idle_secs: Some(60),
        apps: vec![
            AppTime {
                app: "code".into(),
                title: Some("salaries.xlsx".into()),
                secs: 120,
            },
            AppTime {
                app: "code".into(),
                title: Some("main.rs".into()),
                secs: 60,
            },
            AppTime {
                app: "firefox".into(),
                title: Some("Bank".into()),
                secs: 120,
            },
        ],
        sites: vec![SiteTime {
            domain: "example.com".into(),
            url: Some("https://example.com/private?q=1".into()),
            secs: 120,
        }],
        key_presses: Some(77),
    }
}

async fn buckets_are_stored_once_and_only_within_the_policy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, enrolled) = app.enrolled("ana").await;
    // Nothing is switched on: a bucket is accepted and keeps nothing.
    let b = bucket(ago(&app, Duration::minutes(10)));
    app.client.activity(&token, &b).await.unwrap();
    let (_, page) = app.admin_get("/api/admin/activity").await;
    let stored: Vec<ActivityRecord> = serde_json::from_value(page["items"].clone()).unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].apps.is_empty() && stored[0].sites.is_empty(), "{page}");
    assert_eq!((stored[0].active_secs, stored[0].key_presses), (None, None));

    some_activity_on(&app).await;
    let b = bucket(ago(&app, Duration::minutes(5)));
    let first = app.client.activity(&token, &b).await.unwrap();
    app.clock.advance(Duration::seconds(3));
    let again = app.client.activity(&token, &b).await.unwrap();
    assert_eq!(first, again, "a retry answers as the first delivery did");

    let (status, page) = app
        .admin_get(&format!(
            "/api/admin/activity?employee_id={}",
            enrolled.employee.id
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    let stored: Vec<ActivityRecord> = serde_json::from_value(page["items"].clone()).unwrap();
    assert_eq!(stored.len(), 2, "{page}");
    let s = stored.iter().find(|s| s.event_id == b.event_id).unwrap();
    assert_eq!(s.start, b.start);
    assert_eq!((s.active_secs, s.idle_secs), (Some(240), Some(60)));
    assert_eq!(s.key_presses, None, "key counts are off");
    assert_eq!(
        s.apps,
        [
            AppTime {
                app: "code".into(),
                title: None,
                secs: 180
            },
            AppTime {
                app: "firefox".into(),
                title: None,
                secs: 120
            }
        ],
        "titles are off: merged by application"
    );
    assert_eq!(s.sites[0].url, None, "full addresses are off");
    let text = page.to_string();
    for secret in ["salaries", "Bank", "private"] {
        assert!(!text.contains(secret), "{secret} was stored: {text}");
    }

    // Another device may not reuse the event id.
    let (ben, _) = app.enrolled("ben").await;
    let err = app.client.activity(&ben, &b).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(409), "{err}");
}

async fn bad_buckets_are_refused_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    some_activity_on(&app).await;
    let (token, _) = app.enrolled("ana").await;
    let good = serde_json::to_value(bucket(ago(&app, Duration::minutes(5)))).unwrap();
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        f(&mut v);
        v
    };
    let cases = [
        (with(&|v| v["duration_secs"] = 0.into()), 422, "duration_secs"),
        (with(&|v| v["duration_secs"] = 7200.into()), 422, "duration_secs"),
        (
            with(&|v| v["idle_secs"] = 100.into()),
            422,
            "active_secs + idle_secs",
        ),
        (
            with(&|v| v["apps"][0]["secs"] = 1000.into()),
            422,
            "apps: the seconds",
        ),
        (with(&|v| v["apps"][0]["app"] = "".into()), 422, "apps: names"),
        (
            with(&|v| v["active_secs"] = serde_json::Value::Null),
            422,
            "come together",
        ),
        (
            with(&|v| v["start"] = ago(&app, Duration::days(45)).to_rfc3339().into()),
            422,
            "retention",
        ),
        (with(&|v| v["keys"] = json!(["a", "b"])), 400, ""),
        (with(&|v| v["apps"] = json!("code")), 400, ""),
        (json!("not a bucket"), 400, ""),
    ];
    for (body, status, says) in cases {
        let res = app
            .http
            .post(app.url("/api/activity"))
            .bearer_auth(token.expose())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "{body}");
        let err: serde_json::Value = res.json().await.unwrap();
        assert!(err["error"]["code"].is_string(), "{err}");
        assert!(err["error"]["message"].as_str().unwrap().contains(says), "{err}");
    }
    // Without a token, and as text.
    let res = app
        .http
        .post(app.url("/api/activity"))
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let res = app
        .http
        .post(app.url("/api/activity"))
        .bearer_auth(token.expose())
        .header("content-type", "text/plain")
        .body("apps")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());
    assert_eq!(app.count("activity").await, 0);
    // Still serving.
    let res = app
        .http
        .post(app.url("/api/activity"))
        .bearer_auth(token.expose())
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
}

async fn retention_removes_old_activity(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("ana").await;
    app.client
        .activity(&token, &bucket(ago(&app, Duration::days(29))))
        .await
        .unwrap();
    app.client
        .activity(&token, &bucket(ago(&app, Duration::hours(1))))
        .await
        .unwrap();
    app.clock.advance(Duration::days(2));
    let report = wfh_server::retention::run(&app.state, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(report.activity_deleted, 1);
    assert_eq!(app.count("activity").await, 1);
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// A company in Berlin; Ana works the whole 25-hour day of 25 October 2026
/// (clocks go back), Ben works from New York.
async fn summaries_cut_days_in_the_company_zone(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.company_timezone = "Europe/Berlin".into()).await;
    app.clock.set(t("2026-10-19T08:00:00Z"));
    let (ana, a) = app.enrolled("ana").await;
    let (ben, b) = app.enrolled("ben").await;
    app.clock.set(t("2026-10-27T12:00:00Z"));
    some_activity_on(&app).await;
    for (id, team) in [(a.employee.id, "Support"), (b.employee.id, "Support")] {
        let (status, body) = app
            .admin_put(&format!("/api/admin/employees/{id}/team"), json!({"team": team}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["team"], team);
    }
    // Ana: a heartbeat every 5 minutes from 24 Oct 22:00Z (25 Oct 00:00 CEST)
    // to 25 Oct 23:00Z (26 Oct 00:00 CET): 25 hours.
    let mut at = t("2026-10-24T22:00:00Z");
    while at < t("2026-10-25T23:00:00Z") {
        let mut hb = app.heartbeat("ana", HeartbeatStatus::Online);
        hb.timestamp = at.fixed_offset();
        app.client.heartbeat(&ana, &hb).await.unwrap();
        at += Duration::minutes(5);
    }
    let mut b1 = bucket(DateTime::parse_from_rfc3339("2026-10-25T10:00:00+01:00").unwrap());
    b1.username = "ana".into();
    app.client.activity(&ana, &b1).await.unwrap();
    // Ben: 20:00–22:00 on 25 Oct in New York (-04:00) = 01:00–03:00 on 26 Oct in Berlin.
    let mut at = DateTime::parse_from_rfc3339("2026-10-25T20:00:00-04:00").unwrap();
    for _ in 0..24 {
        let mut hb = app.heartbeat("ben", HeartbeatStatus::Idle);
        hb.timestamp = at;
        app.client.heartbeat(&ben, &hb).await.unwrap();
        at += Duration::minutes(5);
    }

    let (status, body) = app
        .admin_get(&format!(
            "/api/admin/summary?period=day&date=2026-10-25&employee_id={}",
            a.employee.id
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let s: Summary = serde_json::from_value(body).unwrap();
    assert_eq!(s.timezone, "Europe/Berlin");
    assert_eq!(s.employees.len(), 1);
    let day = &s.employees[0].days[0];
    assert_eq!(day.hours, 25);
    assert_eq!(day.figures.online_secs, 25 * 3600);
    assert_eq!(
        day.figures.first_seen.unwrap().to_rfc3339(),
        "2026-10-25T00:00:00+02:00"
    );
    assert_eq!(
        day.figures.last_seen.unwrap().to_rfc3339(),
        "2026-10-25T23:55:00+01:00"
    );
    assert_eq!(day.figures.active_idle_source, ActiveIdleSource::Activity);
    assert_eq!((day.figures.active_secs, day.figures.idle_secs), (240, 60));
    assert_eq!(day.figures.top_apps[0].name, "code");
    assert_eq!(day.figures.top_sites[0].name, "example.com");
    assert_eq!(day.figures.logs_expected, 0, "a Sunday");

    // The team's week (ISO week 43: 19–25 October) and the next one.
    let (status, body) = app
        .admin_get("/api/admin/summary?period=week&date=2026-10-25&team=Support")
        .await;
    assert_eq!(status, 200, "{body}");
    let s: Summary = serde_json::from_value(body).unwrap();
    assert_eq!(s.label, "2026-W43");
    assert_eq!(s.employees.len(), 2);
    let team = s.team_totals.as_ref().unwrap();
    assert_eq!(
        team.online_secs,
        25 * 3600,
        "Ben's evening falls in the next week in Berlin"
    );
    assert_eq!(team.logs_expected, 2 * 5 * 2, "two employees, Mon–Fri, two a day");
    let (_, body) = app
        .admin_get("/api/admin/summary?period=week&date=2026-10-26&team=Support")
        .await;
    let s: Summary = serde_json::from_value(body).unwrap();
    let ben_days = &s
        .employees
        .iter()
        .find(|e| e.employee.username == "ben")
        .unwrap()
        .days;
    assert_eq!(ben_days[0].figures.online_secs, 2 * 3600);
    assert_eq!(ben_days[0].figures.idle_secs, 2 * 3600);
    assert_eq!(
        ben_days[0].figures.active_idle_source,
        ActiveIdleSource::Heartbeats
    );

    // The month, as CSV.
    let res = app
        .http
        .get(app.url("/api/admin/summary?period=month&date=2026-10-01&team=Support&format=csv"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("wfh-summary-2026-10-Support.csv"));
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("employee,team,date,hours in day,first seen"),
        "{}",
        lines[0]
    );
    // 31 days and a total for each of two employees, and the team's total.
    assert_eq!(lines.len(), 1 + 2 * 32 + 1, "{csv}");
    assert!(csv.contains("2026-10-25,25,"), "{csv}");
    assert!(
        lines.last().unwrap().starts_with("(team),Support,total 2026-10,"),
        "{csv}"
    );

    // And as a PDF report: the team's people and totals, readable as text.
    let res = app
        .http
        .get(app.url("/api/admin/summary?period=month&date=2026-10-01&team=Support&format=pdf"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    let pdf = res.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("summary.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", file.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils; scripts/test installs it)");
    assert!(out.status.success(), "the PDF does not parse");
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "WFH Monitor - summary: Team Support",
        "Month 2026-10",
        "Europe/Berlin",
        "ana",
        "ben",
        "Team Support, together",
        "25 h 00",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from the PDF:\n{text}"
        );
    }
    // One person's month: a row per day, the 25-hour day marked.
    let res = app
        .http
        .get(app.url(&format!(
            "/api/admin/summary?period=month&date=2026-10-01&employee_id={}&format=pdf",
            a.employee.id
        )))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    std::fs::write(&file, res.bytes().await.unwrap()).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", file.to_str().unwrap(), "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Sun 2026-10-25 (25 h)"), "{text}");
    assert!(text.contains("Total"), "{text}");

    // Mistakes are named.
    for (q, status) in [
        ("period=year", 400),
        ("period=day&date=25.10.2026", 422),
        ("period=day&team=Nobody", 404),
        ("period=day&employee_id=999999", 404),
        ("period=day&team=Support&employee_id=1", 422),
        ("period=day&format=xml", 422),
    ] {
        let (got, body) = app.admin_get(&format!("/api/admin/summary?{q}")).await;
        assert_eq!(got, status, "{q}: {body}");
        assert!(body["error"]["code"].is_string(), "{q}: {body}");
    }
    // Devices may not read summaries.
    let res = app
        .http
        .get(app.url("/api/admin/summary?period=day"))
        .bearer_auth(ana.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
}

/// Application names come from devices: a spreadsheet must never run one.
async fn the_summary_csv_never_hands_a_spreadsheet_a_formula(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    some_activity_on(&app).await;
    let (token, _) = app.enrolled("ana").await;
    let mut b = bucket(ago(&app, Duration::hours(1)));
    b.apps[0].app = "=HYPERLINK(\"https://evil.example\",\"pay\")".into();
    b.apps[2].app = "@SUM(1+1)".into();
    app.client.activity(&token, &b).await.unwrap();
    let res = app
        .http
        .get(app.url("/api/admin/summary?period=day&format=csv"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.contains("HYPERLINK") && text.contains("@SUM"), "{text}");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            assert!(!cell.starts_with(['=', '+', '-', '@']), "{cell:?} in {text}");
        }
    }
}

on_both_backends!(
    the_summary_csv_never_hands_a_spreadsheet_a_formula,
    buckets_are_stored_once_and_only_within_the_policy,
    bad_buckets_are_refused_and_nothing_is_stored,
    retention_removes_old_activity,
    summaries_cut_days_in_the_company_zone,
);
