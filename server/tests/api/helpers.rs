//! Test harness: the real server on a random port, a fresh database per test.
//!
//! PostgreSQL: a new database on `WFH_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), dropped when the test ends.
//! SQLite: a file in a temporary folder. Logs are silent unless `TEST_LOG` is set.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Once};

use chrono::{DateTime, Duration, FixedOffset, SubsecRound as _, Utc};
use secrecy::SecretString;
use serde_json::Value;
use sqlx::Connection as _;
use tokio::sync::oneshot;
use uuid::Uuid;
use wfh_agent::client::{ApiClient, DeviceToken};
use wfh_protocol::{EnrollResponse, HeartbeatRequest, HeartbeatStatus, LogMeta};
use wfh_server::clock::{Clock as _, ManualClock};
use wfh_server::config::Config;
use wfh_server::state::AppState;
use wfh_server::Application;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Generates one `#[tokio::test]` per backend for each scenario function.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
    };
}

pub fn geoip_test_db() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/GeoIP2-City-Test.mmdb"
    ))
}

fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            wfh_server::telemetry::init(wfh_server::config::LogFormat::Text);
        }
    });
}

fn postgres_admin_url() -> String {
    std::env::var("WFH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database, dropped (with its connections) when this is dropped.
pub struct TestDatabase {
    name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let admin = postgres_admin_url();
        let name = format!("wfh_test_{}", Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect(
            "PostgreSQL is not reachable: run the test command in the README, or set WFH_TEST_POSTGRES_URL",
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&name);
        Self {
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = postgres_admin_url();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join()
        .ok();
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base_url: String,
    pub client: ApiClient,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub state: AppState,
    pub admin_token: String,
    _dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _db: Option<TestDatabase>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Start the server with a configuration adjusted by `tweak`.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        init_tracing();
        let dir = tempfile::tempdir().unwrap();
        let db = match backend {
            Backend::Postgres => Some(TestDatabase::create().await),
            Backend::Sqlite => None,
        };
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_owned(),
            database_url: db.as_ref().map(|d| SecretString::from(d.url.clone())),
            database_max_connections: 8,
            shutdown_timeout_secs: 5,
            ..Config::default()
        };
        tweak(&mut config);
        // Microseconds, as both engines store them.
        let clock = Arc::new(ManualClock::new(Utc::now().trunc_subsecs(6)));
        let app = Application::build_with_clock(config, clock.clone())
            .await
            .expect("server starts");
        let addr = app.local_addr();
        let state = app.state().clone();
        let scheme = if state.config.tls_enabled() {
            "https"
        } else {
            "http"
        };
        let base_url = format!("{scheme}://{addr}");
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        let admin_token =
            wfh_server::auth::create_admin_token(state.store.as_ref(), "tests", None, clock.now())
                .await
                .unwrap()
                .token;
        let client = if scheme == "https" {
            // TLS tests build their own clients with the test CA.
            ApiClient::new(&format!("http://{addr}"), None).unwrap()
        } else {
            ApiClient::new(&base_url, None).unwrap()
        };
        Self {
            addr,
            base_url,
            client,
            http: reqwest::Client::new(),
            clock,
            state,
            admin_token,
            _dir: dir,
            shutdown: Some(tx),
            server: Some(server),
            _db: db,
        }
    }

    /// Stop the server gracefully and wait for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    /// The server's PostgreSQL database (PostgreSQL tests only).
    pub fn database_url(&self) -> String {
        use secrecy::ExposeSecret as _;
        let url = self
            .state
            .config
            .database_url
            .as_ref()
            .expect("a PostgreSQL test");
        url.expose_secret().to_owned()
    }

    /// A connection of its own to the server's PostgreSQL database, as
    /// another process would have.
    pub async fn database_connection(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.database_url()).await.unwrap()
    }

    pub fn now(&self) -> DateTime<FixedOffset> {
        self.clock.now().fixed_offset()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn admin_get(&self, path: &str) -> (u16, Value) {
        let res = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn admin_post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).bearer_auth(&self.admin_token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn admin_put(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .put(self.url(path))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Add an employee through the admin API; returns (id, enrolment code).
    pub async fn add_employee(&self, username: &str) -> (i64, String) {
        let (status, body) = self
            .admin_post(
                "/api/admin/employees",
                Some(serde_json::json!({"username": username, "display_name": "Test Person"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["employee"]["id"].as_i64().unwrap(),
            body["enrollment"]["code"].as_str().unwrap().to_owned(),
        )
    }

    /// A new employee with one enrolled device.
    pub async fn enrolled(&self, username: &str) -> (DeviceToken, EnrollResponse) {
        let (_, code) = self.add_employee(username).await;
        let res = self
            .client
            .enroll(&code, username, &format!("{username}-laptop"))
            .await
            .unwrap();
        (DeviceToken::new(res.token.clone()), res)
    }

    pub fn heartbeat(&self, username: &str, status: HeartbeatStatus) -> HeartbeatRequest {
        HeartbeatRequest {
            username: username.into(),
            hostname: format!("{username}-laptop"),
            status,
            timestamp: self.now(),
            event_id: Uuid::new_v4(),
        }
    }

    pub fn log_meta(&self, username: &str) -> LogMeta {
        LogMeta {
            username: username.into(),
            hostname: format!("{username}-laptop"),
            local_ips: vec!["192.168.1.20".parse().unwrap(), "fe80::1".parse().unwrap()],
            public_ip: Some("81.2.69.142".parse().unwrap()),
            timestamp: self.now(),
            event_id: Uuid::new_v4(),
        }
    }

    pub async fn count(&self, what: &str) -> usize {
        let (status, body) = self.admin_get(&format!("/api/admin/{what}?limit=1000")).await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().len()
    }

    /// Every file under the screenshot directory (relative paths).
    pub fn screenshot_files(&self) -> Vec<String> {
        let root = self.state.screenshots.root().to_owned();
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(
                        e.path()
                            .strip_prefix(&root)
                            .unwrap()
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
        }
        out.sort();
        out
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A real PNG (RGB, a gradient with a red square) of the given size.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        let mut data = Vec::with_capacity((width * height * 3) as usize);
        for y in 0..height {
            for x in 0..width {
                let red = x < width / 4 && y < height / 4;
                data.extend_from_slice(&if red {
                    [255, 0, 0]
                } else {
                    [(x % 256) as u8, (y % 256) as u8, 128]
                });
            }
        }
        w.write_image_data(&data).unwrap();
    }
    out
}

pub fn ago(app: &TestApp, d: Duration) -> DateTime<FixedOffset> {
    (app.clock.now() - d).fixed_offset()
}
