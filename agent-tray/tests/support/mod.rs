//! Real parts for the agent's end-to-end tests, each test with its own:
//!
//! * a desktop session: Xvfb on a free display, a private D-Bus session bus,
//!   dunst (notifications), an unlocked gnome-keyring (Secret Service) and
//!   `dbus-monitor` recording every `Notify` call;
//! * the real server (in-process, SQLite, HTTPS with a test CA made here);
//! * a TCP proxy between agent and server that can cut or stall connections;
//! * the real `wfh-agent` binary, run as a child process.
//!
//! Nothing here is faked: only the Windows and macOS code paths cannot run.

#![allow(dead_code)]

pub mod tray;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use wfh_server::config::Config;
use wfh_server::state::AppState;

/// Poll `check` until it returns `Some`, or panic after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn spawn_quiet(cmd: &mut Command, log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    cmd.stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (run scripts/test, which installs the desktop packages)"))
}

/// A throwaway desktop session.
pub struct Desktop {
    pub dir: tempfile::TempDir,
    pub display: String,
    pub bus: String,
    children: Vec<Child>,
}

impl Desktop {
    pub fn start(background: &str) -> Self {
        Self::start_sized(background, "1920x1080")
    }

    /// A session whose one X screen is `size` ("WxH") pixels.
    pub fn start_sized(background: &str, size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let runtime = dir.path().join("runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let mut children = Vec::new();
        // Xvfb picks a free display itself and prints its number: choosing
        // one here from the lock files races with the other tests starting
        // at the same moment, and the loser's readiness check would pass on
        // the winner's server, which dies with the winner's test and takes
        // this test's windows with it.
        let mut x = Command::new("Xvfb");
        x.args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            &format!("{size}x24"),
            "-nolisten",
            "tcp",
            "-noreset",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("xvfb.log")).unwrap(),
        ));
        let mut xvfb = x
            .spawn()
            .unwrap_or_else(|e| panic!("Xvfb: {e} (run scripts/test, which installs the desktop packages)"));
        let out = xvfb.stdout.take().unwrap();
        children.push(xvfb);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::{BufRead as _, Read as _};
            let mut reader = std::io::BufReader::new(out);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep the pipe open (and drained) for as long as Xvfb runs.
            let _ = std::io::copy(&mut reader.take(u64::MAX), &mut std::io::sink());
        });
        let number = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("Xvfb did not say which display it took");
        let display = format!(":{}", number.trim());
        assert!(display.len() > 1, "Xvfb printed {number:?}");
        let ready = (0..100).any(|_| {
            Command::new("xdpyinfo")
                .env("DISPLAY", &display)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
                || {
                    std::thread::sleep(Duration::from_millis(100));
                    false
                }
        });
        assert!(ready, "Xvfb on {display} does not answer");
        let status = Command::new("xsetroot")
            .args(["-solid", background])
            .env("DISPLAY", &display)
            .status()
            .unwrap();
        assert!(status.success());

        let mut bus_child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1", "--nopidfile"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon");
        let mut bus = String::new();
        {
            use std::io::BufRead as _;
            let mut reader = std::io::BufReader::new(bus_child.stdout.take().unwrap());
            reader.read_line(&mut bus).unwrap();
        }
        let bus = bus.trim().to_owned();
        assert!(bus.starts_with("unix:"), "dbus-daemon printed {bus:?}");
        children.push(bus_child);
        let mut desktop = Self {
            dir,
            display,
            bus,
            children,
        };

        let env = desktop.env();
        let mut dunst = Command::new("dunst");
        dunst.envs(env.clone());
        let child = spawn_quiet(&mut dunst, &desktop.path("dunst.log"));
        desktop.children.push(child);

        let mut keyring = Command::new("gnome-keyring-daemon");
        keyring
            .args(["--unlock", "--components=secrets", "--foreground"])
            .envs(env.clone())
            .stdin(Stdio::piped());
        let log = std::fs::File::create(desktop.path("keyring.log")).unwrap();
        keyring
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        let mut child = keyring.spawn().expect("gnome-keyring-daemon");
        {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"test-password").unwrap();
        }
        desktop.children.push(child);

        // A StatusNotifierWatcher, so that tray items can register.
        let mut watcher = Command::new("status-notifier-watcher");
        watcher.envs(env.clone());
        let child = spawn_quiet(&mut watcher, &desktop.path("sni-watcher.log"));
        desktop.children.push(child);

        let mut monitor = Command::new("dbus-monitor");
        monitor
            .args([
                "--session",
                "interface='org.freedesktop.Notifications',member='Notify'",
            ])
            .envs(env.clone());
        let child = spawn_quiet(&mut monitor, &desktop.path("notify.log"));
        desktop.children.push(child);

        // Both services on the bus before anyone needs them.
        let names = [
            "org.freedesktop.Notifications",
            "org.freedesktop.secrets",
            "org.kde.StatusNotifierWatcher",
        ];
        let ready = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            let out = Command::new("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.ListNames",
                ])
                .envs(env.clone())
                .output();
            out.is_ok_and(|o| {
                let s = String::from_utf8_lossy(&o.stdout);
                names.iter().all(|n| s.contains(n))
            })
        });
        assert!(
            ready,
            "notification daemon, keyring and tray watcher did not come up on the session bus"
        );
        desktop
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The environment of a process inside this session.
    pub fn env(&self) -> Vec<(String, String)> {
        let p = |s: &str| self.dir.path().join(s).display().to_string();
        vec![
            ("DISPLAY".into(), self.display.clone()),
            ("DBUS_SESSION_BUS_ADDRESS".into(), self.bus.clone()),
            ("XDG_RUNTIME_DIR".into(), p("runtime")),
            ("XDG_DATA_HOME".into(), p("xdg-data")),
            ("XDG_CONFIG_HOME".into(), p("xdg-config")),
            ("XDG_CACHE_HOME".into(), p("xdg-cache")),
        ]
    }

    /// Every `Notify` call seen on the bus so far (dbus-monitor's text).
    pub fn notifications(&self) -> String {
        std::fs::read_to_string(self.path("notify.log")).unwrap_or_default()
    }

    /// What the Secret Service holds for `service`.
    pub fn secret_search(&self, service: &str) -> String {
        let out = Command::new("secret-tool")
            .args(["search", "--all", "--unlock", "service", service])
            .envs(self.env())
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// (CA PEM, certificate PEM, key PEM) for 127.0.0.1 and localhost.
pub fn test_pki() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "WFH Monitor agent test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// The real server over HTTPS on loopback, SQLite in `dir` (kept across restarts).
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub async fn start(dir: &Path, addr: SocketAddr) -> Self {
        let (_, cert, key) = pki_files(dir);
        let config = Config {
            listen: addr,
            data_dir: dir.join("server"),
            tls_cert: Some(cert),
            tls_key: Some(key),
            shutdown_timeout_secs: 2,
            ..Config::default()
        };
        let app = wfh_server::Application::build(config)
            .await
            .expect("server starts");
        let addr = app.local_addr();
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        Self {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.state.heartbeats.close();
    }

    /// An employee and a fresh enrolment code.
    pub async fn employee_with_code(&self, username: &str) -> (i64, String) {
        let now = chrono::Utc::now();
        let e = match self.state.store.create_employee(username, None, now).await {
            Ok(e) => e,
            Err(_) => {
                self.state
                    .store
                    .employees_with_presence()
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|row| row.who.username == username)
                    .unwrap()
                    .who
            }
        };
        let code = wfh_server::auth::new_enrollment_code();
        self.state
            .store
            .add_enrollment_code(
                e.id,
                &wfh_server::auth::hash_enrollment_code(&code),
                now,
                now + chrono::Duration::hours(1),
            )
            .await
            .unwrap();
        (e.id, code)
    }
}

