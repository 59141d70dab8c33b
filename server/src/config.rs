//! Typed configuration, loaded once at start-up.
//!
//! Layers, later ones win: built-in defaults → TOML file (`--config` or
//! `WFH_CONFIG`) → `WFH_*` environment variables (`WFH_RETENTION_DAYS=14`).
//! Every key is documented in `server/config.example.toml`; a test keeps that
//! file and [`Config::default`] in step.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};

/// Server configuration. Field docs double as the configuration reference.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// PostgreSQL URL (`postgres://user:pass@host/db`). Empty: an embedded
    /// SQLite file `wfh.db` inside `data_dir`.
    #[serde(serialize_with = "redact", deserialize_with = "empty_is_none")]
    pub database_url: Option<SecretString>,
    /// Most connections the server opens to the database.
    pub database_max_connections: u32,
    /// Directory for the embedded database and, by default, screenshots.
    pub data_dir: PathBuf,
    /// Directory for screenshot files. Empty: `<data_dir>/screenshots`.
    #[serde(deserialize_with = "empty_is_none")]
    pub screenshot_dir: Option<PathBuf>,
    /// Days that heartbeats, logs and screenshots are kept.
    pub retention_days: u32,
    /// When the retention job runs: cron with seconds first (6 fields).
    pub retention_schedule: String,
    /// Heartbeat interval the agents use; an employee is offline after two.
    pub heartbeat_interval_secs: u64,
    /// Largest screenshot accepted, in bytes.
    pub max_screenshot_bytes: u64,
    /// How far ahead of the server's clock a device timestamp may be.
    pub max_clock_skew_secs: u64,
    /// Tasks that store heartbeats, each one commit at a time; while one
    /// commits the others fill their batches.
    pub heartbeat_writers: usize,
    /// Hours an enrolment code stays valid.
    pub enrollment_code_ttl_hours: u64,
    /// GeoLite2/DB-IP City `.mmdb` file. Empty: locations are null.
    #[serde(deserialize_with = "empty_is_none")]
    pub geoip_db: Option<PathBuf>,
    /// PEM certificate chain; with `tls_key`, the server speaks HTTPS itself.
    #[serde(deserialize_with = "empty_is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    #[serde(deserialize_with = "empty_is_none")]
    pub tls_key: Option<PathBuf>,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or CIDR blocks),
    /// as a list or a comma-separated string.
    #[serde(deserialize_with = "ip_nets")]
    pub trusted_proxies: Vec<IpNet>,
    /// Allow plain HTTP on a non-loopback address (only behind a TLS proxy
    /// on a private network).
    pub allow_plain_http: bool,
    /// Seconds to wait for requests in flight when stopping.
    pub shutdown_timeout_secs: u64,
    /// Seconds a client may take to send a request's headers; a slower
    /// connection is closed.
    pub header_read_timeout_secs: u64,
    /// Seconds a request may take from its first byte to the start of the
    /// answer, its body included (a 20 MB screenshot on a slow line needs a
    /// while); a slower one gets 408 and its connection is closed.
    pub request_timeout_secs: u64,
    /// Most client connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// Refuse (429) a device's heartbeats past a burst of 900 when they
    /// come a hundred times faster than the policy's interval. Turn off only
    /// for load tests that send from a few devices.
    pub heartbeat_flood_guard: bool,
    /// Log output: `text` or `json`.
    pub log_format: LogFormat,
    /// The company's time zone (IANA name such as `Europe/Berlin`): where
    /// days, ISO weeks and months of the summaries begin and end.
    pub company_timezone: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: None,
            database_max_connections: 16,
            data_dir: PathBuf::from("wfh-data"),
            screenshot_dir: None,
            retention_days: 30,
            retention_schedule: "0 17 * * * *".into(),
            heartbeat_interval_secs: 300,
            max_screenshot_bytes: wfh_protocol::DEFAULT_MAX_SCREENSHOT_BYTES,
            max_clock_skew_secs: 600,
            heartbeat_writers: 2,
            enrollment_code_ttl_hours: 168,
            geoip_db: None,
            tls_cert: None,
            tls_key: None,
            trusted_proxies: Vec::new(),
            allow_plain_http: false,
            shutdown_timeout_secs: 30,
            header_read_timeout_secs: 30,
            request_timeout_secs: 300,
            max_connections: 10_000,
            heartbeat_flood_guard: true,
            log_format: LogFormat::Text,
            company_timezone: "UTC".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("configuration: {0}")]
    Invalid(String),
}

/// Which database engine a configuration selects.
#[derive(Debug, Clone)]
pub enum DatabaseTarget {
    Postgres(SecretString),
    Sqlite(PathBuf),
}

