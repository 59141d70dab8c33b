//! The agent's configuration: declared once, typed, with defaults.
//!
//! Layers, later wins: built-in defaults → the system-wide file an installer
//! drops in → the user's file → `WFH_AGENT_*` environment variables →
//! command-line flags. `wfh-agent config` prints the result and where each
//! file is looked for.
//!
//! The keys that are also the company's monitoring policy ([`POLICY_KEYS`]:
//! the heartbeat interval, logs per day, the working days and window) come
//! from the server's policy, or from the system-wide file IT writes, never
//! from the user's file or the environment: an employee's own settings can
//! neither flood the server nor skip the day's logs. Such keys found there
//! are ignored and named in [`AgentConfig::ignored`].

use std::path::{Path, PathBuf};

use chrono::NaiveTime;
use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::scheduler::{ScheduleConfig, WorkingDays};

pub const ENV_PREFIX: &str = "WFH_AGENT_";
const FILE_NAME: &str = "agent.toml";

/// Where the token is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStore {
    /// The OS keyring; on Linux without a reachable Secret Service, a file
    /// readable only by the user (see `docs/agent.md`).
    Auto,
    /// The OS keyring only; fail if it is not available.
    Keyring,
    /// A file readable only by the user, in the data directory.
    File,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Server base URL, `https://...` (`http://` only to this machine).
    /// Used by `enroll` when `--server` is not given. Default: none.
    pub server_url: Option<String>,
    /// An enrolment code an installer carries: the agent enrols itself with it
    /// on first run, then ignores it. Default: none.
    pub enroll_code: Option<String>,
    /// PEM file with extra CA certificates to trust (a company CA). Default: none.
    pub extra_ca_file: Option<PathBuf>,
    /// Seconds between heartbeats. Set here, it takes precedence over the
    /// server's monitoring policy on this device. Default: the policy's (300).
    pub heartbeat_interval_secs: u64,
    /// Detailed logs (with a screenshot) per working day; overrides the
    /// policy when set. Default: the policy's (2).
    pub logs_per_day: u8,
    /// Days on which detailed logs are taken; overrides the policy when set.
    /// Default: the policy's (mon..fri).
    pub working_days: WorkingDays,
    /// Local time the window for detailed logs opens ("HH:MM" or "HH:MM:SS");
    /// overrides the policy when set. Default: the policy's ("08:00").
    #[serde(with = "hh_mm")]
    pub window_start: NaiveTime,
    /// Local time the window closes; overrides the policy when set.
    /// Default: the policy's ("22:00").
    #[serde(with = "hh_mm")]
    pub window_end: NaiveTime,
    /// Seconds without keyboard or mouse input after which status is `idle`. Default: 300.
    pub idle_threshold_secs: u64,
    /// JPEG quality of screenshots, 1-100. Default: 70.
    pub screenshot_quality: u8,
    /// Largest outbox on disk, in MiB; beyond it the oldest heartbeats go first. Default: 256.
    pub outbox_max_mib: u64,
    /// Undelivered items older than this many days are dropped (the server
    /// would delete them anyway). Default: 30.
    pub outbox_max_age_days: u32,
    /// Seconds between fetches of the server's monitoring policy. Default: 3600.
    pub policy_refresh_secs: u64,
    /// Where the device token is kept. Default: "auto".
    pub token_store: TokenStore,
    /// The agent's own state (outbox, plans, sent log). Default: the
    /// platform's data directory (`~/.local/share/wfh-monitor` on Linux).
    pub data_dir: Option<PathBuf>,
    /// Schedule keys set on this device by IT (in the system-wide file):
    /// they take precedence over the server's policy. Not a key itself.
    #[serde(skip)]
    pub pinned: Vec<&'static str>,
    /// Policy keys found in the user's file or the environment and ignored,
    /// as `where: key`, for the log and `wfh-agent config`.
    #[serde(skip)]
    pub ignored: Vec<String>,
}

