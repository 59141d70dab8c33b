//! The packages, installed: both .debs on this machine, the server started
//! as its systemd unit says behind a real nginx serving TLS with a test CA,
//! and the installed agent, configured as an IT admin would (`wfh-agent
//! configure` writing /etc/wfh-monitor/agent.toml with the server and an
//! enrolment code), enrolling itself and delivering a heartbeat and a
//! detailed log through nginx, as the admin API shows.
//!
//! It needs root (it runs dpkg) and the packages `scripts/package --dev`
//! makes from the binaries the tests built (scripts/test does both, then
//! points WFH_TEST_PACKAGES at them). The machine has no running systemd (a
//! container), so the unit is checked with `systemd-analyze` and its
//! command run as its user with `setpriv`; everything else is real.
//!
//! The packages are purged at the end; /var/lib/wfh-monitor and
//! /etc/wfh-monitor/agent.toml, which dpkg keeps by design, are removed by
//! the test.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{eventually, free_addr, test_pki, Desktop};
use wfh_protocol::admin::{EmployeeList, HeartbeatRecord, Page};
use wfh_protocol::LogRecord;

const SERVER_PKG: &str = "wfh-monitor-server";
const AGENT_PKG: &str = "wfh-monitor-agent";
const SERVER_CONFIG: &str = "/etc/wfh-monitor/server.toml";
const AGENT_CONFIG: &str = "/etc/wfh-monitor/agent.toml";
const STATE_DIR: &str = "/var/lib/wfh-monitor";
const UNIT: &str = "/usr/lib/systemd/system/wfh-server.service";

/// Run a command; panic with its output unless it succeeds; its stdout.
fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A system program by its full path: /usr/sbin is not on every PATH.
fn sbin(name: &str) -> String {
    ["/usr/sbin", "/sbin", "/usr/bin"]
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| name.to_owned())
}

fn purge() {
    let _ = Command::new("dpkg")
        .args(["--purge", AGENT_PKG, SERVER_PKG])
        .output();
    let _ = std::fs::remove_dir_all(STATE_DIR);
    let _ = std::fs::remove_file(AGENT_CONFIG);
    let _ = std::fs::remove_dir("/etc/wfh-monitor");
}

/// Purges the packages however the test ends, and stops what it started.
struct Installed {
    children: Vec<Child>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        // SIGTERM, as systemd stops a service: nginx's master takes its
        // workers down with it (SIGKILL would leave them serving), the server
        // drains. The agent first, then nginx, then the server.
        for c in self.children.iter_mut().rev() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        purge();
    }
}

fn packages() -> (PathBuf, PathBuf) {
    let dir = PathBuf::from(
        std::env::var("WFH_TEST_PACKAGES")
            .expect("WFH_TEST_PACKAGES: the folder scripts/package --dev writes (scripts/test sets it)"),
    );
    let find = |prefix: &str| {
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with(prefix) && name.ends_with(".deb")
            })
            .unwrap_or_else(|| panic!("no {prefix}*.deb in {}", dir.display()))
    };
    (find("wfh-monitor-server_"), find("wfh-monitor-agent_"))
}

fn mode_owner(path: &str) -> String {
    sh("stat", &["-c", "%a %U:%G", path]).trim().to_owned()
}

