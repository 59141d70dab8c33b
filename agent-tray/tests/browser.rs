//! Websites end to end: Debian's Chromium under Xvfb loads the WFH Monitor
//! extension (`browser-extension/`), starts `wfh-agent` as its native
//! messaging host, and visits pages served here on two local names; the
//! running agent records the domains of the active tab, and the server gets
//! the domains only (the policy does not allow full addresses).

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{enrolled_agent, server_with_policy, xdotool, xdotool_lenient, Desktop};
use wfh_protocol::{ActivityPolicy, MonitoringPolicy};
use wfh_server::db::ListQuery;

struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Requests the page server got: first lines and hosts, for a failure's report.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A web server for `*.test` pages, until the test ends. Each connection
/// has a thread of its own: Chromium opens connections ahead of need
/// (preconnects) and may leave one idle for many seconds, and a server that
/// waited on it would leave the next page's request unanswered meanwhile.
fn pages(seen: Seen) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(s) = stream else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || serve_page(s, &seen));
        }
    });
    port
}

fn serve_page(mut s: std::net::TcpStream, seen: &Seen) {
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap_or(0);
    if n == 0 {
        return; // A preconnect closed unused.
    }
    let text = String::from_utf8_lossy(&buf[..n]);
    let host = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("host:"))
        .unwrap_or("");
    seen.lock()
        .unwrap()
        .push(format!("{} ({host})", text.lines().next().unwrap_or("")));
    // Each site's page has a title of its own, so its window can be found
    // by name.
    let site = if host.to_ascii_lowercase().contains("beta.test") {
        "Beta"
    } else {
        "Alpha"
    };
    let body = format!("<!doctype html><title>{site} page</title><p>Hello");
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn chromium(
    desktop: &Desktop,
    profile: &std::path::Path,
    data_dir: &std::path::Path,
    url: &str,
    log: &std::path::Path,
) -> Child {
    let extension = concat!(env!("CARGO_MANIFEST_DIR"), "/../browser-extension");
    Command::new("chromium")
        .args([
            &format!("--user-data-dir={}", profile.display()),
            &format!("--load-extension={extension}"),
            "--disable-features=DisableLoadExtensionCommandLineSwitch",
            "--host-resolver-rules=MAP *.test 127.0.0.1",
            "--no-first-run",
            "--no-default-browser-check",
            "--password-store=basic",
            "--disable-gpu",
            "--no-sandbox",
            "--window-size=1200,800",
            // The test opens its second site through this, on loopback.
            "--remote-debugging-port=0",
            url,
        ])
        .envs(desktop.env())
        // The native host (started by Chromium) finds the agent's database.
        .env("WFH_AGENT_DATA_DIR", data_dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("chromium (scripts/test installs it)")
}

/// The X window whose title contains `name` (Chromium names its window
/// after the page in front); `report` says what else there is if none does.
async fn window_named(desktop: &Desktop, name: &str, report: impl Fn() -> String) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ids = xdotool_lenient(desktop, &["search", "--onlyvisible", "--name", name]);
        if let Some(id) = ids.lines().last() {
            return id.to_owned();
        }
        if Instant::now() >= deadline {
            let windows = xdotool_lenient(
                desktop,
                &[
                    "search",
                    "--onlyvisible",
                    "--class",
                    "chromium",
                    "getwindowname",
                    "%@",
                ],
            );
            panic!(
                "no window shows {name:?}; Chromium's windows:\n{windows}\n{}",
                report()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Wait until the native host has told the agent `domain` is the tab in
/// front; when that was seen.
async fn wait_for_tab(agent: &support::Agent, domain: &str, report: impl Fn() -> String) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let url = format!("sqlite://{}?mode=ro", agent.data_db().display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let tab: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'browser_tab'")
            .fetch_optional(&pool)
            .await
            .unwrap();
        pool.close().await;
        if tab.is_some_and(|t| t.contains(domain)) {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "the extension never reported {domain} (is the native host installed?)\n{}\n{}",
            agent.logs(),
            report()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Open `url` in a new tab of the Chromium using `profile`, through its
/// DevTools HTTP endpoint (the port Chromium wrote into the profile).
fn open_tab(profile: &std::path::Path, url: &str, report: impl Fn() -> String) {
    let file = profile.join("DevToolsActivePort");
    let port = std::fs::read_to_string(&file)
        .ok()
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| panic!("no {}\n{}", file.display(), report()));
    let mut s = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "PUT /json/new?{url} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // The status line is enough (DevTools keeps the connection open).
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "DevTools did not open {url}: {answer}\n{}",
        report()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_records_the_domains_chromium_shows() {
    let desktop = Desktop::start("#204060");
    let server_dir = tempfile::tempdir().unwrap();
    let policy = MonitoringPolicy {
        logs_per_day: 0,
        activity: ActivityPolicy {
            applications: true,
            websites: true,
            sample_secs: 1,
            bucket_secs: 60,
            ..ActivityPolicy::default()
        },
        ..MonitoringPolicy::default()
    };
    let (server, url) = server_with_policy(server_dir.path(), policy).await;
    let (laptop, mut agent) = enrolled_agent(&desktop, &url, &server, "").await;
    let profile = laptop.path().join("chromium-profile");
    let (ok, out) = agent.exec(&[
        "browser",
        "install",
        "--user-data-dir",
        &profile.display().to_string(),
    ]);
    assert!(ok, "{out}");
    let manifest = profile.join("NativeMessagingHosts/com.wfh_monitor.agent.json");
    assert!(manifest.exists(), "{out}");

    agent.spawn();
    let seen = Seen::default();
    let port = pages(seen.clone());
    let data_dir = laptop.path().join("agent-data");
    let log = laptop.path().join("chromium.log");
    let report = || {
        format!(
            "pages served: {:?}\n--- Chromium:\n{}",
            seen.lock().unwrap(),
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    };
    let _browser = Browser(chromium(
        &desktop,
        &profile,
        &data_dir,
        &format!("http://alpha.test:{port}/secret-path"),
        &log,
    ));
    // Chromium's window, in front.
    let window = window_named(&desktop, "Alpha page", &report).await;
    xdotool(&desktop, &["windowfocus", "--sync", &window]);
    // The extension reports the first tab once its page has loaded.
    let alpha_seen = wait_for_tab(&agent, "alpha.test", &report).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    // A second site in a new tab of the focused window, as a person opening
    // one would (through the browser's DevTools endpoint: starting
    // `chromium URL` again may open it in a window of its own, which this
    // desktop without a window manager would leave unfocused).
    open_tab(&profile, &format!("http://beta.test:{port}/other"), report);
    // Opening it takes longer on a busy machine: time each site from when
    // the agent heard of it.
    let beta_seen = wait_for_tab(&agent, "beta.test", &report).await;
    tokio::time::sleep(Duration::from_secs(9)).await;

    let status = agent.stop();
    assert!(status.success(), "{status:?}");
    let all = ListQuery {
        limit: 1000,
        ..ListQuery::default()
    };
    let buckets = server.state.store.activity(&all).await.unwrap();
    let secs = |d: &str| -> u32 {
        buckets
            .iter()
            .flat_map(|b| &b.sites)
            .filter(|s| s.domain == d)
            .map(|s| s.secs)
            .sum()
    };
    let report = format!(
        "{buckets:#?}\n{}",
        agent
            .logs()
            .lines()
            .filter(|l| l.contains("wfh_agent"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Sampled every second: within 3 s of the time between the two reports.
    let on_alpha = u32::try_from((beta_seen - alpha_seen).as_secs()).unwrap();
    assert!(
        (on_alpha.saturating_sub(3)..=on_alpha + 3).contains(&secs("alpha.test")),
        "alpha.test {} s, on it for {on_alpha} s: {report}",
        secs("alpha.test")
    );
    assert!(
        (5..=12).contains(&secs("beta.test")),
        "beta.test {} s: {report}",
        secs("beta.test")
    );
    assert!(
        buckets.iter().flat_map(|b| &b.sites).all(|s| s.url.is_none()),
        "{report}"
    );
    assert!(!format!("{buckets:?}").contains("secret-path"), "{report}");
    assert!(
        buckets
            .iter()
            .flat_map(|b| &b.apps)
            .any(|a| a.app.contains("chrom")),
        "{report}"
    );
    server.stop().await;
}