impl Config {
    /// Load defaults, then `file` (if any), then `WFH_*` variables; validate.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile(path.to_owned()));
            }
            figment = figment.merge(Toml::file(path));
        }
        // Only the variables that name a key: other WFH_* variables (the
        // agent's, the tests') are not this program's business.
        let keys = Self::keys();
        let figment =
            figment.merge(Env::prefixed("WFH_").filter(move |k| keys.iter().any(|key| k == key.as_str())));
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Every configuration key.
    pub fn keys() -> Vec<String> {
        match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Readable errors for settings that cannot work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.retention_days == 0 {
            return invalid("retention_days must be at least 1");
        }
        if !(1..=64).contains(&self.heartbeat_writers) {
            return invalid("heartbeat_writers must be between 1 and 64");
        }
        if self.heartbeat_interval_secs == 0 {
            return invalid("heartbeat_interval_secs must be at least 1");
        }
        if self.header_read_timeout_secs == 0 || self.request_timeout_secs == 0 {
            return invalid("header_read_timeout_secs and request_timeout_secs must be at least 1");
        }
        if self.max_connections == 0 {
            return invalid("max_connections must be at least 1");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return invalid("tls_cert and tls_key must be set together");
        }
        if self.company_timezone.parse::<chrono_tz::Tz>().is_err() {
            return invalid("company_timezone must be an IANA time zone name such as \"Europe/Berlin\"");
        }
        if self.retention_schedule.split_whitespace().count() != 6 {
            return invalid("retention_schedule needs 6 cron fields, seconds first (\"0 17 * * * *\")");
        }
        if !self.tls_enabled() && !self.listen.ip().is_loopback() && !self.allow_plain_http {
            return invalid(
                "plain HTTP on a non-loopback address: set tls_cert and tls_key, listen on \
                 127.0.0.1 behind a TLS proxy, or set allow_plain_http = true",
            );
        }
        Ok(())
    }

    /// The company's time zone (validated at load).
    pub fn timezone(&self) -> chrono_tz::Tz {
        self.company_timezone.parse().unwrap_or(chrono_tz::UTC)
    }

    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some()
    }

    pub fn database(&self) -> DatabaseTarget {
        match &self.database_url {
            Some(url) if !url.expose_secret().trim().is_empty() => DatabaseTarget::Postgres(url.clone()),
            _ => DatabaseTarget::Sqlite(self.data_dir.join("wfh.db")),
        }
    }

    pub fn screenshot_dir(&self) -> PathBuf {
        self.screenshot_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("screenshots"))
    }

    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }
}

fn redact<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        // Serialising is only used to seed figment's defaults, where it is None.
        Some(_) => s.serialize_str("***"),
        None => s.serialize_none(),
    }
}

/// `""` (in the file or the environment) means "not set".
fn empty_is_none<'de, D: Deserializer<'de>, T: From<String>>(d: D) -> Result<Option<T>, D::Error> {
    let v: Option<String> = Option::deserialize(d)?;
    Ok(v.filter(|s| !s.trim().is_empty()).map(T::from))
}

fn ip_nets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Text(String),
    }
    let items = match Raw::deserialize(d)? {
        Raw::List(v) => v,
        Raw::Text(s) => s.split(',').map(str::to_owned).collect(),
    };
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| serde::de::Error::custom(format!("not an address or CIDR block: {s}")))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn example_file_names_every_key_with_its_default() {
        let example = include_str!("../config.example.toml");
        let parsed: Config = toml_from_commented(example);
        let defaults = Config::default();
        assert_eq!(
            serde_json::to_value(&parsed).unwrap(),
            serde_json::to_value(&defaults).unwrap(),
            "uncommented config.example.toml must equal Config::default()"
        );
        let value = serde_json::to_value(&defaults).unwrap();
        for key in value.as_object().unwrap().keys() {
            assert!(
                example.contains(&format!("\n# {key} =")) || example.contains(&format!("\n{key} =")),
                "config.example.toml does not document `{key}`"
            );
        }
    }

    /// The example has every key commented out as `# key = value`; parse
    /// those lines as if they were set.
    fn toml_from_commented(text: &str) -> Config {
        let body: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.contains(" = "))
            .map(|l| format!("{l}\n"))
            .collect();
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(&body))
            .extract()
            .unwrap()
    }

    #[test]
    fn environment_wins_over_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "server.toml",
                "retention_days = 10\nheartbeat_interval_secs = 60\n",
            )?;
            jail.set_env("WFH_RETENTION_DAYS", "14");
            jail.set_env("WFH_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8");
            jail.set_env("WFH_SOMETHING_ELSE", "not ours");
            let c = Config::load(Some(Path::new("server.toml"))).unwrap();
            assert_eq!(c.retention_days, 14);
            assert_eq!(c.heartbeat_interval_secs, 60);
            assert!(c.is_trusted_proxy("10.1.2.3".parse().unwrap()));
            assert!(!c.is_trusted_proxy("192.168.1.1".parse().unwrap()));
            Ok(())
        });
    }

    #[test]
    fn bad_settings_get_readable_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "retention_dayz = 3\n")?;
            let e = Config::load(Some(Path::new("typo.toml")))
                .unwrap_err()
                .to_string();
            assert!(e.contains("retention_dayz"), "{e}");
            jail.set_env("WFH_LISTEN", "0.0.0.0:8080");
            let e = Config::load(None).unwrap_err().to_string();
            assert!(e.contains("plain HTTP"), "{e}");
            jail.set_env("WFH_ALLOW_PLAIN_HTTP", "true");
            jail.set_env("WFH_RETENTION_DAYS", "zero");
            let e = Config::load(None).unwrap_err().to_string();
            assert!(e.to_lowercase().contains("retention_days"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn database_url_never_prints() {
        let c = Config {
            database_url: Some(SecretString::from("postgres://u:hunter2@db/x")),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(matches!(c.database(), DatabaseTarget::Postgres(_)));
        assert!(matches!(Config::default().database(), DatabaseTarget::Sqlite(_)));
    }
}
