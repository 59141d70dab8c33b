//! The engine: a heartbeat every interval, the day's detailed logs when the
//! scheduler says so, startup and shutdown events, and a delivery task that
//! empties the outbox. It runs the same inside the tray app and headless.
//!
//! Every pass ([`Engine::tick`]) reads the clock afresh, so sleep, hibernation
//! and clock changes are seen at the next pass; the engine never sleeps more
//! than [`MAX_NAP`] at a time (timers do not count time spent suspended).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, FixedOffset, Local, Utc};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{watch, Notify};
use uuid::Uuid;
use wfh_protocol::{
    AgentEvent, AgentEventRequest, HeartbeatRequest, HeartbeatStatus, LogMeta, ShutdownReason,
};

use crate::capture::{CaptureError, Capturer, Screenshot};
use crate::client::{ApiClient, DeviceToken};
use crate::clock::Clock;
use crate::config::AgentConfig;
use crate::delivery::{Delivery, DeliveryState};
use crate::foreground::{ForegroundSource, KeyCounter};
use crate::idle::IdleSource;
use crate::notify::{Notifier, ScreenshotNotice};
use crate::outbox::{Backoff, Bounds, Item, Outbox, OutboxError};
use crate::policy::Effective;
use crate::scheduler::{Action, PlanBook, Scheduler, SlotRef};
use crate::system::Identity;

/// Longest sleep between passes.
pub const MAX_NAP: StdDuration = StdDuration::from_secs(30);
/// How long a clean shutdown waits for the outbox to drain.
pub const SHUTDOWN_FLUSH: StdDuration = StdDuration::from_secs(5);
const PAUSED_UNTIL: &str = "paused_until";
/// How often an agent waiting for consent looks whether it was given.
const CONSENT_POLL_SECS: i64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// When the next heartbeat is due. On time, the cadence is kept exactly
/// (`interval` apart, no drift); after a sleep or a clock jump, one
/// heartbeat goes at once and the cadence restarts from there.
#[derive(Debug, Clone)]
pub struct HeartbeatTimer {
    interval: Duration,
    next: Option<DateTime<Utc>>,
}

impl HeartbeatTimer {
    pub fn new(interval: Duration) -> Self {
        Self { interval, next: None }
    }

    /// Is a heartbeat due at `now`? If so, the next one is scheduled.
    pub fn due(&mut self, now: DateTime<Utc>) -> bool {
        match self.next {
            // The clock went back: do not wait for the old schedule.
            Some(n) if n - now > self.interval => {
                self.next = Some(now + self.interval);
                true
            }
            Some(n) if now < n => false,
            Some(n) => {
                self.next = Some(if now - n < self.interval {
                    n + self.interval
                } else {
                    now + self.interval
                });
                true
            }
            None => {
                self.next = Some(now + self.interval);
                true
            }
        }
    }

    pub fn next(&self) -> Option<DateTime<Utc>> {
        self.next
    }

    /// A new interval takes effect from the next heartbeat.
    pub fn set_interval(&mut self, interval: Duration) {
        if interval != self.interval {
            if let Some(n) = self.next {
                self.next = Some(n - self.interval + interval);
            }
            self.interval = interval;
        }
    }
}

/// What the engine needs from the OS (or from a test).
#[derive(Clone)]
pub struct EngineParts {
    pub clock: Arc<dyn Clock>,
    pub capturer: Arc<dyn Capturer>,
    pub notifier: Arc<dyn Notifier>,
    pub idle: Arc<dyn IdleSource>,
    /// The window in front, for activity insight.
    pub foreground: Arc<dyn ForegroundSource>,
    /// Starts a key counter (only while the policy counts keys).
    pub key_counter: Arc<dyn Fn() -> Option<Box<dyn KeyCounter>> + Send + Sync>,
    pub identity: Identity,
    /// Seed for the scheduler and the backoff jitter; `None` draws one.
    pub seed: Option<u64>,
}

