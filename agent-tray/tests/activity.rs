//! Activity insight end to end: the real `wfh-agent` in an Xvfb session, two
//! real X applications with known titles, focus moved and keys typed with
//! `xdotool` (XTEST: the X server sees them as real input), then no input;
//! the buckets the server stores must match what was done.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{enrolled_agent, eventually, server_with_policy, xdotool, Desktop, Server};
use wfh_protocol::activity::REDACTED;
use wfh_protocol::admin::ActivityRecord;
use wfh_protocol::{ActivityPolicy, MonitoringPolicy};
use wfh_server::db::ListQuery;

struct Window(Child);

impl Drop for Window {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `cmd` on the desktop and return it with its window id, found by title.
async fn open(desktop: &Desktop, cmd: &[&str], title: &str) -> (Window, String) {
    let child = Command::new(cmd[0])
        .args(&cmd[1..])
        .envs(desktop.env())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/test installs xterm and x11-utils)"));
    let window = Window(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = Command::new("xdotool")
            .args(["search", "--name", title])
            .envs(desktop.env())
            .output()
            .unwrap();
        let ids = String::from_utf8_lossy(&out.stdout);
        if let Some(id) = ids.lines().next() {
            return (window, id.trim().to_owned());
        }
        assert!(Instant::now() < deadline, "no window titled {title:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn policy() -> MonitoringPolicy {
    MonitoringPolicy {
        logs_per_day: 0,
        activity: ActivityPolicy {
            applications: true,
            window_titles: true,
            title_redactions: vec!["(?i)secret".into()],
            idle_time: true,
            key_counts: true,
            sample_secs: 1,
            bucket_secs: 60,
            idle_after_secs: 10,
            ..ActivityPolicy::default()
        },
        ..MonitoringPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_gets_what_was_done_on_the_desktop() {
    let desktop = Desktop::start("#204060");
    let server_dir = tempfile::tempdir().unwrap();
    let (server, url) = server_with_policy(server_dir.path(), policy()).await;
    let (_laptop, mut agent) = enrolled_agent(&desktop, &url, &server, "").await;

    let (_term, term) = open(&desktop, &["xterm", "-T", "WFH report draft"], "WFH report draft").await;
    let (_note, note) = open(
        &desktop,
        &["xmessage", "-title", "Top SECRET plans", "ok"],
        "Top SECRET plans",
    )
    .await;

    agent.spawn();
    eventually("activity sampling to start", Duration::from_secs(30), || {
        let started = agent.logs().contains("activity sampling on");
        async move { started.then_some(()) }
    })
    .await;
    // The first sample sets the key counter's baseline.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 8 s in the terminal, typing 12 keys; then the secret note, with a
    // move of the mouse (input, but no key) and no input after it for 24 s:
    // idle from 10 s after that move.
    let started = Instant::now();
    xdotool(&desktop, &["windowfocus", "--sync", &term]);
    xdotool(&desktop, &["type", "--delay", "100", "abcdefghijkl"]);
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(started.elapsed())).await;
    xdotool(&desktop, &["windowfocus", "--sync", &note]);
    xdotool(&desktop, &["mousemove", "400", "300"]);
    tokio::time::sleep(Duration::from_secs(24)).await;

    // Stopping hands over the bucket so far and sends it.
    let status = agent.stop();
    assert!(status.success(), "{status:?}\n{}", agent.logs());

    let all = ListQuery {
        limit: 1000,
        ..ListQuery::default()
    };
    let buckets: Vec<ActivityRecord> = server.state.store.activity(&all).await.unwrap();
    assert!(!buckets.is_empty(), "no activity on the server\n{}", agent.logs());
    let secs = |app: &str, title: &str| -> u32 {
        buckets
            .iter()
            .flat_map(|b| &b.apps)
            .filter(|a| a.app == app && a.title.as_deref() == Some(title))
            .map(|a| a.secs)
            .sum()
    };
    let keys: u32 = buckets.iter().filter_map(|b| b.key_presses).sum();
    let idle: u32 = buckets.iter().filter_map(|b| b.idle_secs).sum();
    let active: u32 = buckets.iter().filter_map(|b| b.active_secs).sum();
    let report = format!("{buckets:#?}");
    assert_eq!(keys, 12, "exactly the keys typed: {report}");
    let in_term = secs("xterm", "WFH report draft");
    let in_note = secs("Xmessage", REDACTED);
    assert!((6..=10).contains(&in_term), "terminal {in_term} s: {report}");
    // The note kept the focus through the idle time too: 24 s.
    assert!((21..=27).contains(&in_note), "note {in_note} s: {report}");
    // Idle from 10 s after the last input (the mouse move at ~8 s): 14 s.
    assert!((11..=17).contains(&idle), "idle {idle} s: {report}");
    assert!(active >= 15, "active {active} s: {report}");
    assert!(
        !report.to_lowercase().contains("secret"),
        "a redacted title reached the server: {report}"
    );
    server.stop().await;
}

/// The agent's log without terminal colours.
fn plain_logs(agent: &support::Agent) -> String {
    regex::Regex::new("\x1b\\[[0-9;]*m")
        .unwrap()
        .replace_all(&agent.logs(), "")
        .into_owned()
}

/// Wait for `line` in the agent's log; on timeout, fail with the log.
async fn wait_for_log(agent: &support::Agent, line: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let logs = plain_logs(agent);
        if logs.contains(line) {
            return;
        }
        if Instant::now() > deadline {
            let tail: Vec<&str> = logs
                .lines()
                .filter(|l| l.contains("wfh_agent"))
                .rev()
                .take(30)
                .collect();
            panic!(
                "no {line:?} in the agent's log; newest first:\n{}",
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn heartbeats_on_server(server: &Server) -> usize {
    let all = ListQuery {
        limit: 1000,
        ..ListQuery::default()
    };
    server.state.store.heartbeats(&all).await.unwrap().len()
}

/// A switch turned off on the server stops that collection on a running
/// agent at once, without asking; a switch turned on stops everything until
/// the employee accepts the new text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switches_off_apply_at_once_and_switches_on_wait_for_consent() {
    let desktop = Desktop::start("#204060");
    let server_dir = tempfile::tempdir().unwrap();
    let mut p = MonitoringPolicy {
        heartbeat_interval_secs: 1,
        logs_per_day: 0,
        activity: ActivityPolicy {
            idle_time: true,
            key_counts: true,
            sample_secs: 1,
            bucket_secs: 60,
            ..ActivityPolicy::default()
        },
        ..MonitoringPolicy::default()
    };
    let (server, url) = server_with_policy(server_dir.path(), p.clone()).await;
    let (_laptop, mut agent) = enrolled_agent(&desktop, &url, &server, "").await;
    agent.spawn();
    wait_for_log(
        &agent,
        "activity sampling on applications=false titles=false idle=true keys=true",
        30,
    )
    .await;

    // Key counting off: the agent hears of it with its next heartbeat and
    // goes on without asking (the new policy collects less).
    p.activity.key_counts = false;
    let doc = wfh_server::policy::replace(&server.state, p.clone())
        .await
        .unwrap();
    wait_for_log(
        &agent,
        "activity sampling on applications=false titles=false idle=true keys=false",
        15,
    )
    .await;
    assert!(
        plain_logs(&agent).contains(&format!(
            "the server names another policy: fetching it revision={}",
            doc.revision
        )),
        "{}",
        plain_logs(&agent)
    );
    xdotool(&desktop, &["type", "--delay", "50", "abcdefg"]);
    let before = heartbeats_on_server(&server).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        heartbeats_on_server(&server).await > before,
        "monitoring went on without asking"
    );
    assert!(
        !plain_logs(&agent).contains("waiting for the employee's consent"),
        "{}",
        plain_logs(&agent)
    );

    // Applications on: collection stops until the employee accepts.
    p.activity.applications = true;
    wfh_server::policy::replace(&server.state, p.clone())
        .await
        .unwrap();
    wait_for_log(&agent, "waiting for the employee's consent", 15).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopped = heartbeats_on_server(&server).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        heartbeats_on_server(&server).await,
        stopped,
        "nothing is collected before the new consent"
    );
    assert!(plain_logs(&agent).contains("activity sampling off"));
    let (ok, out) = agent.exec(&["consent", "--accept"]);
    assert!(ok && out.contains("Accepted"), "{out}");
    wait_for_log(&agent, "activity sampling on applications=true", 15).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(heartbeats_on_server(&server).await > stopped);

    let status = agent.stop();
    assert!(status.success(), "{status:?}");
    let all = ListQuery {
        limit: 1000,
        ..ListQuery::default()
    };
    let buckets = server.state.store.activity(&all).await.unwrap();
    // The seven keys were typed after counting was switched off.
    let keys: u32 = buckets.iter().filter_map(|b| b.key_presses).sum();
    assert_eq!(keys, 0, "{buckets:#?}");
    server.stop().await;
}
