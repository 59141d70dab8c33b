//! The tray app on a real desktop session: its StatusNotifierItem on the
//! session bus (registered with a real watcher), its dbusmenu, and the state
//! they show as the employee pauses and resumes from the menu — with the
//! heartbeats the real server then stores.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::tray::{app_windows, click, find, item_property, menu, tray_item};
use support::{enrolled_agent, eventually, free_addr, Desktop, Server};
use wfh_protocol::HeartbeatStatus;
use wfh_server::db::ListQuery;

async fn latest_status(server: &Server) -> Option<HeartbeatStatus> {
    let all = ListQuery {
        limit: 1,
        ..ListQuery::default()
    };
    server
        .state
        .store
        .heartbeats(&all)
        .await
        .ok()?
        .first()
        .map(|h| h.status)
}

/// A fixed-offset zone (`Etc/GMT…`, from the system's tzdata) where the
/// local time is now between 11:00 and 13:00.
fn midday_zone() -> String {
    use chrono::Timelike as _;
    let east = 12 - i32::try_from(chrono::Utc::now().hour()).unwrap();
    // The Etc zones' signs are POSIX's: Etc/GMT-3 is three hours east.
    match east {
        0 => "Etc/GMT".to_owned(),
        e => format!("Etc/GMT{:+}", -e),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tray_item_is_on_the_session_bus_and_follows_pause_and_resume() {
    let desktop = Desktop::start("#305080");
    let addr = free_addr();
    let server_dir = tempfile::tempdir().unwrap();
    let server = Server::start(server_dir.path(), addr).await;
    let url = format!("https://{addr}");
    let (_dir, mut agent) = enrolled_agent(&desktop, &url, &server, "heartbeat_interval_secs = 1\n").await;
    // A pause ends at local midnight at the latest, so late in the evening
    // "For 15 minutes" is rightly greyed out: run the tray where it is
    // midday, whatever the hour of the test.
    agent.set_env("TZ", &midday_zone());
    agent.spawn_tray();

    let item = eventually("the tray item to register", Duration::from_secs(60), || async {
        tray_item(&desktop)
    })
    .await;
    let status = item_property(&desktop, &item, "Status");
    assert_eq!(status, Some(Value::from("Active")), "{}", agent.logs());

    // Monitoring: the status line, a pause submenu, and the window entries.
    let monitoring = eventually("the menu to say Monitoring", Duration::from_secs(30), || async {
        let m = menu(&desktop, &item);
        m.iter().any(|(_, l, _)| l.starts_with("Monitoring")).then_some(m)
    })
    .await;
    for label in [
        "For 15 minutes",
        "For 1 hour",
        "Until tomorrow",
        "Open WFH Monitor",
        "What is collected",
        "Quit",
    ] {
        assert!(
            find(&monitoring, label).is_some(),
            "{label} missing from {monitoring:?}"
        );
    }
    assert!(find(&monitoring, "Resume").is_none());
    let title = item_property(&desktop, &item, "XAyatanaLabel");
    assert_eq!(title, Some(Value::from("Monitoring")));
    let icon_monitoring = item_property(&desktop, &item, "IconName");
    eventually("an online heartbeat", Duration::from_secs(20), || async {
        (latest_status(&server).await == Some(HeartbeatStatus::Online)).then_some(())
    })
    .await;

    // Pause for 15 minutes from the menu.
    let (id, enabled) = find(&monitoring, "For 15 minutes").unwrap();
    assert!(enabled);
    click(&desktop, &item, id);
    let paused = eventually("the menu to offer Resume", Duration::from_secs(20), || async {
        let m = menu(&desktop, &item);
        find(&m, "Resume monitoring").is_some().then_some(m)
    })
    .await;
    assert!(
        paused.iter().any(|(_, l, _)| l.starts_with("Paused until")),
        "{paused:?}"
    );
    assert!(find(&paused, "For 15 minutes").is_none(), "no pause while paused");
    assert_eq!(
        item_property(&desktop, &item, "XAyatanaLabel"),
        Some(Value::from("Paused"))
    );
    assert_ne!(
        item_property(&desktop, &item, "IconName"),
        icon_monitoring,
        "the icon changes"
    );
    eventually("a paused heartbeat", Duration::from_secs(20), || async {
        (latest_status(&server).await == Some(HeartbeatStatus::Paused)).then_some(())
    })
    .await;
    let (ok, out) = agent.exec(&["status", "--json"]);
    assert!(
        ok && out.contains("\"paused_until\": \""),
        "the CLI agrees: {out}"
    );

    // Resume.
    let (id, _) = find(&paused, "Resume monitoring").unwrap();
    click(&desktop, &item, id);
    eventually(
        "the menu to offer pausing again",
        Duration::from_secs(20),
        || async {
            let m = menu(&desktop, &item);
            find(&m, "For 15 minutes").is_some().then_some(())
        },
    )
    .await;
    assert_eq!(
        item_property(&desktop, &item, "XAyatanaLabel"),
        Some(Value::from("Monitoring"))
    );
    eventually("an online heartbeat again", Duration::from_secs(20), || async {
        (latest_status(&server).await == Some(HeartbeatStatus::Online)).then_some(())
    })
    .await;

    // One app per session: a second launch hands over to the first, which
    // opens its window, and exits at once.
    let windows = || app_windows(&desktop);
    assert_eq!(windows(), 0, "no window while the employee has not opened one");
    let started = std::time::Instant::now();
    let (ok, out) = agent.exec(&[]);
    assert!(ok, "the second launch: {out}");
    assert!(started.elapsed() < Duration::from_secs(20));
    eventually("the first app's window", Duration::from_secs(20), || async {
        (windows() > 0).then_some(())
    })
    .await;
    assert!(agent.try_exit().is_none(), "the first app keeps running");

    // Quit from the menu: the app stops cleanly and reports it.
    let m = menu(&desktop, &item);
    let (id, _) = find(&m, "Quit").unwrap();
    click(&desktop, &item, id);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let exited = loop {
        if let Some(status) = agent.try_exit() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the app did not quit:\n{}",
            agent.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(exited.success(), "{}", agent.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_forbids_pausing_and_quitting_shows_in_the_menu() {
    let desktop = Desktop::start("#305080");
    let addr = free_addr();
    let server_dir = tempfile::tempdir().unwrap();
    let server = Server::start(server_dir.path(), addr).await;
    let policy = wfh_protocol::MonitoringPolicy {
        pause: wfh_protocol::PausePolicy {
            allowed: false,
            max_minutes: None,
        },
        quit_allowed: false,
        ..Default::default()
    };
    wfh_server::policy::replace(&server.state, policy).await.unwrap();
    let url = format!("https://{addr}");
    let (_dir, mut agent) = enrolled_agent(&desktop, &url, &server, "heartbeat_interval_secs = 1\n").await;
    agent.spawn_tray();
    let item = eventually("the tray item", Duration::from_secs(60), || async {
        tray_item(&desktop)
    })
    .await;
    let m = eventually("the menu to say Monitoring", Duration::from_secs(30), || async {
        let m = menu(&desktop, &item);
        m.iter().any(|(_, l, _)| l.starts_with("Monitoring")).then_some(m)
    })
    .await;
    assert_eq!(
        find(&m, "Pausing is turned off").map(|(_, enabled)| enabled),
        Some(false),
        "shown, greyed out: {m:?}"
    );
    assert!(
        find(&m, "For 15 minutes").is_none() && find(&m, "Quit").is_none(),
        "{m:?}"
    );
    let (ok, out) = agent.exec(&["pause"]);
    assert!(!ok && out.contains("pausing is turned off"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_collects_more_stops_collection_until_the_employee_accepts_again() {
    let desktop = Desktop::start("#305080");
    let addr = free_addr();
    let server_dir = tempfile::tempdir().unwrap();
    let server = Server::start(server_dir.path(), addr).await;
    let url = format!("https://{addr}");
    let extra = "heartbeat_interval_secs = 1\npolicy_refresh_secs = 1\n";
    let (_dir, mut agent) = enrolled_agent(&desktop, &url, &server, extra).await;
    agent.spawn_tray();
    let item = eventually("the tray item", Duration::from_secs(60), || async {
        tray_item(&desktop)
    })
    .await;
    let count = || async {
        let all = ListQuery {
            limit: 10_000,
            ..ListQuery::default()
        };
        server.state.store.heartbeats(&all).await.unwrap().len()
    };
    eventually("heartbeats", Duration::from_secs(20), || async {
        (count().await >= 2).then_some(())
    })
    .await;

    // The company adds a third detailed log a day: the consent's text changes.
    let more = wfh_protocol::MonitoringPolicy {
        logs_per_day: 3,
        ..Default::default()
    };
    let doc = wfh_server::policy::replace(&server.state, more).await.unwrap();
    eventually("the tray to ask for consent", Duration::from_secs(20), || async {
        (item_property(&desktop, &item, "XAyatanaLabel") == Some(Value::from("Waiting for your consent")))
            .then_some(())
    })
    .await;
    let windows = || app_windows(&desktop);
    eventually("the window to open and ask", Duration::from_secs(20), || async {
        (windows() > 0).then_some(())
    })
    .await;
    // Collection has stopped: no heartbeat for several intervals.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopped_at = count().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        count().await,
        stopped_at,
        "nothing is collected while consent is pending"
    );
    let (_, status) = agent.exec(&["status", "--json"]);
    assert!(status.contains("\"consent_needed\": true"), "{status}");

    // Accepting (here from a terminal; the window's button does the same).
    let (ok, out) = agent.exec(&["consent", "--accept"]);
    assert!(ok && out.contains("3 detailed logs each working day"), "{out}");
    eventually("heartbeats again", Duration::from_secs(20), || async {
        (count().await > stopped_at).then_some(())
    })
    .await;
    let people = server.state.store.employees_with_presence().await.unwrap();
    let ana = people
        .iter()
        .find(|row| row.who.username == "ana")
        .unwrap()
        .who
        .id;
    // The device's text: the server's policy with this laptop's own
    // heartbeat interval (set in its configuration) over it.
    let (_, status) = agent.exec(&["status", "--json"]);
    let status: Value = serde_json::Deserializer::from_str(&status[status.find('{').unwrap()..])
        .into_iter()
        .next()
        .unwrap()
        .unwrap();
    let version = status["consent_version"].as_str().unwrap().to_owned();
    assert_ne!(
        version, doc.consent.version,
        "this laptop's heartbeat interval is its own"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let consents = server.state.store.consents(ana).await.unwrap();
        if consents.len() == 2 && consents[0].version == version {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new consent is not on the server: {consents:?}\n{}",
            agent.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
