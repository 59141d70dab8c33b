//! A realistic team for the dashboard tests and pictures: twelve people in
//! five time zones, a week of heartbeats every 5 minutes through a working
//! day (with a paused lunch and an idle stretch), two detailed logs per
//! working day uploaded through the real API with a desktop-like JPEG and a
//! public address the test GeoIP database knows, and agent events.

use std::collections::BTreeMap;

use chrono::{
    DateTime, Datelike as _, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone as _, Timelike as _, Utc,
    Weekday,
};
use image::{Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;
use uuid::Uuid;
use wfh_agent::client::DeviceToken;
use wfh_protocol::{AgentEvent, AgentEventRequest, HeartbeatStatus, LogMeta, ShutdownReason};
use wfh_server::clock::Clock as _;
use wfh_server::db::NewHeartbeat;

use crate::helpers::TestApp;

/// (username, full name, UTC offset in hours, public IP, status "now" if working late).
const TEAM: [(&str, &str, i32, &str, Option<HeartbeatStatus>); 12] = [
    (
        "ana.lopez",
        "Ana López",
        1,
        "81.2.69.142",
        Some(HeartbeatStatus::Online),
    ),
    (
        "ben.okafor",
        "Ben Okafor",
        0,
        "81.2.69.142",
        Some(HeartbeatStatus::Online),
    ),
    (
        "chen.wei",
        "Chen Wei",
        8,
        "175.16.199.0",
        Some(HeartbeatStatus::Idle),
    ),
    (
        "dana.kim",
        "Dana Kim",
        -5,
        "216.160.83.56",
        Some(HeartbeatStatus::Paused),
    ),
    (
        "erik.lindqvist",
        "Erik Lindqvist",
        1,
        "89.160.20.112",
        Some(HeartbeatStatus::Online),
    ),
    ("fatima.zahra", "Fatima Zahra", 0, "81.2.69.142", None),
    ("george.miller", "George Miller", -5, "216.160.83.56", None),
    (
        "hana.sato",
        "Hana Sato",
        8,
        "175.16.199.0",
        Some(HeartbeatStatus::Online),
    ),
    ("ivan.petrov", "Ivan Petrov", 2, "89.160.20.112", None),
    (
        "julia.rossi",
        "Julia Rossi",
        1,
        "81.2.69.142",
        Some(HeartbeatStatus::Idle),
    ),
    ("kofi.mensah", "Kofi Mensah", 0, "81.2.69.142", None),
    ("lena.muller", "Lena Müller", 1, "89.160.20.112", None),
];

/// The colour of every seeded screenshot's window title bar, which the PDF
/// test looks for in the rendered thumbnails.
pub const TITLE_BAR: [u8; 3] = [216, 27, 96];

#[derive(Debug, Serialize)]
pub struct SeededEmployee {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub hostname: String,
    pub status: String,
    pub logs: usize,
}

#[derive(Debug, Serialize)]
pub struct DayFixture {
    pub employee_id: i64,
    pub date: String,
    pub heartbeats: usize,
    pub logs: usize,
    pub online: String,
    pub idle: String,
    pub paused: String,
}

#[derive(Debug, Serialize)]
pub struct Fixture {
    pub employees: Vec<SeededEmployee>,
    /// Detailed logs whose UTC day is within the last 7 days (the logs page's default).
    pub logs_last_7_days: usize,
    /// Per employee id: logs by UTC day.
    pub logs_by_day: BTreeMap<i64, BTreeMap<String, usize>>,
    pub day: DayFixture,
    /// A device token of `revoke_username`, for checking a revoke took effect.
    pub revoke_username: String,
    pub revoke_token: String,
    pub csv_header: Vec<String>,
    pub summary: SummaryFixture,
}

/// What the summary page must show for the first person's team this week.
#[derive(Debug, Serialize)]
pub struct SummaryFixture {
    pub team: String,
    pub team_size: usize,
    /// The first person's top application this week.
    pub top_app: String,
}

/// Teams by position in `TEAM`.
const TEAMS: [&str; 3] = ["Support", "Engineering", "Sales"];

/// Applications a team's day goes to, with their weights.
fn team_apps(team: usize) -> &'static [(&'static str, u32)] {
    match team {
        0 => &[("firefox", 5), ("thunderbird", 3), ("slack", 2)],
        1 => &[("code", 6), ("firefox", 2), ("gnome-terminal-server", 2)],
        _ => &[("firefox", 4), ("libreoffice", 3), ("zoom", 3)],
    }
}

