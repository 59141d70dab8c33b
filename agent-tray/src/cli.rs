//! `wfh-agent` commands: run, enroll, status, pause, resume, consent, sent,
//! config, configure, autostart, unenroll.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use chrono::{DateTime, Duration, Local, Utc};
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use wfh_protocol::{EmployeeRef, ShutdownReason};

use crate::capture::DesktopCapturer;
use crate::client::{ApiClient, DeviceToken};
use crate::clock::SystemClock;
use crate::config::{AgentConfig, ConfigFiles};
use crate::engine::{self, Engine, EngineParts};
use crate::idle::OsIdle;
use crate::notify::DesktopNotifier;
use crate::outbox::Outbox;
use crate::secrets::Secrets;
use crate::system::Identity;

const ENROLMENT: &str = "enrolment";

#[derive(Debug, Parser)]
#[command(
    name = "wfh-agent",
    version,
    about = "WFH Monitor agent: heartbeats and detailed logs for your employer's WFH Monitor server"
)]
pub struct Cli {
    /// Read this configuration file instead of the standard ones (the
    /// environment still applies).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The server URL (overrides the configuration).
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the engine headless, in the foreground (the default where there
    /// is no tray app or no desktop).
    Run,
    /// Trade an enrolment code from your administrator for this device's token.
    Enroll {
        #[arg(long)]
        code: String,
    },
    /// Server, employee, last heartbeat, today's detailed logs, outbox, pause.
    Status {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pause monitoring (heartbeats say "paused"; no screenshots).
    Pause {
        /// For this many minutes (default 15).
        #[arg(long, default_value_t = 15, conflicts_with = "until_tomorrow")]
        minutes: u32,
        /// Until midnight.
        #[arg(long)]
        until_tomorrow: bool,
    },
    /// Resume monitoring.
    Resume,
    /// Show what is collected and who sees it; `--accept` to consent.
    /// Nothing is collected before the employee has accepted this text.
    Consent {
        /// Accept the text shown.
        #[arg(long, conflicts_with = "withdraw")]
        accept: bool,
        /// Withdraw consent: collection stops until it is given again.
        #[arg(long)]
        withdraw: bool,
    },
    /// Everything sent to the server (newest first).
    Sent {
        /// How many days back (at most 30).
        #[arg(long, default_value_t = 1)]
        days: u32,
    },
    /// Print the effective configuration and where it is read from.
    Config,
    /// Write the server, an enrolment code and a CA into the system-wide
    /// configuration (what installers do; needs administrator rights). Other
    /// keys in the file are kept; an empty value removes a key.
    Configure {
        /// The server URL, `https://...`.
        #[arg(long, value_name = "URL")]
        server_url: Option<String>,
        /// An enrolment code: the agent enrols itself with it on first run.
        #[arg(long, value_name = "CODE")]
        enroll_code: Option<String>,
        /// A PEM file with the company CA that signed the server's certificate.
        #[arg(long, value_name = "FILE")]
        extra_ca_file: Option<String>,
        /// Write this file instead of the system-wide one.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Start at login for this user: Task Scheduler (Windows), LaunchAgent
    /// (macOS), XDG autostart for the tray or a systemd user unit (Linux).
    Autostart {
        #[command(subcommand)]
        action: AutostartAction,
    },
    /// The browser extension's connection to this agent (websites, where
    /// the monitoring policy includes them).
    Browser {
        #[command(subcommand)]
        action: BrowserAction,
    },
    /// Forget this device's token.
    Unenroll,
}

#[derive(Debug, Subcommand)]
pub enum BrowserAction {
    /// Register this agent as the extension's native messaging host for this
    /// user's Chromium, Chrome, Edge and Firefox.
    Install {
        /// Only for the Chromium profile started with `--user-data-dir DIR`.
        #[arg(long, value_name = "DIR")]
        user_data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AutostartAction {
    /// Start at login from now on.
    Install {
        /// Start the engine alone (`wfh-agent run`) rather than the tray app
        /// (Linux: a systemd user unit instead of an XDG autostart entry).
        #[arg(long)]
        headless: bool,
        /// For every user of this machine (installers; administrator rights).
        #[arg(long)]
        all_users: bool,
    },
    /// No longer start at login.
    Uninstall {
        /// Every user's entry rather than this user's.
        #[arg(long)]
        all_users: bool,
    },
    /// What starts at login.
    Status {
        /// Every user's entry rather than this user's.
        #[arg(long)]
        all_users: bool,
    },
}

/// What enrolment recorded (the token itself is in the keyring).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Enrolment {
    pub server_url: String,
    pub employee: EmployeeRef,
    pub device_id: i64,
    pub enrolled_at: DateTime<Utc>,
}

/// Everything a command needs, loaded once.
pub struct Context {
    pub config: AgentConfig,
    pub files: ConfigFiles,
    pub outbox: Outbox,
}

impl Context {
    pub async fn load(cli: &Cli) -> anyhow::Result<Self> {
        let files = match &cli.config {
            Some(f) => ConfigFiles::only(f),
            None => ConfigFiles::standard(),
        };
        let mut config = AgentConfig::load(&files, std::env::vars())?;
        for ignored in &config.ignored {
            tracing::warn!(%ignored, "a setting of the company's monitoring policy outside the system-wide file is ignored");
        }
        if let Some(server) = &cli.server {
            config.server_url = Some(server.clone());
            config.validate()?;
        }
        let outbox = Outbox::open(&config.data_dir().join("agent.db")).await?;
        Ok(Self {
            config,
            files,
            outbox,
        })
    }

    pub async fn secrets(&self) -> anyhow::Result<Secrets> {
        let (kind, dir) = (self.config.token_store, self.config.data_dir());
        Ok(tokio::task::spawn_blocking(move || Secrets::open(kind, &dir)).await??)
    }

    pub async fn enrolment(&self) -> anyhow::Result<Option<Enrolment>> {
        Ok(match self.outbox.meta(ENROLMENT).await? {
            Some(json) => Some(serde_json::from_str(&json).context("the stored enrolment is unreadable")?),
            None => None,
        })
    }

    pub fn client(&self, server: &str) -> anyhow::Result<ApiClient> {
        let ca = match &self.config.extra_ca_file {
            Some(path) => Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?),
            None => None,
        };
        Ok(ApiClient::new(server, ca.as_deref())?)
    }

    /// The policy in force: the server's (fetched now when a server is
    /// known and reachable, else as last fetched) with this device's keys.
    pub async fn policy(&self) -> anyhow::Result<crate::policy::Effective> {
        if let Err(e) = self.fetch_policy(None).await {
            tracing::warn!(error = %format!("{e:#}"), "using the policy known so far");
        }
        Ok(crate::policy::effective(&self.config, &self.outbox).await?)
    }

    /// The engine on this desktop, once the device is enrolled (enrolling
    /// first with a code an installer carried); `None` when it is not.
    pub async fn engine(&self) -> anyhow::Result<Option<Engine>> {
        let secrets = self.secrets().await?;
        if !secrets.is_keyring() {
            tracing::warn!(store = %secrets.describe(), "no OS keyring: the token is kept in a private file");
        }
        let mut token = tokio::task::spawn_blocking(move || secrets.load()).await??;
        if token.is_none() {
            if let Some(code) = self.config.enroll_code.clone() {
                tracing::info!("not enrolled yet: enrolling with the code from the configuration");
                self.enroll(&code)
                    .await
                    .context("enrolling with the configured code")?;
                let secrets = self.secrets().await?;
                token = tokio::task::spawn_blocking(move || secrets.load()).await??;
            }
        }
        let (Some(token), Some(enrolment)) = (token, self.enrolment().await?) else {
            return Ok(None);
        };
        let client = self.client(&enrolment.server_url)?;
        let parts = EngineParts {
            clock: Arc::new(SystemClock),
            capturer: Arc::new(DesktopCapturer {
                quality: self.config.screenshot_quality,
            }),
            notifier: Arc::new(DesktopNotifier),
            idle: Arc::new(OsIdle::default()),
            foreground: Arc::new(crate::foreground::OsForeground::default()),
            key_counter: Arc::new(crate::foreground::os_key_counter),
            identity: Identity::current(),
            seed: None,
        };
        tracing::info!(server = %enrolment.server_url, employee = enrolment.employee.id, "monitoring");
        let engine = Engine::new(self.config.clone(), self.outbox.clone(), client, token, parts).await?;
        Ok(Some(engine))
    }

    /// The server this device talks to: the enrolled one, else the
    /// configured one.
    pub async fn known_server(&self) -> anyhow::Result<Option<String>> {
        Ok(self
            .enrolment()
            .await?
            .map(|e| e.server_url)
            .or_else(|| self.config.server_url.clone()))
    }

    /// Fetch the server's policy and keep it: from `server`, or else the
    /// [known](Context::known_server) one; `Ok(false)` when no server is known.
    pub async fn fetch_policy(&self, server: Option<&str>) -> anyhow::Result<bool> {
        let server = match server {
            Some(s) => s.to_owned(),
            None => match self.known_server().await? {
                Some(s) => s,
                None => return Ok(false),
            },
        };
        let client = self.client(&server)?;
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            crate::policy::refresh(&client, &self.outbox),
        )
        .await
        .map_err(|_| anyhow::anyhow!("{server} did not answer"))?
        .with_context(|| format!("asking {server} for its monitoring policy"))?;
        Ok(true)
    }

    /// Enrol with `code` at the configured server; the token goes to the keyring.
    pub async fn enroll(&self, code: &str) -> anyhow::Result<Enrolment> {
        let Some(server) = self.config.server_url.clone() else {
            bail!("no server URL: pass --server https://... or set server_url in the configuration");
        };
        self.enroll_at(&server, code).await
    }

    /// Enrol with `code` at `server`; the token goes to the keyring.
    pub async fn enroll_at(&self, server: &str, code: &str) -> anyhow::Result<Enrolment> {
        crate::client::check_server_url(server)?;
        let server = server.to_owned();
        let client = self.client(&server)?;
        let me = Identity::current();
        let res = client.enroll(code, &me.username, &me.hostname).await?;
        let secrets = self.secrets().await?;
        let token = DeviceToken::new(res.token.clone());
        let where_kept = secrets.describe();
        tokio::task::spawn_blocking(move || secrets.save(&token)).await??;
        let enrolment = Enrolment {
            server_url: server,
            employee: res.employee,
            device_id: res.device_id,
            enrolled_at: Utc::now(),
        };
        self.outbox
            .set_meta(ENROLMENT, Some(&serde_json::to_string(&enrolment)?))
            .await?;
        self.outbox.retry_all_now(Utc::now()).await?;
        tracing::info!(employee = enrolment.employee.id, device = enrolment.device_id, token_store = %where_kept, "enrolled");
        Ok(enrolment)
    }
}

/// The native messaging host for the browser extension: keeps the tabs it
/// reports in this user's agent database until the browser closes the pipe.
pub async fn browser_host() -> anyhow::Result<()> {
    let cli = Cli {
        config: None,
        server: None,
        command: None,
    };
    let ctx = Context::load(&cli).await?;
    let kept = crate::browser::serve(&ctx.outbox, std::io::stdin()).await?;
    tracing::info!(kept, "the browser closed the extension's connection");
    Ok(())
}

pub async fn main(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Some(Command::Autostart { action }) => return autostart(action),
        Some(Command::Browser {
            action: BrowserAction::Install { user_data_dir },
        }) => {
            let exe = std::env::current_exe()?;
            let home = directories::BaseDirs::new()
                .map(|d| d.home_dir().to_path_buf())
                .context("no home directory")?;
            let dirs = crate::browser::host_dirs(&home, user_data_dir.as_deref());
            for file in crate::browser::install(&exe, &dirs)? {
                println!("{}", file.display());
            }
            return Ok(());
        }
        Some(Command::Configure {
            server_url,
            enroll_code,
            extra_ca_file,
            file,
        }) => {
            let path = file.clone().unwrap_or_else(crate::config::system_config_file);
            let values = [
                ("server_url", server_url.as_deref()),
                ("enroll_code", enroll_code.as_deref()),
                ("extra_ca_file", extra_ca_file.as_deref()),
            ];
            let written = crate::config::write_keys(&path, &values)?;
            println!("{}: {}", path.display(), written.join(", "));
            return Ok(());
        }
        _ => {}
    }
    let ctx = Context::load(&cli).await?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(&ctx).await,
        Command::Enroll { code } => {
            let e = ctx.enroll(&code).await?;
            let secrets = ctx.secrets().await?;
            println!(
                "Enrolled with {} as {} (device {}). The token is kept in the {}.",
                e.server_url,
                e.employee.display_name.as_deref().unwrap_or(&e.employee.username),
                e.device_id,
                secrets.describe()
            );
            Ok(())
        }
        Command::Status { json } => status(&ctx, json).await,
        Command::Pause {
            minutes,
            until_tomorrow,
        } => {
            let now = Utc::now();
            let policy = ctx.policy().await?;
            let Some(limit) = policy.pause_limit(now) else {
                bail!("pausing is turned off by {}", policy.policy.organisation);
            };
            let wanted = if until_tomorrow { u32::MAX } else { minutes.max(1) };
            if wanted > limit && !until_tomorrow {
                bail!("pauses are limited to {limit} minutes here");
            }
            let until = now + Duration::minutes(i64::from(wanted.min(limit)));
            engine::pause(&ctx.outbox, until).await?;
            println!(
                "Monitoring paused until {}.",
                until.with_timezone(&Local).format("%Y-%m-%d %H:%M")
            );
            Ok(())
        }
        Command::Resume => {
            engine::resume(&ctx.outbox).await?;
            println!("Monitoring resumed.");
            Ok(())
        }
        Command::Consent { accept, withdraw } => consent(&ctx, accept, withdraw).await,
        Command::Autostart { action } => autostart(&action),
        Command::Configure { .. } | Command::Browser { .. } => {
            unreachable!("handled before loading the configuration")
        }
        Command::Sent { days } => {
            let since = Utc::now() - Duration::days(i64::from(days.min(30)));
            for e in ctx.outbox.sent(since, 10_000).await? {
                let size = e
                    .image_bytes
                    .map(|b| format!(" + screenshot {} KB", b / 1024))
                    .unwrap_or_default();
                let refused = e
                    .refused
                    .as_deref()
                    .map(|why| format!("  NOT ACCEPTED: {why}"))
                    .unwrap_or_default();
                println!(
                    "{}  {:<9} {}{size}{refused}",
                    e.sent_at.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S"),
                    e.kind,
                    e.body
                );
            }
            Ok(())
        }
        Command::Config => {
            println!("# system file: {}", ctx.files.system.display());
            if let Some(user) = &ctx.files.user {
                println!("# user file:   {}", user.display());
            }
            println!("# environment: WFH_AGENT_<KEY>");
            for ignored in &ctx.config.ignored {
                println!("# ignored (the company's policy, not a personal setting): {ignored}");
            }
            println!();
            print!("{}", toml_lines(&ctx.config));
            Ok(())
        }
        Command::Unenroll => {
            let secrets = ctx.secrets().await?;
            tokio::task::spawn_blocking(move || secrets.delete()).await??;
            ctx.outbox.set_meta(ENROLMENT, None).await?;
            println!("This device's token was removed; run `wfh-agent enroll` to enrol again.");
            Ok(())
        }
    }
}

