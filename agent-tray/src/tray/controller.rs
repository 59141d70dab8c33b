//! What the tray app does, without the UI: it owns the agent's state, runs
//! the engine while the device is enrolled, and answers the window's and the
//! menu's requests. Every answer is computed from the agent's database, so
//! the tray, the window and `wfh-agent status` always agree.

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Duration, Local, Utc};
use serde::Serialize;
use tokio::sync::{oneshot, watch, Mutex};
use uuid::Uuid;
use wfh_protocol::{Consent, MonitoringPolicy, ShutdownReason};

use crate::cli::{collect_status, Context, Status};
use crate::delivery::DeliveryState;
use crate::engine;
use crate::outbox::SentEntry;
use crate::system::Identity;

/// The state the tray icon shows, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrayState {
    /// Not enrolled with a server yet.
    NotEnrolled,
    /// The consent in force has not been accepted: nothing is collected.
    ConsentNeeded,
    /// The server refused this device's token, or the engine failed.
    Error,
    /// Paused for personal time.
    Paused,
    /// The server cannot be reached; events wait in the outbox.
    Offline,
    /// Heartbeats and detailed logs as planned.
    Monitoring,
}

impl TrayState {
    pub fn label(self) -> &'static str {
        match self {
            Self::NotEnrolled => "Not set up",
            Self::ConsentNeeded => "Waiting for your consent",
            Self::Error => "Needs attention",
            Self::Paused => "Paused",
            Self::Offline => "Offline",
            Self::Monitoring => "Monitoring",
        }
    }
}

/// Everything the window and the tray show.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub state: TrayState,
    /// One line for the tray's tooltip and status item.
    pub summary: String,
    pub status: Status,
    pub delivery: DeliveryState,
    pub engine_error: Option<String>,
    /// The server URL from the configuration (an installer may carry it).
    pub configured_server: Option<String>,
    /// An installer carried an enrolment code.
    pub configured_code: bool,
}

/// The policy and consent, for the consent screen.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentView {
    pub consent: Consent,
    pub policy: MonitoringPolicy,
    pub accepted: bool,
    pub accepted_at: Option<DateTime<Utc>>,
    /// Where the text came from (a server URL), or `None` for this app's
    /// built-in default (no server known yet).
    pub server: Option<String>,
}

/// A sent item for the transparency log.
#[derive(Debug, Clone, Serialize)]
pub struct SentView {
    #[serde(flatten)]
    pub entry: SentEntry,
    pub has_thumbnail: bool,
}

struct Running {
    stop: oneshot::Sender<ShutdownReason>,
    done: tokio::task::JoinHandle<()>,
    wake: Arc<tokio::sync::Notify>,
}

pub struct Controller {
    ctx: Context,
    running: Mutex<Option<Running>>,
    delivery: watch::Sender<DeliveryState>,
    /// Kept so that the engine's updates are taken (a watch channel with no
    /// receiver refuses new values).
    _delivery_seen: watch::Receiver<DeliveryState>,
    engine_error: std::sync::Mutex<Option<String>>,
    /// Sends whenever something the tray shows may have changed.
    changed: watch::Sender<u64>,
}

impl Controller {
    pub fn new(ctx: Context) -> Arc<Self> {
        let (delivery, delivery_seen) = watch::channel(DeliveryState::Starting);
        Arc::new(Self {
            ctx,
            running: Mutex::new(None),
            delivery,
            _delivery_seen: delivery_seen,
            engine_error: std::sync::Mutex::new(None),
            changed: watch::channel(0).0,
        })
    }