/// A 1280×720 desktop: a wallpaper in the person's hue, a window with a
/// title bar in `TITLE_BAR`, rows of "text", a taskbar.
fn desktop(seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (w, h) = (1280u32, 720u32);
    let hue = rng.random_range(0..3usize);
    let mut img = RgbImage::from_fn(w, h, |x, y| {
        let t = ((x + y) * 255 / (w + h)) as u8;
        let mut c = [40, 60, 90];
        c[hue] = 90 + t / 2;
        Rgb(c)
    });
    let mut fill = |x0: u32, y0: u32, ww: u32, hh: u32, c: [u8; 3]| {
        for y in y0..(y0 + hh).min(h) {
            for x in x0..(x0 + ww).min(w) {
                img.put_pixel(x, y, Rgb(c));
            }
        }
    };
    let (wx, wy, ww, wh) = (120, 70, 900, 520);
    fill(wx, wy, ww, 34, TITLE_BAR);
    fill(wx, wy + 34, ww, wh - 34, [252, 252, 252]);
    for line in 0..22 {
        let len = rng.random_range(300..820);
        fill(wx + 24, wy + 56 + line * 20, len, 8, [70, 74, 84]);
    }
    fill(0, h - 36, w, 36, [30, 32, 38]);
    for i in 0..8 {
        fill(
            14 + i * 40,
            h - 30,
            24,
            24,
            [rng.random(), rng.random(), rng.random()],
        );
    }
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 70)
        .encode_image(&img)
        .unwrap();
    out.into_inner()
}

/// A working day's status at a local time: online, a paused lunch at noon,
/// an idle stretch after three; `None` outside 09:00–17:30.
fn status_at(t: NaiveTime) -> Option<HeartbeatStatus> {
    let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
    if t < hm(9, 0) || t >= hm(17, 30) {
        None
    } else if t >= hm(12, 0) && t < hm(12, 30) {
        Some(HeartbeatStatus::Paused)
    } else if t >= hm(15, 0) && t < hm(15, 45) {
        Some(HeartbeatStatus::Idle)
    } else {
        Some(HeartbeatStatus::Online)
    }
}

fn working(day: NaiveDate) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