fn autostart(action: &AutostartAction) -> anyhow::Result<()> {
    use crate::autostart::{self as start, Mode, Places};
    let all = match action {
        AutostartAction::Install { all_users, .. }
        | AutostartAction::Uninstall { all_users }
        | AutostartAction::Status { all_users } => *all_users,
    };
    let places = if all {
        Places::all_users()
    } else {
        Places::current()?
    };
    let show = |what: &start::Installed, none: &str| {
        if what.entries.is_empty() {
            println!("{none}");
        }
        for (path, kind) in &what.entries {
            println!("{kind}: {}", path.display());
        }
    };
    match action {
        AutostartAction::Install { headless, .. } => {
            let exe = std::env::current_exe().context("finding this program's path")?;
            let mode = if *headless { Mode::Headless } else { Mode::Tray };
            let done = start::install(&places, &exe, mode)?;
            show(&done, "");
            println!("WFH Monitor now starts at login.");
        }
        AutostartAction::Uninstall { .. } => {
            let done = start::uninstall(&places)?;
            show(&done, "Nothing was set to start at login.");
        }
        AutostartAction::Status { .. } => show(&start::status(&places)?, "Not set to start at login."),
    }
    Ok(())
}

async fn consent(ctx: &Context, accept: bool, withdraw: bool) -> anyhow::Result<()> {
    if withdraw {
        crate::policy::withdraw(&ctx.outbox).await?;
        println!("Consent withdrawn: nothing more is collected until you accept again.");
        return Ok(());
    }
    let policy = ctx.policy().await?;
    let consent = &policy.consent;
    println!("{}\n", consent.title);
    for section in &consent.sections {
        println!("{}", section.heading);
        for item in &section.items {
            println!("  - {item}");
        }
        println!();
    }
    let given = crate::policy::consented(&ctx.outbox, &policy).await?;
    if accept && !given {
        crate::policy::accept(&ctx.outbox, &Identity::current(), &policy, Utc::now()).await?;
        println!(
            "Accepted (text version {}). Monitoring starts now.",
            consent.version
        );
    } else if given {
        println!("You accepted this text (version {}).", consent.version);
    } else {
        println!(
            "Not accepted yet: nothing is collected. Run `wfh-agent consent --accept` to accept (version {}).",
            consent.version
        );
    }
    Ok(())
}

