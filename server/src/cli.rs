//! The `wfh-server` command line: `serve` (the default), `migrate`,
//! `employee add|list`, `admin-token create|list|revoke`, `retention run`.
//! Commands that print a secret print it as their last line, for scripts.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::clock::SystemClock;
use crate::config::{Config, ConfigError, DatabaseTarget};
use crate::error::ApiError;
use crate::startup::{build_state, Application, StartupError};
use crate::state::AppState;

#[derive(Debug, Parser)]
#[command(name = "wfh-server", version, about = "WFH Monitor server")]
pub struct Cli {
    /// TOML configuration file (every key: server/config.example.toml).
    #[arg(long, short, env = "WFH_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage employees.
    #[command(subcommand)]
    Employee(EmployeeCommand),
    /// Manage admin tokens.
    #[command(subcommand, name = "admin-token")]
    AdminToken(AdminTokenCommand),
    /// Retention of heartbeats, logs and screenshots.
    #[command(subcommand)]
    Retention(RetentionCommand),
}

#[derive(Debug, Subcommand)]
pub enum EmployeeCommand {
    /// Add an employee; prints an enrolment code as the last line.
    Add {
        username: String,
        /// Full name, as managers should see it.
        #[arg(long)]
        name: Option<String>,
        /// Team, for the team summaries.
        #[arg(long)]
        team: Option<String>,
    },
    /// List employees with their last-seen status.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Create an admin token; prints it as the last line (shown once).
    Create {
        /// What the token is for, e.g. "dashboard" or "alice".
        #[arg(long, default_value = "admin")]
        label: String,
        /// Days until it expires (1 to 3650); without it, it does not expire.
        #[arg(long, value_name = "DAYS")]
        expires: Option<u32>,
    },
    /// List admin tokens, one a line, id first (never the tokens themselves).
    List,
    /// Revoke an admin token by its id: it, and every dashboard session made
    /// with it, is refused from the next request on.
    Revoke { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Run one retention pass now and print what it removed.
    Run,
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] crate::db::StoreError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Cli {
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        Config::load(self.config.as_deref())
    }
}

/// Run a command with a loaded configuration, writing to `out`.
pub async fn run(command: Command, config: Config, out: &mut (dyn Write + Send)) -> Result<(), CliError> {
    match command {
        Command::Serve => serve(config, out).await,
        Command::Migrate => {
            crate::db::connect(&config).await?;
            writeln!(out, "database is up to date")?;
            Ok(())
        }
        Command::Employee(EmployeeCommand::Add { username, name, team }) => {
            let state = state(config).await?;
            let created =
                crate::routes::admin::create_employee(&state, &username, name.as_deref(), team.as_deref())
                    .await?;
            writeln!(
                out,
                "employee {} added (id {})",
                created.employee.username, created.employee.id
            )?;
            writeln!(
                out,
                "enrolment code (single use, expires {}); on the laptop run:",
                created.enrollment.expires_at.format("%Y-%m-%d %H:%M UTC")
            )?;
            writeln!(
                out,
                "  wfh-agent enroll --server <SERVER URL> --code {}",
                created.enrollment.code
            )?;
            writeln!(out, "{}", created.enrollment.code)?;
            Ok(())
        }
        Command::Employee(EmployeeCommand::List) => {
            let state = state(config).await?;
            let now = state.clock.now();
            writeln!(
                out,
                "{:<6} {:<20} {:<8} {:<8} LAST SEEN",
                "ID", "USERNAME", "ACTIVE", "STATUS"
            )?;
            let interval = crate::policy::heartbeat_interval(&state);
            let mut rows = state.store.employees_with_presence().await?;
            rows.sort_by(|a, b| a.who.username.cmp(&b.who.username));
            for row in rows {
                let v = crate::db::employee_view(row, now, interval);
                let status = serde_json::to_value(v.status).unwrap_or_default();
                writeln!(
                    out,
                    "{:<6} {:<20} {:<8} {:<8} {}",
                    v.id,
                    v.username,
                    v.active,
                    status.as_str().unwrap_or("?"),
                    v.last_seen.map_or("never".into(), |t| t.to_rfc3339())
                )?;
            }
            Ok(())
        }
        Command::AdminToken(AdminTokenCommand::Create { label, expires }) => {
            let state = state(config).await?;
            let created =
                crate::auth::create_admin_token(state.store.as_ref(), &label, expires, state.clock.now())
                    .await?;
            let until = created.info.expires_at.map_or("does not expire".to_owned(), |t| {
                format!("expires {}", t.format("%Y-%m-%d %H:%M UTC"))
            });
            writeln!(
                out,
                "admin token {} {:?} created ({until}); it is shown once, keep it safe:",
                created.info.id, created.info.label
            )?;
            writeln!(out, "{}", created.token)?;
            Ok(())
        }
        Command::AdminToken(AdminTokenCommand::List) => {
            let state = state(config).await?;
            let now = state.clock.now();
            let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map_or("-".to_owned(), |t| t.format("%Y-%m-%d %H:%M").to_string())
            };
            writeln!(
                out,
                "{:<6} {:<24} {:<16} {:<16} {:<16} STATE",
                "ID", "LABEL", "CREATED", "LAST USED", "EXPIRES"
            )?;
            for t in state.store.admin_tokens().await? {
                let status = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.expires_at.is_some_and(|e| e <= now) {
                    "expired"
                } else {
                    "active"
                };
                writeln!(
                    out,
                    "{:<6} {:<24} {:<16} {:<16} {:<16} {status}",
                    t.id,
                    t.label,
                    when(Some(t.created_at)),
                    when(t.last_used_at),
                    when(t.expires_at)
                )?;
            }
            Ok(())
        }
        Command::AdminToken(AdminTokenCommand::Revoke { id }) => {
            let state = state(config).await?;
            let t = state.store.revoke_admin_token(id, state.clock.now()).await?;
            writeln!(
                out,
                "admin token {} {:?} revoked; its dashboard sessions have ended",
                t.id, t.label
            )?;
            Ok(())
        }
        Command::Retention(RetentionCommand::Run) => {
            let state = state(config).await?;
            let report = crate::retention::run(&state, crate::retention::SWEEP_GRACE).await?;
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            )?;
            Ok(())
        }
    }
}

async fn state(config: Config) -> Result<AppState, CliError> {
    Ok(build_state(config, Arc::new(SystemClock)).await?.0)
}

async fn serve(config: Config, out: &mut (dyn Write + Send)) -> Result<(), CliError> {
    let database = match config.database() {
        DatabaseTarget::Postgres(_) => "PostgreSQL".to_owned(),
        DatabaseTarget::Sqlite(path) => format!("embedded SQLite at {}", path.display()),
    };
    let app = Application::build(config).await?;
    let scheme = if app.state().config.tls_enabled() {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{}", app.local_addr());
    writeln!(out, "WFH Monitor server listening on {url} ({database})")?;
    writeln!(out, "Dashboard: {url}/ (sign in with an admin token)")?;
    if app.state().store.employees_with_presence().await?.is_empty() {
        let me = std::env::args().next().unwrap_or_else(|| "wfh-server".into());
        writeln!(out, "No employees yet. To enrol a laptop:")?;
        writeln!(
            out,
            "  1. {me} employee add alice --name \"Alice Example\"   # prints an enrolment code"
        )?;
        writeln!(
            out,
            "  2. on the laptop: wfh-agent enroll --server {url} --code <CODE>"
        )?;
        writeln!(out, "Admin API token: {me} admin-token create")?;
    }
    out.flush()?;
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}

/// Ctrl-C, or SIGTERM from systemd.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