pub async fn seed_team(app: &TestApp) -> Fixture {
    let now = app.clock.now();
    // Activity insight on: applications, idle time and key counts.
    let policy = wfh_protocol::MonitoringPolicy {
        activity: wfh_protocol::ActivityPolicy {
            applications: true,
            idle_time: true,
            key_counts: true,
            bucket_secs: 900,
            ..Default::default()
        },
        ..Default::default()
    };
    wfh_server::policy::replace(&app.state, policy).await.unwrap();
    let mut summary = None;
    let interval = Duration::seconds(app.state.config.heartbeat_interval_secs as i64);
    let mut employees = Vec::new();
    let mut logs_by_day: BTreeMap<i64, BTreeMap<String, usize>> = BTreeMap::new();
    let mut logs_last_7_days = 0;
    let mut revoke = None;
    let mut day_fixture = None;
    let oldest_day = (now - Duration::days(6)).date_naive();

    for (n, (username, name, offset_h, ip, late)) in TEAM.iter().enumerate() {
        let (status, body) = app
            .admin_post(
                "/api/admin/employees",
                Some(serde_json::json!({"username": username, "display_name": name})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let code = body["enrollment"]["code"].as_str().unwrap().to_owned();
        let hostname = format!(
            "{}-{}",
            username.split('.').next().unwrap(),
            ["laptop", "thinkpad", "mbp"][n % 3]
        );
        let enrolled = app.client.enroll(&code, username, &hostname).await.unwrap();
        let team = n % TEAMS.len();
        app.state
            .store
            .set_employee_team(enrolled.employee.id, Some(TEAMS[team]))
            .await
            .unwrap();
        let token = DeviceToken::new(enrolled.token.clone());
        let tz = FixedOffset::east_opt(offset_h * 3600).unwrap();
        let shot = desktop(n as u64);
        let mut rng = StdRng::seed_from_u64(1000 + n as u64);

        // Heartbeats: every 5 minutes through each working day of the last
        // week, up to now; those "working late" keep going until now.
        let mut beats = Vec::new();
        let start_local = (now - Duration::days(7)).with_timezone(&tz).date_naive();
        let today_local = now.with_timezone(&tz).date_naive();
        let mut day = start_local;
        let mut events = Vec::new();
        let mut logs = Vec::new();
        while day <= today_local {
            if working(day) {
                let midnight = tz
                    .from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
                    .unwrap();
                let mut t = midnight + Duration::hours(9);
                let end = midnight + Duration::minutes(17 * 60 + 30);
                while t < end && t.with_timezone(&Utc) <= now {
                    let s = status_at(t.time()).unwrap();
                    beats.push((t, s));
                    t += interval;
                }
                let boot = midnight + Duration::minutes(8 * 60 + 50);
                if boot.with_timezone(&Utc) <= now {
                    events.push((
                        midnight + Duration::minutes(8 * 60 + 55),
                        AgentEvent::Startup {
                            boot_time: boot.with_timezone(&Utc),
                            agent_version: "0.1.0".into(),
                            os: "Ubuntu 24.04".into(),
                        },
                    ));
                }
                if end.with_timezone(&Utc) <= now {
                    events.push((
                        end + Duration::minutes(2),
                        AgentEvent::Shutdown {
                            reason: ShutdownReason::Session,
                        },
                    ));
                }
                for slot in 0..2 {
                    let minute = rng.random_range(if slot == 0 {
                        9 * 60 + 10..11 * 60 + 50
                    } else {
                        13 * 60..17 * 60 + 20
                    });
                    let at =
                        midnight + Duration::minutes(minute) + Duration::seconds(rng.random_range(0..60));
                    if at.with_timezone(&Utc) <= now && at.with_timezone(&Utc) > now - Duration::days(7) {
                        logs.push(at);
                    }
                }
            }
            day += Duration::days(1);
        }
        if let Some(s) = late {
            // Working late: beats from the end of the day (or the last beat) to now.
            let two_hours_ago = now.with_timezone(&tz) - Duration::hours(2);
            let mut t = beats
                .last()
                .map(|(t, _)| *t + interval)
                .filter(|t| *t > two_hours_ago)
                .unwrap_or(two_hours_ago);
            while t.with_timezone(&Utc) <= now - Duration::seconds(60) {
                beats.push((t, HeartbeatStatus::Online));
                t += interval;
            }
            beats.push((now.with_timezone(&tz) - Duration::seconds(60), *s));
        }
        let batch: Vec<NewHeartbeat> = beats
            .iter()
            .map(|(t, s)| NewHeartbeat {
                event_id: Uuid::new_v4(),
                employee_id: enrolled.employee.id,
                device_id: enrolled.device_id,
                username: username.to_string(),
                hostname: hostname.clone(),
                status: *s,
                timestamp: *t,
                received_at: t.with_timezone(&Utc),
            })
            .collect();
        for chunk in batch.chunks(500) {
            app.state.store.insert_heartbeats(chunk).await.unwrap();
        }

        // Activity: one 15-minute bucket per quarter hour of heartbeats,
        // split between the team's applications.
        let apps = team_apps(team);
        let weight: u32 = apps.iter().map(|(_, w)| w).sum();
        let mut quarters: BTreeMap<DateTime<FixedOffset>, (u32, u32)> = BTreeMap::new();
        for (t, s) in &beats {
            let q =
                *t - Duration::minutes(i64::from(t.minute() % 15)) - Duration::seconds(i64::from(t.second()));
            let e = quarters.entry(q).or_default();
            match s {
                HeartbeatStatus::Online => e.0 += 300,
                HeartbeatStatus::Idle => e.1 += 300,
                HeartbeatStatus::Paused => {}
            }
        }
        for (start, (active, idle)) in quarters {
            let observed = (active + idle).min(900);
            if observed == 0 {
                continue;
            }
            app.state
                .store
                .insert_activity(&wfh_server::db::NewActivity {
                    event_id: Uuid::new_v4(),
                    employee_id: enrolled.employee.id,
                    device_id: enrolled.device_id,
                    username: username.to_string(),
                    hostname: hostname.clone(),
                    start,
                    duration_secs: 900,
                    observed_secs: observed,
                    active_secs: Some(active.min(observed)),
                    idle_secs: Some(observed - active.min(observed)),
                    key_presses: Some(active / 60 * rng.random_range(20..60)),
                    apps: apps
                        .iter()
                        .map(|(a, w)| wfh_protocol::AppTime {
                            app: (*a).into(),
                            title: None,
                            secs: observed * w / weight,
                        })
                        .collect(),
                    sites: Vec::new(),
                    received_at: start.with_timezone(&Utc),
                })
                .await
                .unwrap();
        }
        if n == 0 {
            summary = Some(SummaryFixture {
                team: TEAMS[team].to_owned(),
                team_size: TEAM.len().div_ceil(TEAMS.len()),
                top_app: apps[0].0.to_owned(),
            });
        }

        for (t, ev) in events {
            if t.with_timezone(&Utc) < now - Duration::days(29) {
                continue;
            }
            app.client
                .event(
                    &token,
                    &AgentEventRequest {
                        username: username.to_string(),
                        hostname: hostname.clone(),
                        timestamp: t,
                        event_id: Uuid::new_v4(),
                        event: ev,
                    },
                )
                .await
                .unwrap();
        }

        for at in &logs {
            let meta = LogMeta {
                username: username.to_string(),
                hostname: hostname.clone(),
                local_ips: vec![
                    format!("192.168.{}.{}", 1 + n % 3, 20 + n).parse().unwrap(),
                    "fe80::1c2:3ff:fe4a:5b6c".parse().unwrap(),
                ],
                public_ip: Some(ip.parse().unwrap()),
                timestamp: *at,
                event_id: Uuid::new_v4(),
            };
            upload(app, &enrolled.token, &meta, &shot, ip).await;
            let utc_day = at.with_timezone(&Utc).date_naive();
            *logs_by_day
                .entry(enrolled.employee.id)
                .or_default()
                .entry(utc_day.to_string())
                .or_default() += 1;
            if utc_day >= oldest_day {
                logs_last_7_days += 1;
            }
        }

        // The day view checks a full past working day of the first person,
        // one her working late (the last two hours) does not reach: just
        // after her midnight, that is yesterday.
        if n == 0 {
            let late_from = (now - Duration::hours(2)).with_timezone(&tz).date_naive();
            let day = (1..7)
                .map(|d| (now - Duration::days(d)).with_timezone(&tz).date_naive())
                .find(|d| working(*d) && *d < late_from)
                .unwrap();
            let on_day = |t: &DateTime<FixedOffset>| t.date_naive() == day;
            day_fixture = Some(DayFixture {
                employee_id: enrolled.employee.id,
                date: day.to_string(),
                heartbeats: beats.iter().filter(|(t, _)| on_day(t)).count(),
                logs: logs.iter().filter(|t| on_day(t)).count(),
                online: "7 h 15 min".into(),
                idle: "0 h 45 min".into(),
                paused: "0 h 30 min".into(),
            });
        }
        if n == 5 {
            revoke = Some((username.to_string(), enrolled.token.clone()));
        }
        let latest = beats.iter().max_by_key(|(t, _)| *t);
        let status = match latest {
            Some((t, s)) if now - t.with_timezone(&Utc) <= interval * 2 => s.as_str().to_owned(),
            _ => "offline".to_owned(),
        };
        employees.push(SeededEmployee {
            id: enrolled.employee.id,
            username: username.to_string(),
            display_name: name.to_string(),
            hostname,
            status,
            logs: logs.len(),
        });
    }
    let (revoke_username, revoke_token) = revoke.unwrap();
    Fixture {
        employees,
        logs_last_7_days,
        logs_by_day,
        day: day_fixture.unwrap(),
        revoke_username,
        revoke_token,
        csv_header: wfh_server::export::CSV_HEADER
            .iter()
            .map(|s| s.to_string())
            .collect(),
        summary: summary.unwrap(),
    }
}

/// Upload a detailed log as the agent does, as if through a proxy that
/// reports the employee's public address.
async fn upload(app: &TestApp, token: &str, meta: &LogMeta, jpeg: &[u8], ip: &str) {
    let form = reqwest::multipart::Form::new()
        .part(
            "meta",
            reqwest::multipart::Part::bytes(serde_json::to_vec(meta).unwrap())
                .mime_str("application/json")
                .unwrap(),
        )
        .part(
            "screenshot",
            reqwest::multipart::Part::bytes(jpeg.to_vec())
                .file_name("screenshot.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        );
    let res = app
        .http
        .post(app.url("/api/log"))
        .bearer_auth(token)
        .header("x-forwarded-for", ip)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}
