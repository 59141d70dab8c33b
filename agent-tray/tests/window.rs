//! The employee's window, end to end: the real tray app under Xvfb, driven
//! through WebDriver (`tauri-driver` in front of Debian's WebKitWebDriver),
//! against the real server over HTTPS.
//!
//! First run: server address → consent → enrolment code → status showing the
//! heartbeat that the server then lists. Then the device's own schedule
//! changes what is collected: the app asks for consent again before anything
//! more is sent, takes the day's two detailed logs (each announced), and the
//! transparency log shows them with thumbnails.
//!
//! With `WFH_AGENT_PICTURES=<folder>` the pages are saved there
//! (`scripts/docs-pictures` uses `docs/agent/`).

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::{eventually, free_addr, laptop_dir, pki_files, Desktop, Server, AGENT};
use wfh_server::db::ListQuery;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    env: Vec<(String, String)>,
}

impl Driver {
    /// tauri-driver on free ports, in the desktop session.
    async fn start(desktop: &Desktop, env: &[(String, String)]) -> Self {
        let bin = std::env::var("WFH_TAURI_DRIVER").unwrap_or_else(|_| "tauri-driver".into());
        let (port, native) = (free_addr().port(), free_addr().port());
        let log = std::fs::File::create(desktop.path("tauri-driver.log")).unwrap();
        let child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--native-port", &native.to_string()])
            .envs(env.iter().cloned())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("{bin}: {e} (scripts/test builds it; or set WFH_TAURI_DRIVER)"));
        let driver = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(90))
                .build()
                .unwrap(),
            env: env.to_vec(),
        };
        eventually("tauri-driver to listen", Duration::from_secs(20), || async {
            driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                .ok()
                .map(drop)
        })
        .await;
        driver
    }

    async fn session(&self, config: &PathBuf) -> Session<'_> {
        let caps = json!({"capabilities": {"alwaysMatch": {"tauri:options": {
            "application": AGENT, "args": ["--config", config]}}}});
        let v = self.call("POST", "/session", Some(caps)).await;
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_owned();
        Session {
            driver: self,
            id,
            env: self.env.clone(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or(json!({}))),
        };
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let v: Value = res.json().await.unwrap();
        v["value"].clone()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Session<'a> {
    driver: &'a Driver,
    id: String,
    env: Vec<(String, String)>,
}