/// The keys that are also in the server's monitoring policy.
pub const POLICY_KEYS: [&str; 5] = [
    "heartbeat_interval_secs",
    "logs_per_day",
    "working_days",
    "window_start",
    "window_end",
];

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            server_url: None,
            enroll_code: None,
            extra_ca_file: None,
            heartbeat_interval_secs: 300,
            logs_per_day: 2,
            working_days: WorkingDays::MONDAY_TO_FRIDAY,
            window_start: NaiveTime::from_hms_opt(8, 0, 0).expect("valid time"),
            window_end: NaiveTime::from_hms_opt(22, 0, 0).expect("valid time"),
            idle_threshold_secs: 300,
            screenshot_quality: 70,
            outbox_max_mib: 256,
            outbox_max_age_days: 30,
            policy_refresh_secs: 3600,
            token_store: TokenStore::Auto,
            data_dir: None,
            pinned: Vec::new(),
            ignored: Vec::new(),
        }
    }
}

mod hh_mm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    use chrono::Timelike as _;

    /// "08:00", or "08:00:30" when there are seconds.
    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        let fmt = if t.second() == 0 { "%H:%M" } else { "%H:%M:%S" };
        s.serialize_str(&t.format(fmt).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let s = String::deserialize(d)?;
        NaiveTime::parse_from_str(&s, "%H:%M:%S")
            .or_else(|_| NaiveTime::parse_from_str(&s, "%H:%M"))
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a time of day like \"08:00\"")))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("cannot read the configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    #[error("{0} is not valid TOML: {1}")]
    Syntax(PathBuf, #[source] toml_edit::TomlError),
}

/// The files looked at, in the order they are applied.
#[derive(Debug, Clone)]
pub struct ConfigFiles {
    pub system: PathBuf,
    pub user: Option<PathBuf>,
}

impl ConfigFiles {
    pub fn standard() -> Self {
        Self {
            system: system_config_file(),
            user: directories::ProjectDirs::from("", "", "wfh-monitor")
                .map(|d| d.config_dir().join(FILE_NAME)),
        }
    }

    /// Only `file` (for tests and `--config`), plus the environment.
    pub fn only(file: &Path) -> Self {
        Self {
            system: file.to_path_buf(),
            user: None,
        }
    }
}

/// The system-wide file an installer writes.
pub fn system_config_file() -> PathBuf {
    if cfg!(windows) {
        let base =
            std::env::var_os("ProgramData").map_or_else(|| PathBuf::from(r"C:\ProgramData"), PathBuf::from);
        base.join("WFH Monitor").join(FILE_NAME)
    } else if cfg!(target_os = "macos") {
        PathBuf::from("/Library/Application Support/WFH Monitor").join(FILE_NAME)
    } else {
        PathBuf::from("/etc/wfh-monitor").join(FILE_NAME)
    }
}

/// Set (or, with an empty value, remove) string keys in the file at `path`,
/// keeping its other keys and comments; the result must be a valid
/// configuration before it replaces the file (atomically). `None` leaves a
/// key alone. Returns what changed, with the enrolment code hidden.
pub fn write_keys(path: &Path, values: &[(&str, Option<&str>)]) -> Result<Vec<String>, ConfigError> {
    let io = |e| ConfigError::Io(path.to_owned(), e);
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(e)),
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| ConfigError::Syntax(path.to_owned(), e))?;
    let mut changed = Vec::new();
    for (key, value) in values {
        if !AgentConfig::keys().contains(key) {
            return Err(ConfigError::Invalid(format!("unknown key {key}")));
        }
        match value.map(str::trim) {
            None => {}
            Some("") if doc.remove(key).is_some() => changed.push(format!("{key} removed")),
            Some("") => {}
            Some(v) => {
                doc[*key] = toml_edit::value(v);
                changed.push(if *key == "enroll_code" {
                    format!("{key} set")
                } else {
                    format!("{key} = {v}")
                });
            }
        }
    }
    let text = doc.to_string();
    let check: Figment =
        Figment::from(Serialized::defaults(AgentConfig::default())).merge(Toml::string(&text));
    let config: AgentConfig = check.extract().map_err(|e| ConfigError::Load(Box::new(e)))?;
    config.validate()?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    // Every user's agent reads it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644)).map_err(io)?;
    }
    tmp.persist(path).map_err(|e| io(e.error))?;
    if changed.is_empty() {
        changed.push("nothing changed".into());
    }
    Ok(changed)
}