/// The installed site, edited as the deployment guide says: the server's
/// name, the certificate, and (here) loopback ports instead of 80/443.
fn nginx_site(site: &str, tls: u16, http: u16, upstream: u16, cert: &Path, key: &Path) -> String {
    let mut out = String::new();
    for line in site.lines() {
        let t = line.trim();
        if t.starts_with("listen [::]") {
            continue;
        }
        let line = match t {
            "listen 80;" => format!("    listen 127.0.0.1:{http};"),
            "listen 443 ssl http2;" => format!("    listen 127.0.0.1:{tls} ssl http2;"),
            "server 127.0.0.1:8080;" => format!("    server 127.0.0.1:{upstream};"),
            _ if t.starts_with("ssl_certificate ") => format!("    ssl_certificate {};", cert.display()),
            _ if t.starts_with("ssl_certificate_key ") => {
                format!("    ssl_certificate_key {};", key.display())
            }
            _ => line.replace("wfh.example.com", "localhost"),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_packages_install_and_an_agent_reports_through_nginx_over_https() {
    assert_eq!(
        sh("id", &["-u"]).trim(),
        "0",
        "installing packages needs root (scripts/test runs as root in CI)"
    );
    let (server_deb, agent_deb) = packages();
    purge();
    let mut installed = Installed { children: Vec::new() };
    sh(
        "dpkg",
        &["-i", server_deb.to_str().unwrap(), agent_deb.to_str().unwrap()],
    );

    // --- What the server package put where -------------------------------
    let status = sh("dpkg-query", &["-W", "-f=${Status}", SERVER_PKG]);
    assert_eq!(status, "install ok installed");
    for f in [
        "/usr/bin/wfh-server",
        UNIT,
        SERVER_CONFIG,
        "/usr/share/wfh-monitor-server/nginx/wfh-monitor.conf",
        "/usr/share/doc/wfh-monitor-server/README.md",
    ] {
        assert!(Path::new(f).is_file(), "{f} installed");
    }
    let passwd = sh("getent", &["passwd", "wfh-monitor"]);
    assert!(
        passwd
            .trim_end()
            .ends_with(":/var/lib/wfh-monitor:/usr/sbin/nologin"),
        "a system user without a shell: {passwd}"
    );
    assert_eq!(mode_owner(STATE_DIR), "750 wfh-monitor:wfh-monitor");
    assert_eq!(mode_owner(SERVER_CONFIG), "640 root:wfh-monitor");
    assert!(
        sh("dpkg-query", &["-W", "-f=${Conffiles}", SERVER_PKG]).contains(SERVER_CONFIG),
        "the configuration is a conffile (kept across upgrades)"
    );
    sh("systemd-analyze", &["verify", UNIT]);
    // Hardening, as systemd rates it (0 = locked down, 10 = exposed).
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", UNIT])
        .output()
        .unwrap();
    let rating = String::from_utf8_lossy(&security.stdout);
    let exposure: f64 = rating
        .lines()
        .find_map(|l| l.split("Overall exposure level for wfh-server.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{rating}"));
    assert!(
        exposure <= 2.0,
        "exposure {exposure} (OK is below 2.0):\n{rating}"
    );
    println!("wfh-server.service exposure level: {exposure}");

    // --- What the agent package put where --------------------------------
    for f in [
        "/usr/bin/wfh-agent",
        "/etc/xdg/autostart/wfh-monitor.desktop",
        "/usr/lib/systemd/user/wfh-agent.service",
        "/usr/share/doc/wfh-monitor-agent/agent.example.toml",
    ] {
        assert!(Path::new(f).is_file(), "{f} installed");
    }
    let entry = std::fs::read_to_string("/etc/xdg/autostart/wfh-monitor.desktop").unwrap();
    assert!(entry.contains("\nExec=/usr/bin/wfh-agent\n"), "{entry}");
    sh(
        "systemd-analyze",
        &["verify", "/usr/lib/systemd/user/wfh-agent.service"],
    );
    let depends = sh("dpkg-query", &["-W", "-f=${Depends}", AGENT_PKG]);
    for lib in ["libwebkit2gtk-4.1-0", "libgtk-3-0", "libayatana-appindicator3-1"] {
        assert!(depends.contains(lib), "agent depends on {lib}: {depends}");
    }

    // --- The server, started as its unit starts it -----------------------
    let upstream = free_addr().port();
    let config = std::fs::read_to_string(SERVER_CONFIG).unwrap();
    assert!(config.contains("\nlisten = \"127.0.0.1:8080\"\n"), "{config}");
    std::fs::write(
        SERVER_CONFIG,
        config.replace(
            "\nlisten = \"127.0.0.1:8080\"\n",
            &format!("\nlisten = \"127.0.0.1:{upstream}\"\n"),
        ),
    )
    .unwrap();
    let unit = std::fs::read_to_string(UNIT).unwrap();
    let field = |name: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name}= in the unit"))
            .to_owned()
    };
    let (user, exec) = (field("User"), field("ExecStart"));
    let argv: Vec<&str> = exec.split_whitespace().collect();
    let work = tempfile::tempdir().unwrap();
    let server_log = std::fs::File::create(work.path().join("server.log")).unwrap();
    // As the unit's User= does: the server itself, with the service user's
    // ids (setpriv execs, so the child is the server and SIGTERM reaches it).
    installed.children.push(
        Command::new(sbin("setpriv"))
            .args([
                &format!("--reuid={user}"),
                &format!("--regid={user}"),
                "--init-groups",
                "--",
            ])
            .args(&argv)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdout(Stdio::from(server_log.try_clone().unwrap()))
            .stderr(Stdio::from(server_log))
            .spawn()
            .unwrap(),
    );
    let plain = reqwest::Client::new();
    eventually("the server answers", Duration::from_secs(30), || {
        let c = plain.clone();
        async move {
            let r = c
                .get(format!("http://127.0.0.1:{upstream}/healthz"))
                .send()
                .await
                .ok()?;
            r.status().is_success().then_some(())
        }
    })
    .await;
    assert!(
        Path::new(STATE_DIR).join("wfh.db").is_file(),
        "migrated at start, embedded database in /var/lib/wfh-monitor"
    );
    assert_eq!(
        mode_owner(&format!("{STATE_DIR}/wfh.db"))
            .split(' ')
            .nth(1)
            .unwrap(),
        "wfh-monitor:wfh-monitor"
    );

    // --- nginx in front, TLS with a test CA ------------------------------
    let (ca, cert, key) = test_pki();
    let p = |n: &str| work.path().join(n);
    std::fs::write(p("ca.pem"), &ca).unwrap();
    std::fs::write(p("cert.pem"), &cert).unwrap();
    std::fs::write(p("key.pem"), &key).unwrap();
    let (tls, http) = (free_addr().port(), free_addr().port());
    let site = std::fs::read_to_string("/usr/share/wfh-monitor-server/nginx/wfh-monitor.conf").unwrap();
    std::fs::write(
        p("site.conf"),
        nginx_site(&site, tls, http, upstream, &p("cert.pem"), &p("key.pem")),
    )
    .unwrap();
    let d = work.path().display();
    std::fs::write(
        p("nginx.conf"),
        format!(
            "user root;\nworker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log {d}/nginx-access.log;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
             scgi_temp_path {d}/scgi;\n  include {d}/site.conf;\n}}\n"
        ),
    )
    .unwrap();
    let conf = p("nginx.conf").display().to_string();
    let err = p("nginx-error.log").display().to_string();
    sh(&sbin("nginx"), &["-t", "-e", &err, "-c", &conf]);
    installed.children.push(
        Command::new(sbin("nginx"))
            .args(["-e", &err, "-c", &conf])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("https://localhost:{tls}");
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    eventually(
        "nginx serves the server over TLS",
        Duration::from_secs(30),
        || {
            let (c, url) = (https.clone(), format!("{base}/healthz"));
            async move { c.get(url).send().await.ok()?.status().is_success().then_some(()) }
        },
    )
    .await;
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{http}/dashboard"))
        .header("host", "localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 301, "plain HTTP redirects to HTTPS");
    for path in ["/metrics", "/metrics/", "/metrics?format=x", "/metrics/x"] {
        let metrics = https.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(metrics.status(), 404, "metrics are not public: {path}");
    }

    // --- The admin's side: a token and an employee, with the CLI ---------
    let server_cli = |args: &[&str]| {
        let mut all = vec![
            "-u",
            user.as_str(),
            "--",
            "/usr/bin/wfh-server",
            "--config",
            SERVER_CONFIG,
        ];
        all.extend_from_slice(args);
        sh(&sbin("runuser"), &all)
            .lines()
            .last()
            .unwrap()
            .trim()
            .to_owned()
    };
    let admin = server_cli(&["admin-token", "create", "--label", "install-test"]);
    let code = server_cli(&["employee", "add", "ana", "--name", "Ana Example"]);

    // --- IT configures the laptop; the employee accepts; it runs ---------
    sh(
        "/usr/bin/wfh-agent",
        &[
            "configure",
            "--server-url",
            &base,
            "--enroll-code",
            &code,
            "--extra-ca-file",
            p("ca.pem").to_str().unwrap(),
        ],
    );
    assert_eq!(mode_owner(AGENT_CONFIG), "644 root:root");
    let desktop = Desktop::start("#335577");
    let home = desktop.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let window = support::window_from_now(60).await;
    let mut env = desktop.env();
    env.push(("HOME".into(), home.display().to_string()));
    env.push(("TZ".into(), "UTC".into()));
    env.push(("WFH_AGENT_LOG".into(), "info,sqlx=warn".into()));
    // The schedule for this test (today's two logs within a minute) is IT's,
    // in the system file beside the server and the code. The employee's own
    // file tries to turn the logs off and flood the server: ignored.
    let system = std::fs::read_to_string(AGENT_CONFIG).unwrap();
    std::fs::write(AGENT_CONFIG, format!("{system}\n{window}")).unwrap();
    let user_config = desktop.path("xdg-config").join("wfh-monitor");
    std::fs::create_dir_all(&user_config).unwrap();
    std::fs::write(
        user_config.join("agent.toml"),
        "logs_per_day = 0\nheartbeat_interval_secs = 1\n",
    )
    .unwrap();
    let agent = |args: &[&str]| {
        let out = Command::new("/usr/bin/wfh-agent")
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.clone())
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, out) = agent(&["consent", "--accept"]);
    assert!(ok && out.contains("Accepted"), "consent: {out}");
    let agent_log = std::fs::File::create(work.path().join("agent.log")).unwrap();
    installed.children.push(
        Command::new("/usr/bin/wfh-agent")
            .arg("run")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.clone())
            .stdout(Stdio::from(agent_log.try_clone().unwrap()))
            .stderr(Stdio::from(agent_log))
            .spawn()
            .unwrap(),
    );

    // --- Seen by the admin API, through nginx ----------------------------
    let get = |path: String| {
        let (c, url, admin) = (https.clone(), format!("{base}{path}"), admin.clone());
        async move {
            let r = c.get(url).bearer_auth(admin).send().await.ok()?;
            r.status().is_success().then_some(r)
        }
    };
    let logs = eventually(
        "a heartbeat and a detailed log",
        Duration::from_secs(150),
        || async {
            let beats: Page<HeartbeatRecord> =
                get("/api/admin/heartbeats".into()).await?.json().await.ok()?;
            let logs: Page<LogRecord> = get("/api/admin/logs".into()).await?.json().await.ok()?;
            (!beats.items.is_empty() && !logs.items.is_empty()).then_some(logs)
        },
    )
    .await;
    let employees: EmployeeList = get("/api/admin/employees".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ana = employees.employees.iter().find(|e| e.username == "ana").unwrap();
    assert!(ana.last_seen.is_some(), "{ana:?}");
    let log = &logs.items[0];
    assert_eq!(log.employee_id, ana.id);
    assert!(
        log.observed_ip.is_loopback(),
        "nginx passed the agent's address: {log:?}"
    );
    let shot = get(format!("/api/admin/logs/{}/screenshot", log.id))
        .await
        .expect("the screenshot, through nginx");
    let bytes = shot.bytes().await.unwrap();
    assert!(
        image::load_from_memory(&bytes).is_ok(),
        "a real image of {} bytes",
        bytes.len()
    );
    assert!(
        desktop.notifications().contains("member=Notify"),
        "the screenshot was announced"
    );
    // The enrolment code was used once: the system file still carries it, but
    // the server refuses it now.
    let again = https
        .post(format!("{base}/api/enroll"))
        .json(&serde_json::json!({"code": code, "username": "x", "hostname": "y"}))
        .send()
        .await
        .unwrap();
    assert!(again.status().is_client_error(), "{}", again.status());
    let server_log = std::fs::read_to_string(work.path().join("server.log")).unwrap_or_default();
    assert!(!server_log.contains(&admin), "no token in the server's log");
    drop(installed);
    assert!(
        Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", SERVER_PKG])
            .output()
            .map(|o| !String::from_utf8_lossy(&o.stdout).contains("ok installed"))
            .unwrap_or(true),
        "purged"
    );
}