impl Session<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.driver
            .call(method, &format!("/session/{}{path}", self.id), body)
            .await
    }

    async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().map(str::to_owned)
    }

    async fn wait_for(&self, css: &str) -> String {
        eventually(css, Duration::from_secs(60), || self.find(css)).await
    }

    /// Click the element's centre with a real pointer (X input through
    /// xdotool), as the employee would. WebDriver finds it and says where it
    /// is; its own synthesised clicks wait for a GL-composited frame, which
    /// this app does without (see `tray::run`).
    async fn click(&self, css: &str) {
        self.wait_for(css).await;
        let js = "const e = document.querySelector(arguments[0]); e.scrollIntoView({block: 'center'}); \
                  const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2];";
        let at = self
            .call(
                "POST",
                "/execute/sync",
                Some(json!({"script": js, "args": [css]})),
            )
            .await;
        // No window manager: the window's view starts at the screen's origin.
        let (x, y) = (at[0].as_f64().unwrap().round(), at[1].as_f64().unwrap().round());
        self.xdotool(&["mousemove", &x.to_string(), &y.to_string(), "click", "1"]);
    }

    /// Focus the field with a click and replace its text with the real
    /// keyboard, then read the field back: on a loaded
    /// machine X can drop a keystroke, and the test is about the app, not
    /// about Xvfb, so a field that does not say `text` is typed again.
    async fn type_into(&self, css: &str, text: &str) {
        let read = format!("return document.querySelector({css:?}).value");
        for _ in 0..3 {
            self.click(css).await;
            self.xdotool(&["key", "--clearmodifiers", "ctrl+a", "BackSpace"]);
            self.xdotool(&["type", "--delay", "5", text]);
            for _ in 0..20 {
                if self.script(&read).await.as_str() == Some(text) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("{css} does not hold {text:?} after typing it three times");
    }

    /// Click `css` until `next` appears (a click lost by a loaded X server
    /// is clicked again; the page is checked first, so nothing is done twice).
    async fn click_until(&self, css: &str, next: &str) {
        for _ in 0..3 {
            self.click(css).await;
            for _ in 0..150 {
                if self.find(next).await.is_some() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("{next} did not appear after clicking {css} three times");
    }

    fn xdotool(&self, args: &[&str]) {
        let ok = Command::new("xdotool")
            .args(args)
            .envs(self.env.iter().cloned())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "xdotool {args:?}");
    }

    /// The element's rendered text, found and read in one script: the status
    /// page re-renders every few seconds, so an element found by one call can
    /// be gone (stale) by the next.
    async fn text(&self, css: &str) -> String {
        let js = "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;";
        eventually(css, Duration::from_secs(60), || async {
            self.call(
                "POST",
                "/execute/sync",
                Some(json!({"script": js, "args": [css]})),
            )
            .await
            .as_str()
            .map(str::to_owned)
        })
        .await
    }

    async fn script(&self, js: &str) -> Value {
        self.call("POST", "/execute/sync", Some(json!({"script": js, "args": []})))
            .await
    }

    /// Wait until `js` (an expression) is true in the page.
    async fn until(&self, what: &str, js: &str, timeout: Duration) {
        let script = format!("return Boolean({js})");
        eventually(what, timeout, || async {
            (self.script(&script).await == Value::Bool(true)).then_some(())
        })
        .await;
    }

    /// Save a picture of the window for the docs, when asked to.
    async fn picture(&self, name: &str) {
        let Some(dir) = std::env::var_os("WFH_AGENT_PICTURES").map(PathBuf::from) else {
            return;
        };
        // What is on the screen (the app draws without GL, and WebKit's
        // WebDriver screenshots wait for GL frames): the X display, captured
        // the way the agent captures it, cut to the window.
        self.script("window.scrollTo(0, 0)").await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let size = self
            .script("return [window.innerWidth, window.innerHeight]")
            .await;
        let (w, h) = (size[0].as_u64().unwrap() as u32, size[1].as_u64().unwrap() as u32);
        let display = self.env.iter().find(|(k, _)| k == "DISPLAY").unwrap().1.clone();
        // This test runs in a process of its own: setting DISPLAY is safe.
        std::env::set_var("DISPLAY", display);
        let shots = wfh_agent::capture::capture_monitors().expect("an X screenshot");
        let screen = &shots[0].image;
        let window =
            image::imageops::crop_imm(screen, 0, 0, w.min(screen.width()), h.min(screen.height())).to_image();
        std::fs::create_dir_all(&dir).unwrap();
        window.save(dir.join(format!("{name}.png"))).unwrap();
    }

    async fn enrol(&self, code: &str) {
        self.type_into("#code", code).await;
        self.click("#enroll").await;
    }

    async fn end(self) {
        self.call("DELETE", "", None).await;
    }
}

fn agent_config(dir: &std::path::Path, extra: &str) -> PathBuf {
    let (ca, ..) = pki_files(dir);
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "extra_ca_file = \"{}\"\ndata_dir = \"{}\"\ntoken_store = \"keyring\"\n{extra}",
            ca.display(),
            dir.join("agent-data").display()
        ),
    )
    .unwrap();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_then_enrolment_then_status_shows_the_heartbeat_the_server_lists() {
    let desktop = Desktop::start("#3a5f8a");
    let addr = free_addr();
    let server_dir = tempfile::tempdir().unwrap();
    let server = Server::start(server_dir.path(), addr).await;
    let url = format!("https://{addr}");
    let (employee_id, code) = server.employee_with_code("ana").await;
    let policy = wfh_protocol::MonitoringPolicy {
        organisation: "Northwind Traders".into(),
        viewers: "your team lead and the IT team of Northwind Traders".into(),
        // The test runs on any day of the week: every day is a working day.
        working_days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    };
    let policy = wfh_server::policy::replace(&server.state, policy).await.unwrap();

    let dir = laptop_dir(&server);
    let config = agent_config(dir.path(), "");
    let mut env = desktop.env();
    env.push(("TZ".into(), "UTC".into()));
    env.push((
        "WFH_AGENT_LOG".into(),
        "debug,sqlx=warn,zbus=warn,tao=warn,wry=warn".into(),
    ));
    let driver = Driver::start(&desktop, &env).await;

    // First run: the window opens on the set-up page by itself.
    let s = driver.session(&config).await;
    s.until(
        "the set-up page",
        "document.querySelector('#app').dataset.page === 'setup'",
        Duration::from_secs(60),
    )
    .await;
    let notified_before = desktop.notifications().matches("member=Notify").count();
    s.type_into("#server", &url).await;
    s.click_until("form button[type=submit]", "#accept").await;

    // Consent: exactly the server's text, and nothing collected yet.
    assert_eq!(s.text("#consent-title").await, policy.consent.title);
    let shown = s.script("return document.querySelector('main').innerText").await;
    for section in &policy.consent.sections {
        for item in &section.items {
            assert!(
                shown.as_str().unwrap().contains(item.as_str()),
                "missing {item:?}"
            );
        }
    }
    s.picture("consent").await;
    assert_eq!(server.state.store.heartbeats(&all()).await.unwrap().len(), 0);
    s.click("#accept").await;

    // Enrolment with the code from the administrator.
    s.wait_for("#code").await;
    s.picture("enrol").await;
    s.enrol(&code).await;

    // Status: the heartbeat the server lists.
    s.until(
        "the first heartbeat on the status page",
        "document.querySelector('#last-heartbeat') && !/none/.test(document.querySelector('#last-heartbeat').textContent)",
        Duration::from_secs(60),
    )
    .await;
    let listed = server.state.store.heartbeats(&all()).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].employee_id, employee_id);
    assert_eq!(s.text("#logs-today").await, "0 of 2 taken");
    s.until(
        "the status page to say connected",
        "/^Connected to/.test(document.querySelector('#connection').textContent)",
        Duration::from_secs(20),
    )
    .await;
    let consents = eventually("the consent on the server", Duration::from_secs(30), || async {
        let c = server.state.store.consents(employee_id).await.unwrap();
        (!c.is_empty()).then_some(c)
    })
    .await;
    assert_eq!(consents[0].version, policy.consent.version);
    assert_eq!(
        desktop.notifications().matches("member=Notify").count(),
        notified_before
    );
    s.end().await;

    // A second laptop whose installer carried the server's address and its
    // own schedule (today's logs within the next 40 seconds): the window
    // starts at the consent, which names that schedule.
    let now = chrono::Utc::now();
    let end = now + chrono::Duration::seconds(40);
    if end.date_naive() != now.date_naive() {
        return; // Too close to midnight for a one-day window; the first part passed.
    }
    let (_, code) = server.employee_with_code("bob").await;
    let dir = laptop_dir(&server);
    let config = agent_config(
        dir.path(),
        &format!(
            "server_url = \"{url}\"\nworking_days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]\n\
             window_start = \"{}\"\nwindow_end = \"{}\"\n",
            now.format("%H:%M:%S"),
            end.format("%H:%M:%S")
        ),
    );
    let s = driver.session(&config).await;
    s.wait_for("#accept").await;
    let text = s.script("return document.querySelector('main').innerText").await;
    assert!(
        text.as_str()
            .unwrap()
            .contains(&now.format("between %H:%M").to_string()),
        "{text}"
    );
    s.click("#accept").await;
    s.enrol(&code).await;
    s.until(
        "both detailed logs",
        "document.querySelector('#logs-today') && document.querySelector('#logs-today').textContent === '2 of 2 taken'",
        Duration::from_secs(120),
    )
    .await;
    let logs = server.state.store.logs(&all()).await.unwrap();
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert_eq!(
        desktop.notifications().matches("member=Notify").count(),
        notified_before + 2,
        "each screenshot announced"
    );
    s.picture("status").await;

    // The transparency log: both logs with their thumbnails, and heartbeats.
    s.click("button[data-go=sent]").await;
    s.until(
        "two thumbnails",
        "[...document.querySelectorAll('img.thumb')].filter(i => i.complete && i.naturalWidth > 0).length === 2",
        Duration::from_secs(30),
    )
    .await;
    let counts = s.text("#sent-counts").await;
    assert!(counts.starts_with("2 detailed logs"), "{counts}");
    s.picture("sent").await;
    s.end().await;
}

fn all() -> ListQuery {
    ListQuery {
        limit: 1000,
        ..ListQuery::default()
    }
}