fn toml_lines(config: &AgentConfig) -> String {
    let value = serde_json::to_value(config).unwrap_or_default();
    AgentConfig::keys()
        .into_iter()
        .map(|k| match value.get(k) {
            None | Some(serde_json::Value::Null) => format!("# {k} = (not set)\n"),
            Some(v) => format!("{k} = {v}\n"),
        })
        .collect()
}

async fn run(ctx: &Context) -> anyhow::Result<()> {
    let Some(engine) = ctx.engine().await? else {
        bail!("this device is not enrolled: run `wfh-agent enroll --server https://... --code CODE` first");
    };
    engine.run(shutdown_signal(), None).await?;
    ctx.outbox.close().await;
    Ok(())
}

/// Ctrl-C is a stop by hand; SIGTERM and SIGHUP come with log-off and shutdown.
pub async fn shutdown_signal() -> ShutdownReason {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => ShutdownReason::Stopped,
            _ = term.recv() => ShutdownReason::Session,
            _ = hup.recv() => ShutdownReason::Session,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        ShutdownReason::Stopped
    }
}

/// What `status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub server: Option<String>,
    pub employee: Option<String>,
    pub token_store: String,
    pub token_present: bool,
    pub last_heartbeat: Option<DateTime<Utc>>,
    pub logs_today_sent: usize,
    pub logs_per_day: u8,
    pub working_day: bool,
    pub outbox_waiting: u64,
    pub outbox_set_aside: u64,
    pub outbox_bytes: u64,
    pub paused_until: Option<DateTime<Utc>>,
    /// The employee has not accepted the consent in force: nothing is collected.
    pub consent_needed: bool,
    pub consent_version: String,
    /// Longest pause allowed now, in minutes; `None`: pausing is off.
    pub pause_limit_minutes: Option<u32>,
    pub quit_allowed: bool,
    pub policy_revision: i64,
    pub heartbeat_interval_secs: u32,
}

