//! WFH Monitor agent: the engine inside the tray app, which also runs headless.
//!
//! * [`config`] — typed configuration, layered defaults → files → environment.
//! * [`scheduler`] — exactly N detailed logs per working day at random times.
//! * [`outbox`] — the on-disk outbox, day plans and sent log (SQLite).
//! * [`delivery`] — sends the outbox with backoff; retries, sets aside, re-enrols.
//! * [`engine`] — heartbeats, detailed logs, startup and shutdown events.
//! * [`policy`] — the server's monitoring policy and the employee's consent.
//! * [`activity`] — activity buckets (applications, idle time, key counts)
//!   from [`foreground`] samples, where the policy switches them on.
//! * [`capture`], [`notify`], [`idle`], [`system`] — what the OS provides.
//! * [`secrets`] — the device token in the OS keyring.
//! * [`autostart`] — starting at login (Task Scheduler, LaunchAgent, systemd / XDG).
//! * [`client`] — the one HTTP client (rustls), shared with the server's tests.
//! * `tray` — the Tauri tray app and the employee's window (feature `tray`).

pub mod activity;
pub mod autostart;
pub mod browser;
pub mod capture;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod engine;
pub mod foreground;
pub mod idle;
pub mod notify;
pub mod outbox;
pub mod policy;
pub mod scheduler;
pub mod secrets;
pub mod system;
#[cfg(feature = "tray")]
pub mod tray;