pub struct Engine {
    config: AgentConfig,
    outbox: Outbox,
    client: ApiClient,
    token: DeviceToken,
    scheduler: Scheduler<StdRng>,
    book: PlanBook,
    heartbeat: HeartbeatTimer,
    parts: EngineParts,
    wake_delivery: Arc<Notify>,
    last_bounds_check: Option<DateTime<Utc>>,
    policy: Effective,
    last_policy_fetch: Option<DateTime<Utc>>,
    /// The revision named by the server that the last early fetch was for
    /// (one early fetch per revision, even if it fails).
    refetched_for: Option<i64>,
    consented: bool,
    wake: Arc<Notify>,
    seed: u64,
    /// What activity the sampling task collects now (`None`: nothing).
    activity: watch::Sender<Option<wfh_protocol::ActivityPolicy>>,
}

fn local_time(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.with_timezone(&Local).fixed_offset()
}

/// Monitoring is paused until this time, if it is.
pub async fn paused_until(outbox: &Outbox, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, OutboxError> {
    let until = outbox
        .meta(PAUSED_UNTIL)
        .await?
        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.to_utc());
    Ok(until.filter(|u| *u > now))
}

pub async fn pause(outbox: &Outbox, until: DateTime<Utc>) -> Result<(), OutboxError> {
    outbox.set_meta(PAUSED_UNTIL, Some(&until.to_rfc3339())).await
}

pub async fn resume(outbox: &Outbox) -> Result<(), OutboxError> {
    outbox.set_meta(PAUSED_UNTIL, None).await
}

impl Engine {
    pub async fn new(
        config: AgentConfig,
        outbox: Outbox,
        client: ApiClient,
        token: DeviceToken,
        parts: EngineParts,
    ) -> Result<Self, EngineError> {
        let install_id = outbox.install_id().await?;
        let book = outbox.load_plans().await?;
        let seed = parts.seed.unwrap_or_else(rand::random);
        let policy = crate::policy::effective(&config, &outbox).await?;
        Ok(Self {
            scheduler: Scheduler::new(policy.schedule(), install_id, StdRng::seed_from_u64(seed)),
            heartbeat: HeartbeatTimer::new(policy.heartbeat_interval()),
            policy,
            last_policy_fetch: None,
            refetched_for: None,
            consented: false,
            wake: Arc::new(Notify::new()),
            config,
            outbox,
            client,
            token,
            book,
            parts,
            wake_delivery: Arc::new(Notify::new()),
            last_bounds_check: None,
            seed,
            activity: watch::channel(None).0,
        })
    }

    fn event(&self, event: AgentEvent, event_id: Uuid) -> Item {
        Item::Event(AgentEventRequest {
            username: self.parts.identity.username.clone(),
            hostname: self.parts.identity.hostname.clone(),
            timestamp: local_time(self.parts.clock.now()),
            event_id,
            event,
        })
    }

    fn status(&self, paused: bool) -> HeartbeatStatus {
        if paused {
            return HeartbeatStatus::Paused;
        }
        let threshold = StdDuration::from_secs(self.config.idle_threshold_secs);
        match self.parts.idle.idle_for() {
            Some(idle) if idle >= threshold => HeartbeatStatus::Idle,
            _ => HeartbeatStatus::Online,
        }
    }

    /// Wakes the engine for a pass at once (after a consent, a pause, ...).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// How often the server's policy is fetched again.
    fn policy_every(&self) -> Duration {
        Duration::seconds(i64::try_from(self.config.policy_refresh_secs).unwrap_or(3600))
    }

    /// Fetch the server's policy when it is due, or at once when the server
    /// names a revision other than the one in force, and apply it.
    async fn refresh_policy(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        let every = self.policy_every();
        let named = self.client.policy_revision_seen();
        let changed = named.is_some_and(|r| r != self.policy.revision && Some(r) != self.refetched_for);
        if !changed
            && self
                .last_policy_fetch
                .is_some_and(|t| now - t < every && now >= t)
        {
            return Ok(());
        }
        if changed {
            tracing::info!(revision = named, "the server names another policy: fetching it");
            self.refetched_for = named;
        }
        self.last_policy_fetch = Some(now);
        let fetched = tokio::time::timeout(
            StdDuration::from_secs(10),
            crate::policy::refresh(&self.client, &self.outbox),
        )
        .await;
        match fetched {
            Ok(Ok(_)) => {}
            Ok(Err(crate::policy::PolicyError::Outbox(e))) => return Err(e.into()),
            Ok(Err(e)) => tracing::warn!(error = %e, "keeping the policy known so far"),
            Err(_) => tracing::warn!("the policy request timed out; keeping the policy known so far"),
        }
        let policy = crate::policy::effective(&self.config, &self.outbox).await?;
        if policy != self.policy {
            tracing::info!(revision = policy.revision, consent = %policy.consent.version, "applying the monitoring policy");
            self.heartbeat.set_interval(policy.heartbeat_interval());
            self.scheduler.set_config(policy.schedule());
            self.policy = policy;
        }
        Ok(())
    }