impl AgentConfig {
    /// Defaults, then the files, then `WFH_AGENT_*` from `env`.
    pub fn load(
        files: &ConfigFiles,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut fig = Figment::new().merge(Toml::file(&files.system));
        let pinned = POLICY_KEYS
            .into_iter()
            .filter(|k| fig.find_value(k).is_ok())
            .collect();
        let mut ignored = Vec::new();
        if let Some(user) = &files.user {
            if let Some(text) = user_file_without_policy(user, &mut ignored)? {
                fig = fig.merge(Toml::string(&text));
            }
        }
        // Only known keys; an empty value means "unset". Values read as the
        // environment provider reads them: numbers, booleans, or strings.
        let known = Self::keys();
        for (k, v) in env {
            let Some(key) = k.strip_prefix(ENV_PREFIX).map(str::to_ascii_lowercase) else {
                continue;
            };
            if POLICY_KEYS.contains(&key.as_str()) {
                ignored.push(format!("environment: {k}"));
                continue;
            }
            if known.contains(&key.as_str()) && !v.is_empty() {
                let value: figment::value::Value = v.parse().unwrap_or_else(|_| v.clone().into());
                fig = fig.merge((key, value));
            }
        }
        let fig = Figment::from(Serialized::defaults(AgentConfig::default())).merge(fig);
        let mut config: AgentConfig = fig.extract().map_err(|e| ConfigError::Load(Box::new(e)))?;
        config.pinned = pinned;
        config.ignored = ignored;
        config.validate()?;
        Ok(config)
    }

    /// Every key, as written in a file (the environment adds `WFH_AGENT_`).
    pub fn keys() -> Vec<&'static str> {
        vec![
            "server_url",
            "enroll_code",
            "extra_ca_file",
            "heartbeat_interval_secs",
            "logs_per_day",
            "working_days",
            "window_start",
            "window_end",
            "idle_threshold_secs",
            "screenshot_quality",
            "outbox_max_mib",
            "outbox_max_age_days",
            "policy_refresh_secs",
            "token_store",
            "data_dir",
        ]
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if let Some(url) = &self.server_url {
            crate::client::check_server_url(url)
                .map_err(|e| ConfigError::Invalid(format!("server_url: {e}")))?;
        }
        if !(1..=86_400).contains(&self.heartbeat_interval_secs) {
            return bad("heartbeat_interval_secs must be between 1 and 86400".into());
        }
        if !(1..=24).contains(&self.logs_per_day) {
            return bad("logs_per_day must be between 1 and 24".into());
        }
        if self.window_end <= self.window_start {
            return bad(format!(
                "window_end ({}) must be after window_start ({})",
                self.window_end.format("%H:%M"),
                self.window_start.format("%H:%M")
            ));
        }
        if !(1..=100).contains(&self.screenshot_quality) {
            return bad("screenshot_quality must be between 1 and 100".into());
        }
        if !(1..=86_400).contains(&self.policy_refresh_secs) {
            return bad("policy_refresh_secs must be between 1 and 86400".into());
        }
        if self.outbox_max_mib == 0 || self.outbox_max_age_days == 0 {
            return bad("outbox_max_mib and outbox_max_age_days must be at least 1".into());
        }
        Ok(())
    }

    /// The server's policy with this device's own schedule keys in force.
    pub fn effective_policy(
        &self,
        server: &wfh_protocol::MonitoringPolicy,
    ) -> wfh_protocol::MonitoringPolicy {
        let mut p = server.clone();
        let time = |t: NaiveTime| {
            use chrono::Timelike as _;
            t.format(if t.second() == 0 { "%H:%M" } else { "%H:%M:%S" })
                .to_string()
        };
        for key in &self.pinned {
            match *key {
                "heartbeat_interval_secs" => {
                    p.heartbeat_interval_secs =
                        u32::try_from(self.heartbeat_interval_secs).unwrap_or(u32::MAX);
                }
                "logs_per_day" => p.logs_per_day = self.logs_per_day,
                "working_days" => p.working_days = self.working_days.into(),
                "window_start" => p.window_start = time(self.window_start),
                "window_end" => p.window_end = time(self.window_end),
                _ => {}
            }
        }
        p
    }

    pub fn schedule(&self) -> ScheduleConfig {
        ScheduleConfig {
            per_day: self.logs_per_day,
            days: self.working_days,
            window_start: self.window_start,
            window_end: self.window_end,
            ..ScheduleConfig::default()
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| {
            directories::ProjectDirs::from("", "", "wfh-monitor")
                .map(|d| d.data_dir().to_path_buf())
                .unwrap_or_else(|| PathBuf::from(".wfh-monitor"))
        })
    }

    pub fn heartbeat_interval(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(self.heartbeat_interval_secs).unwrap_or(300))
    }

    /// The file as an installer would write it, every key with its default.
    pub fn example() -> String {
        toml_string(&AgentConfig::default())
    }
}