pub async fn collect_status(ctx: &Context) -> anyhow::Result<Status> {
    let secrets = ctx.secrets().await?;
    let token_store = secrets.describe();
    let token_present = tokio::task::spawn_blocking(move || secrets.load())
        .await??
        .is_some();
    let enrolment = ctx.enrolment().await?;
    let today = Local::now().date_naive();
    let plan = ctx.outbox.plan(today).await?;
    let ids: Vec<_> = plan
        .iter()
        .flat_map(|p| p.slots.iter().map(|s| s.event_id))
        .collect();
    let stats = ctx.outbox.stats().await?;
    let policy = crate::policy::effective(&ctx.config, &ctx.outbox).await?;
    let consent_needed = !crate::policy::consented(&ctx.outbox, &policy).await?;
    let now = Utc::now();
    Ok(Status {
        server: enrolment.as_ref().map(|e| e.server_url.clone()),
        employee: enrolment.map(|e| {
            let name = e.employee.display_name.unwrap_or(e.employee.username);
            format!("{name} (employee {}, device {})", e.employee.id, e.device_id)
        }),
        token_store,
        token_present,
        last_heartbeat: ctx.outbox.last_sent("heartbeat").await?,
        logs_today_sent: ctx.outbox.logs_sent_for(&ids).await?,
        logs_per_day: policy.policy.logs_per_day,
        working_day: policy
            .policy
            .weekdays()
            .contains(&chrono::Datelike::weekday(&today)),
        outbox_waiting: stats.queued,
        outbox_set_aside: stats.set_aside,
        outbox_bytes: stats.bytes,
        paused_until: engine::paused_until(&ctx.outbox, now).await?,
        consent_needed,
        consent_version: policy.consent.version.clone(),
        pause_limit_minutes: policy.pause_limit(now),
        quit_allowed: policy.policy.quit_allowed,
        policy_revision: policy.revision,
        heartbeat_interval_secs: policy.policy.heartbeat_interval_secs,
    })
}