    /// One pass; returns when the next pass is needed.
    pub async fn tick(&mut self) -> Result<DateTime<Utc>, EngineError> {
        let now = self.parts.clock.now();
        self.refresh_policy(now).await?;
        let consented = crate::policy::consented(&self.outbox, &self.policy).await?;
        if consented != self.consented {
            self.consented = consented;
            if consented {
                tracing::info!(version = %self.policy.consent.version, "consent given: monitoring");
            } else {
                tracing::warn!(version = %self.policy.consent.version, "waiting for the employee's consent; nothing is collected");
            }
        }
        if !consented {
            self.set_activity(None);
            // Look again soon: `wfh-agent consent --accept` in another
            // process cannot wake this one.
            return Ok(now + Duration::seconds(CONSENT_POLL_SECS).min(self.policy_every()));
        }
        let paused = paused_until(&self.outbox, now).await?.is_some();
        self.set_activity((!paused).then(|| self.policy.policy.activity.clone()));

        if self.heartbeat.due(now) {
            let hb = HeartbeatRequest {
                username: self.parts.identity.username.clone(),
                hostname: self.parts.identity.hostname.clone(),
                status: self.status(paused),
                timestamp: local_time(now),
                event_id: Uuid::new_v4(),
            };
            self.outbox.enqueue(&Item::Heartbeat(hb), now).await?;
            self.wake_delivery.notify_one();
        }

        let poll = self.scheduler.poll(&mut self.book, now, &Local, paused);
        let mut reports = Vec::new();
        let mut captures = Vec::new();
        for action in poll.actions {
            match action {
                Action::Capture(slot) => captures.push(slot),
                Action::Missed { slot, reason, detail } => reports.push(self.missed(slot, reason, detail)),
            }
        }
        if poll.changed || !reports.is_empty() {
            self.outbox.enqueue_with_plans(&reports, &self.book, now).await?;
            self.wake_delivery.notify_one();
        }
        for slot in captures {
            self.take_log(slot).await?;
        }

        if self
            .last_bounds_check
            .is_none_or(|t| now - t >= Duration::hours(1))
        {
            self.last_bounds_check = Some(now);
            let bounds = Bounds {
                max_bytes: self.config.outbox_max_mib * 1024 * 1024,
                max_age: Duration::days(i64::from(self.config.outbox_max_age_days)),
            };
            self.outbox.enforce(bounds, now).await?;
        }

        let nap = Duration::from_std(MAX_NAP).unwrap_or_else(|_| Duration::seconds(30));
        let mut next = now + nap;
        let policy_due = self.last_policy_fetch.map(|t| t + self.policy_every());
        for t in [self.heartbeat.next(), poll.next_wake, policy_due]
            .into_iter()
            .flatten()
        {
            next = next.min(t);
        }
        Ok(next.max(now))
    }

    /// Tell the sampling task what to collect; a change takes effect at once.
    fn set_activity(&self, wanted: Option<wfh_protocol::ActivityPolicy>) {
        let wanted = wanted.filter(wfh_protocol::ActivityPolicy::any);
        self.activity.send_if_modified(|current| {
            let changed = *current != wanted;
            *current = wanted.clone();
            changed
        });
    }