fn toml_string(config: &AgentConfig) -> String {
    let value = serde_json::to_value(config).expect("config serialises");
    let mut out = String::new();
    if let serde_json::Value::Object(map) = value {
        for key in AgentConfig::keys() {
            match map.get(key) {
                Some(serde_json::Value::Null) | None => out.push_str(&format!("# {key} = \n")),
                Some(v) => out.push_str(&format!("{key} = {v}\n")),
            }
        }
    }
    out
}

/// The user's file as TOML without the policy keys (noted in `ignored`);
/// `None` when there is no such file.
fn user_file_without_policy(path: &Path, ignored: &mut Vec<String>) -> Result<Option<String>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ConfigError::Io(path.to_owned(), e)),
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| ConfigError::Syntax(path.to_owned(), e))?;
    for key in POLICY_KEYS {
        if doc.remove(key).is_some() {
            ignored.push(format!("{}: {key}", path.display()));
        }
    }
    Ok(Some(doc.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_company_policy_cannot_be_changed_from_the_users_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("system.toml");
        let user = dir.path().join("user.toml");
        std::fs::write(&system, "logs_per_day = 3\n").unwrap();
        std::fs::write(
            &user,
            "heartbeat_interval_secs = 1\nlogs_per_day = 0\nworking_days = []\nscreenshot_quality = 50\n",
        )
        .unwrap();
        let files = ConfigFiles {
            system,
            user: Some(user),
        };
        let env = [
            ("WFH_AGENT_HEARTBEAT_INTERVAL_SECS".to_owned(), "1".to_owned()),
            ("WFH_AGENT_WINDOW_START".to_owned(), "23:59".to_owned()),
            ("WFH_AGENT_IDLE_THRESHOLD_SECS".to_owned(), "60".to_owned()),
        ];
        let config = AgentConfig::load(&files, env).unwrap();
        let defaults = AgentConfig::default();
        // IT's file counts; the employee's own settings of the policy do not.
        assert_eq!(config.logs_per_day, 3);
        assert_eq!(config.pinned, ["logs_per_day"]);
        assert_eq!(config.heartbeat_interval_secs, defaults.heartbeat_interval_secs);
        assert_eq!(config.working_days, defaults.working_days);
        assert_eq!(config.window_start, defaults.window_start);
        assert_eq!(config.ignored.len(), 5, "{:?}", config.ignored);
        // Their other settings are theirs.
        assert_eq!(config.screenshot_quality, 50);
        assert_eq!(config.idle_threshold_secs, 60);
    }

    #[test]
    fn configure_sets_keys_keeps_the_rest_and_refuses_a_bad_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/agent.toml");
        let set = |v: &[(&str, Option<&str>)]| write_keys(&path, v);
        let changed = set(&[
            ("server_url", Some("https://wfh.example.com")),
            ("enroll_code", Some("ABCD-EFGH")),
            ("extra_ca_file", Some("")),
        ])
        .unwrap();
        assert_eq!(
            changed,
            ["server_url = https://wfh.example.com", "enroll_code set"]
        );
        // An administrator's comment and key survive the next run.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("# set by IT\nlogs_per_day = 3\n{text}")).unwrap();
        set(&[("enroll_code", Some("")), ("server_url", None)]).unwrap();
        let config = AgentConfig::load(&ConfigFiles::only(&path), []).unwrap();
        assert_eq!(config.server_url.as_deref(), Some("https://wfh.example.com"));
        assert_eq!(config.enroll_code, None);
        assert_eq!(config.logs_per_day, 3);
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("# set by IT\n"));
        // A plain-HTTP server elsewhere is refused and the file is left as it was.
        let before = std::fs::read_to_string(&path).unwrap();
        let err = set(&[("server_url", Some("http://wfh.example.com"))]).unwrap_err();
        assert!(err.to_string().contains("server_url"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }
}