async fn status(ctx: &Context, json: bool) -> anyhow::Result<()> {
    let s = collect_status(ctx).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let local = |t: DateTime<Utc>| t.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S").to_string();
    println!(
        "Server:          {}",
        s.server.as_deref().unwrap_or("not enrolled")
    );
    println!("Employee:        {}", s.employee.as_deref().unwrap_or("-"));
    println!(
        "Token:           {}{}",
        if s.token_present {
            "kept in the "
        } else {
            "none; would be kept in the "
        },
        s.token_store
    );
    println!(
        "Last heartbeat:  {}",
        s.last_heartbeat.map_or("never sent".into(), local)
    );
    if s.working_day {
        println!(
            "Detailed logs:   {} of {} sent today",
            s.logs_today_sent, s.logs_per_day
        );
    } else {
        println!("Detailed logs:   none today (not a working day)");
    }
    println!(
        "Outbox:          {} waiting ({} KB), {} set aside",
        s.outbox_waiting,
        s.outbox_bytes / 1024,
        s.outbox_set_aside
    );
    println!(
        "Monitoring:      {}",
        if s.consent_needed {
            "waiting for your consent: run `wfh-agent consent`".to_owned()
        } else {
            s.paused_until
                .map_or("active".into(), |u| format!("paused until {}", local(u)))
        }
    );
    Ok(())
}