    /// Changes to watch (the tray refreshes on each).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn touch(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    pub async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let status = collect_status(&self.ctx).await?;
        let delivery = self.delivery.borrow().clone();
        let engine_error = self.engine_error.lock().expect("not poisoned").clone();
        let state = if status.server.is_none() || !status.token_present {
            TrayState::NotEnrolled
        } else if status.consent_needed {
            TrayState::ConsentNeeded
        } else if engine_error.is_some() || delivery == DeliveryState::TokenRejected {
            TrayState::Error
        } else if status.paused_until.is_some() {
            TrayState::Paused
        } else if matches!(delivery, DeliveryState::Unreachable { .. }) {
            TrayState::Offline
        } else {
            TrayState::Monitoring
        };
        let local = |t: DateTime<Utc>| t.with_timezone(&Local).format("%H:%M").to_string();
        let summary = match state {
            TrayState::NotEnrolled => "Not set up yet: open WFH Monitor to connect".to_owned(),
            TrayState::ConsentNeeded => "Nothing is collected until you accept".to_owned(),
            TrayState::Error if delivery == DeliveryState::TokenRejected => {
                "The server no longer accepts this device: enrol again".to_owned()
            }
            TrayState::Error => format!("Stopped: {}", engine_error.clone().unwrap_or_default()),
            TrayState::Paused => format!(
                "Paused until {}",
                status.paused_until.map(local).unwrap_or_default()
            ),
            TrayState::Offline => format!("Offline: {} waiting to be sent", status.outbox_waiting),
            TrayState::Monitoring => match status.last_heartbeat {
                Some(t) => format!("Monitoring; last heartbeat {}", local(t)),
                None => "Monitoring".to_owned(),
            },
        };
        Ok(Snapshot {
            state,
            summary,
            status,
            delivery,
            engine_error,
            configured_server: self.ctx.config.server_url.clone(),
            configured_code: self.ctx.config.enroll_code.is_some(),
        })
    }

    /// Start the engine when the device is enrolled (and it is not running).
    pub async fn start(self: &Arc<Self>) -> anyhow::Result<bool> {
        let mut running = self.running.lock().await;
        if running.as_ref().is_some_and(|r| !r.done.is_finished()) {
            return Ok(true);
        }
        let Some(engine) = self.ctx.engine().await? else {
            return Ok(false);
        };
        let wake = engine.waker();
        let (stop, stopped) = oneshot::channel::<ShutdownReason>();
        let state = self.delivery.clone();
        let me = self.clone();
        *self.engine_error.lock().expect("not poisoned") = None;
        let done = tokio::spawn(async move {
            let shutdown = async move { stopped.await.unwrap_or(ShutdownReason::Stopped) };
            if let Err(e) = engine.run(shutdown, Some(state)).await {
                tracing::error!(error = %e, "the engine stopped");
                *me.engine_error.lock().expect("not poisoned") = Some(e.to_string());
            }
            me.touch();
        });
        *running = Some(Running { stop, done, wake });
        tracing::info!("monitoring engine started");
        drop(running);
        self.touch();
        Ok(true)
    }

    /// Stop the engine (it reports the shutdown and drains the outbox briefly).
    pub async fn stop(&self, reason: ShutdownReason) {
        if let Some(r) = self.running.lock().await.take() {
            let _ = r.stop.send(reason);
            let _ = r.done.await;
        }
        self.touch();
    }

    async fn wake(&self) {
        if let Some(r) = self.running.lock().await.as_ref() {
            r.wake.notify_one();
        }
        self.touch();
    }

    /// The consent in force: fetched from `server` (or the known server).
    pub async fn consent(&self, server: Option<&str>) -> anyhow::Result<ConsentView> {
        // A server the employee typed must answer; the known one may be
        // offline (the text last fetched is shown).
        match server {
            Some(url) => {
                self.ctx.fetch_policy(Some(url)).await?;
            }
            None => {
                if let Err(e) = self.ctx.fetch_policy(None).await {
                    tracing::warn!(error = %format!("{e:#}"), "showing the policy known so far");
                }
            }
        }
        let server = match server {
            Some(url) => Some(url.to_owned()),
            None => self.ctx.known_server().await?,
        };
        let effective = crate::policy::effective(&self.ctx.config, &self.ctx.outbox).await?;
        let accepted = crate::policy::accepted(&self.ctx.outbox).await?;
        let given = accepted
            .as_ref()
            .filter(|a| a.version == effective.consent.version);
        Ok(ConsentView {
            accepted: given.is_some(),
            accepted_at: given.map(|a| a.accepted_at),
            consent: effective.consent,
            policy: effective.policy,
            server,
        })
    }

    /// Accept the consent of `version` (the text the employee saw).
    pub async fn accept(&self, version: &str) -> anyhow::Result<()> {
        let effective = crate::policy::effective(&self.ctx.config, &self.ctx.outbox).await?;
        anyhow::ensure!(
            effective.consent.version == version,
            "the text has changed since it was shown; read it again"
        );
        crate::policy::accept(&self.ctx.outbox, &Identity::current(), &effective, Utc::now()).await?;
        self.wake().await;
        Ok(())
    }

    /// Enrol at `server` with `code`, then start monitoring.
    pub async fn enroll(self: &Arc<Self>, server: &str, code: &str) -> anyhow::Result<()> {
        self.stop(ShutdownReason::Stopped).await;
        self.ctx.enroll_at(server, code.trim()).await?;
        self.start().await?;
        Ok(())
    }

    /// Pause for `minutes`, or until midnight; capped by the policy.
    pub async fn pause(&self, minutes: Option<u32>) -> anyhow::Result<DateTime<Utc>> {
        let now = Utc::now();
        let effective = crate::policy::effective(&self.ctx.config, &self.ctx.outbox).await?;
        let Some(limit) = effective.pause_limit(now) else {
            anyhow::bail!("pausing is turned off by {}", effective.policy.organisation);
        };
        let minutes = minutes.unwrap_or(limit).min(limit).max(1);
        let until = now + Duration::minutes(i64::from(minutes));
        engine::pause(&self.ctx.outbox, until).await?;
        self.wake().await;
        Ok(until)
    }

    pub async fn resume(&self) -> anyhow::Result<()> {
        engine::resume(&self.ctx.outbox).await?;
        self.wake().await;
        Ok(())
    }

    /// Everything sent in the last `days` days (at most 30), newest first.
    pub async fn sent(&self, days: u32) -> anyhow::Result<Vec<SentView>> {
        let since = Utc::now() - Duration::days(i64::from(days.clamp(1, 30)));
        let entries = self.ctx.outbox.sent(since, 20_000).await?;
        Ok(entries
            .into_iter()
            .map(|entry| SentView {
                has_thumbnail: entry.kind == "log" && entry.refused.is_none(),
                entry,
            })
            .collect())
    }

    /// A sent screenshot's thumbnail as a `data:` URL.
    pub async fn thumbnail(&self, event_id: Uuid) -> anyhow::Result<Option<String>> {
        Ok(self.ctx.outbox.thumbnail(event_id).await?.map(|jpeg| {
            format!(
                "data:image/jpeg;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(jpeg)
            )
        }))
    }
}