    fn missed(&self, slot: SlotRef, reason: wfh_protocol::MissedReason, detail: Option<String>) -> Item {
        tracing::info!(day = %slot.day, slot = slot.index, ?reason, "detailed log missed");
        // The report shares the slot's id: a slot is either logged or missed.
        self.event(
            AgentEvent::LogMissed {
                day: slot.day,
                slot: slot.index,
                reason,
                detail,
            },
            slot.event_id,
        )
    }

    async fn take_log(&mut self, slot: SlotRef) -> Result<(), EngineError> {
        let capturer = self.parts.capturer.clone();
        let shot: Result<Screenshot, CaptureError> = tokio::task::spawn_blocking(move || capturer.capture())
            .await
            .unwrap_or_else(|e| Err(CaptureError::Capture(e.to_string())));
        let now = self.parts.clock.now();
        let shot = match shot {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "screenshot failed");
                if let Some(Action::Missed { slot, reason, detail }) =
                    self.scheduler
                        .capture_failed(&mut self.book, slot, now, e.to_string())
                {
                    let report = self.missed(slot, reason, detail);
                    self.outbox.enqueue_with_plans(&[report], &self.book, now).await?;
                } else {
                    self.outbox.save_plans(&self.book).await?;
                }
                return Ok(());
            }
        };
        // The public address as the server sees it; the server also records
        // the address the upload comes from, so offline is no loss.
        let public_ip = tokio::time::timeout(StdDuration::from_secs(5), self.client.whoami(&self.token))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|w| w.ip);
        let meta = LogMeta {
            username: self.parts.identity.username.clone(),
            hostname: self.parts.identity.hostname.clone(),
            local_ips: crate::system::local_ips(),
            public_ip,
            timestamp: local_time(now),
            event_id: slot.event_id,
        };
        let notice = ScreenshotNotice {
            at: now.with_timezone(&Local),
            monitors: shot.monitors,
            width: shot.width,
            height: shot.height,
            server: self.client.server().host_str().unwrap_or("the server").to_owned(),
            taken_today: 0,
            per_day: self.policy.policy.logs_per_day,
        };
        let bytes = shot.bytes.len();
        let item = Item::Log {
            meta,
            image: shot.bytes,
            mime: shot.mime.to_owned(),
        };
        self.scheduler.taken(&mut self.book, slot, now);
        self.outbox.enqueue_with_plans(&[item], &self.book, now).await?;
        self.wake_delivery.notify_one();
        tracing::info!(day = %slot.day, slot = slot.index, bytes, "detailed log taken");

        let notice = ScreenshotNotice {
            taken_today: self.book.plans.get(&slot.day).map_or(1, |p| p.taken()),
            ..notice
        };
        let notifier = self.parts.notifier.clone();
        let shown = tokio::task::spawn_blocking(move || notifier.screenshot_taken(&notice)).await;
        if let Ok(Err(e)) = shown {
            tracing::warn!(error = %e, "the screenshot notification could not be shown");
        }
        Ok(())
    }

    /// Run until `shutdown` resolves, then report the shutdown and drain the
    /// outbox for up to [`SHUTDOWN_FLUSH`].
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ShutdownReason>,
        state: Option<watch::Sender<DeliveryState>>,
    ) -> Result<(), EngineError> {
        let boot_time = crate::system::boot_time().unwrap_or_else(|| self.parts.clock.now());
        // Reported with the first pass the employee has consented to.
        let mut startup = Some(self.event(
            AgentEvent::Startup {
                boot_time,
                agent_version: env!("CARGO_PKG_VERSION").to_owned(),
                os: crate::system::os_description(),
            },
            Uuid::new_v4(),
        ));
        tracing::info!(%boot_time, "agent started");

        let delivery = Delivery::new(
            self.outbox.clone(),
            self.client.clone(),
            self.token.clone(),
            self.parts.clock.clone(),
            Backoff::default(),
            StdRng::seed_from_u64(self.seed ^ 0xde11_7e55),
        );
        self.wake_delivery = delivery.waker();
        if let Some(tx) = state {
            let mut rx = delivery.state();
            tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    let s = rx.borrow().clone();
                    if tx.send(s).is_err() {
                        break;
                    }
                }
            });
        }
        let (stop, stopped) = watch::channel(false);
        let activity = tokio::spawn(crate::activity::run(
            self.activity.subscribe(),
            crate::activity::Sources {
                clock: self.parts.clock.clone(),
                idle: self.parts.idle.clone(),
                foreground: self.parts.foreground.clone(),
                keys: self.parts.key_counter.clone(),
                identity: self.parts.identity.clone(),
            },
            self.outbox.clone(),
            delivery.waker(),
        ));
        let sender = tokio::spawn(delivery.run(stopped));

        tokio::pin!(shutdown);
        let reason = loop {
            let next = self.tick().await?;
            if self.consented {
                if let Some(startup) = startup.take() {
                    self.outbox.enqueue(&startup, self.parts.clock.now()).await?;
                    self.wake_delivery.notify_one();
                }
            }
            crate::system::release_memory();
            let nap = (next - self.parts.clock.now())
                .to_std()
                .unwrap_or_default()
                .min(MAX_NAP);
            tokio::select! {
                reason = &mut shutdown => break reason,
                () = tokio::time::sleep(nap) => {}
                () = self.wake.notified() => {}
            }
        };

        tracing::info!(?reason, "agent stopping");
        // The sampling task hands over the bucket so far and ends.
        drop(std::mem::replace(&mut self.activity, watch::channel(None).0));
        if tokio::time::timeout(StdDuration::from_secs(2), activity)
            .await
            .is_err()
        {
            tracing::warn!("the activity sampler did not stop in time");
        }
        let _ = stop.send(true);
        let mut delivery = match sender.await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "the delivery task failed");
                return Ok(());
            }
        };
        if startup.is_none() {
            let bye = self.event(AgentEvent::Shutdown { reason }, Uuid::new_v4());
            self.outbox.enqueue(&bye, self.parts.clock.now()).await?;
        }
        delivery.flush(SHUTDOWN_FLUSH).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn heartbeats_come_every_five_minutes_exactly() {
        let start = Utc.with_ymd_and_hms(2026, 6, 3, 0, 0, 0).unwrap();
        let interval = AgentConfig::default().heartbeat_interval();
        assert_eq!(interval, Duration::minutes(5));
        let mut timer = HeartbeatTimer::new(interval);
        // The engine wakes at the due time, up to a few seconds late, and
        // also at other times (every 30 s at most, and for logs).
        let mut beats = Vec::new();
        let mut t = start;
        let mut late = 0i64;
        while t < start + Duration::days(1) {
            if timer.due(t) {
                beats.push(t);
            }
            late = (late + 7) % 5;
            t = (t + Duration::seconds(30)).min(timer.next().unwrap() + Duration::seconds(late));
        }
        assert_eq!(beats.len(), 288, "24 h / 5 min");
        // Due times keep an exact 300 s cadence: lateness does not accumulate.
        let dues: Vec<_> = beats.iter().map(|b| (*b - start).num_seconds() / 300).collect();
        assert_eq!(dues, (0..288).collect::<Vec<_>>());
        for pair in beats.windows(2) {
            let gap = (pair[1] - pair[0]).num_seconds();
            assert!((296..=304).contains(&gap), "{gap}");
        }
    }

    #[test]
    fn after_a_sleep_one_heartbeat_goes_at_once_not_a_burst() {
        let start = Utc.with_ymd_and_hms(2026, 6, 3, 9, 0, 0).unwrap();
        let mut timer = HeartbeatTimer::new(Duration::minutes(5));
        assert!(timer.due(start));
        let wake = start + Duration::hours(2);
        assert!(timer.due(wake));
        assert!(!timer.due(wake + Duration::seconds(1)));
        assert_eq!(timer.next(), Some(wake + Duration::minutes(5)));
    }

    #[test]
    fn a_clock_set_back_does_not_stop_heartbeats() {
        let start = Utc.with_ymd_and_hms(2026, 6, 3, 9, 0, 0).unwrap();
        let mut timer = HeartbeatTimer::new(Duration::minutes(5));
        assert!(timer.due(start));
        let back = start - Duration::hours(1);
        assert!(timer.due(back));
        assert_eq!(timer.next(), Some(back + Duration::minutes(5)));
    }
}