/// The test CA and the server's certificate, made once per directory.
pub fn pki_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, cert, key) = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
    if !ca.exists() {
        let (a, b, c) = test_pki();
        std::fs::write(&ca, a).unwrap();
        std::fs::write(&cert, b).unwrap();
        std::fs::write(&key, c).unwrap();
    }
    (ca, cert, key)
}

/// A free loopback port (bound, read, released).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// What the proxy does with the next connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward everything.
    Pass,
    /// Refuse connections (the server is down).
    Down,
    /// The first upload (a single read of 4 KB or more after the TLS
    /// handshake) is cut there, before the request is complete: the server
    /// dies mid-upload. Then back to `Pass`.
    CutUpload,
    /// Requests go through, answers are held (after the TLS handshake): the
    /// server stored it, the agent never hears back.
    Stall,
}

/// A TCP proxy between the agent and the server (TLS passes through).
#[derive(Clone)]
pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<Mutex<ProxyMode>>,
    pub cuts: Arc<AtomicUsize>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            mode: Arc::new(Mutex::new(ProxyMode::Pass)),
            cuts: Arc::new(AtomicUsize::new(0)),
        };
        let p = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let p = p.clone();
                tokio::spawn(async move { p.serve(client, upstream).await });
            }
        });
        proxy
    }

    pub fn set(&self, mode: ProxyMode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn mode(&self) -> ProxyMode {
        *self.mode.lock().unwrap()
    }

    async fn serve(&self, mut client: TcpStream, upstream: SocketAddr) {
        if self.mode() == ProxyMode::Down {
            return;
        }
        let Ok(mut server) = TcpStream::connect(upstream).await else {
            return;
        };
        let (mut cr, mut cw) = client.split();
        let (mut sr, mut sw) = server.split();
        let mut cbuf = vec![0u8; 64 * 1024];
        let mut sbuf = vec![0u8; 64 * 1024];
        // 0: the server has not spoken; 1: it has (handshake); 2: the client
        // spoke after it (handshake done, requests flowing).
        let mut phase = 0u8;
        loop {
            let hold = phase == 2 && self.mode() == ProxyMode::Stall;
            tokio::select! {
                n = cr.read(&mut cbuf) => {
                    let Ok(n) = n else { return };
                    if n == 0 { return; }
                    if phase == 1 { phase = 2; }
                    if phase == 2 && n >= 4096 && self.mode() == ProxyMode::CutUpload {
                        self.set(ProxyMode::Pass);
                        self.cuts.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    if sw.write_all(&cbuf[..n]).await.is_err() { return; }
                }
                n = sr.read(&mut sbuf), if !hold => {
                    let Ok(n) = n else { return };
                    if n == 0 { return; }
                    if phase == 0 { phase = 1; }
                    if cw.write_all(&sbuf[..n]).await.is_err() { return; }
                }
                () = tokio::time::sleep(Duration::from_millis(50)), if hold => {}
            }
        }
    }
}

/// The agent binary with a configuration in `dir`, inside `desktop`.
pub struct Agent {
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    child: Option<Child>,
    runs: usize,
}

pub const AGENT: &str = env!("CARGO_BIN_EXE_wfh-agent");

impl Agent {
    /// `extra`: more configuration lines.
    pub fn new(dir: &Path, server: &str, desktop_env: Vec<(String, String)>, extra: &str) -> Self {
        let (ca, ..) = pki_files(dir);
        let data = dir.join("agent-data");
        let config = format!(
            "server_url = \"{server}\"\nextra_ca_file = \"{}\"\ndata_dir = \"{}\"\n{extra}\n",
            ca.display(),
            data.display()
        );
        std::fs::write(dir.join("agent.toml"), config).unwrap();
        let mut env = desktop_env;
        env.push(("TZ".into(), "UTC".into()));
        env.push(("WFH_AGENT_LOG".into(), "debug,sqlx=warn,zbus=warn".into()));
        Self {
            dir: dir.to_owned(),
            env,
            child: None,
            runs: 0,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(AGENT);
        c.arg("--config")
            .arg(self.dir.join("agent.toml"))
            .args(args)
            .envs(self.env.clone());
        c
    }

    /// Run a command to completion: (success, stdout + stderr).
    pub fn exec(&self, args: &[&str]) -> (bool, String) {
        let out = self.command(args).output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    pub fn spawn(&mut self) {
        assert!(self.child.is_none());
        self.runs += 1;
        let log = self.dir.join(format!("agent-run-{}.log", self.runs));
        self.child = Some(spawn_quiet(&mut self.command(&["run"]), &log));
    }

    /// Start the tray app (no command: the app, since there is a display).
    pub fn spawn_tray(&mut self) {
        assert!(self.child.is_none());
        self.runs += 1;
        let log = self.dir.join(format!("agent-run-{}.log", self.runs));
        self.child = Some(spawn_quiet(&mut self.command(&[]), &log));
    }

    /// Set (or replace) a variable in the agent's environment.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    /// The running agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Everything the agent logged, over all runs.
    pub fn logs(&self) -> String {
        (1..=self.runs)
            .map(|i| std::fs::read_to_string(self.dir.join(format!("agent-run-{i}.log"))).unwrap_or_default())
            .collect()
    }

    /// SIGTERM (a log-off), and wait.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the agent did not stop on SIGTERM:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The exit status, once the agent has exited by itself.
    pub fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// SIGKILL: a crash or a power cut.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn data_db(&self) -> PathBuf {
        self.dir.join("agent-data").join("agent.db")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A folder for one laptop's agent that trusts `server`'s test CA (as
/// `ca.pem`, which the configuration names).
pub fn laptop_dir(server: &Server) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    pki_files(dir.path());
    // The server's certificate is in the server's own directory; trust its CA.
    let ca = server
        .state
        .config
        .tls_cert
        .as_ref()
        .unwrap()
        .with_file_name("ca.pem");
    std::fs::copy(ca, dir.path().join("ca.pem")).unwrap();
    dir
}

/// `WFH_BENCH_*`-style knob: the variable's value, or `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// An agent in `desktop`, configured with `extra` and enrolled with `server`
/// as employee "ana" (trusting the server's test CA).
pub async fn enrolled_agent(
    desktop: &Desktop,
    server_url: &str,
    server: &Server,
    extra: &str,
) -> (tempfile::TempDir, Agent) {
    let dir = laptop_dir(server);
    let (_, code) = server.employee_with_code("ana").await;
    let agent = Agent::new(dir.path(), server_url, desktop.env(), extra);
    let (ok, out) = agent.exec(&["enroll", "--code", &code]);
    assert!(ok, "enrol: {out}");
    let (ok, out) = agent.exec(&["consent", "--accept"]);
    assert!(ok && out.contains("Accepted"), "consent: {out}");
    (dir, agent)
}

/// Run `xdotool` on `desktop`, which must succeed; its output, trimmed.
pub fn xdotool(desktop: &Desktop, args: &[&str]) -> String {
    let out = Command::new("xdotool")
        .args(args)
        .envs(desktop.env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xdotool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `xdotool` where failing is an answer (a search that finds nothing yet):
/// its output, trimmed.
pub fn xdotool_lenient(desktop: &Desktop, args: &[&str]) -> String {
    let out = Command::new("xdotool")
        .args(args)
        .envs(desktop.env())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A server (HTTPS, test CA) whose monitoring policy is `policy`, and its URL.
pub async fn server_with_policy(dir: &Path, policy: wfh_protocol::MonitoringPolicy) -> (Server, String) {
    let server = Server::start(dir, free_addr()).await;
    wfh_server::policy::replace(&server.state, policy).await.unwrap();
    let url = format!("https://localhost:{}", server.addr.port());
    (server, url)
}

/// A detailed-log window that opens now and closes `secs` later, in UTC
/// (the agent runs with `TZ=UTC`), as configuration lines; waits out midnight.
pub async fn window_from_now(secs: i64) -> String {
    window_after(0, secs).await.0
}

/// A logging window of `secs` seconds that opens `delay` seconds from now
/// (within one UTC day: waits for the next day when it would cross
/// midnight), and when it opens.
pub async fn window_after(delay: i64, secs: i64) -> (String, chrono::DateTime<chrono::Utc>) {
    loop {
        let now = chrono::Utc::now();
        let start = now + chrono::Duration::seconds(delay);
        let end = start + chrono::Duration::seconds(secs);
        if end.date_naive() == now.date_naive() {
            let config = format!(
                "working_days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]\nwindow_start = \"{}\"\nwindow_end = \"{}\"\n",
                start.format("%H:%M:%S"),
                end.format("%H:%M:%S")
            );
            return (config, start);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
