//! Sends the outbox, oldest first, and decides what a failure means:
//!
//! * the server cannot be reached → wait (exponential backoff with jitter,
//!   shared by every item: the network is down, not one item) and try again;
//! * what can succeed later (5xx, 429, a proxy's error page, a server clock
//!   behind ours, a disabled employee) → this item waits its own backoff, or
//!   the server's `Retry-After` if longer; the others go on;
//! * what the server refuses for good, saying why (a malformed or expired
//!   item) → set aside with the reason, shown to the employee on the Sent
//!   page, never dropped silently;
//! * 401 → the token is no longer valid: delivery stops until the agent has
//!   enrolled again; nothing is dropped.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use rand::rngs::StdRng;
use serde::Serialize;
use tokio::sync::{watch, Notify};

use crate::client::{ApiClient, ClientError, DeviceToken, Disposition};
use crate::clock::Clock;
use crate::outbox::{Backoff, Item, Outbox, OutboxError, Queued};

/// How delivery is going, for the status display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeliveryState {
    /// Nothing tried yet.
    Starting,
    /// The last attempt reached the server.
    Connected,
    /// The server cannot be reached (or answers 5xx); retrying.
    Unreachable { error: String },
    /// The server refused the token: enrol again.
    TokenRejected,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Sent,
    /// Nothing due.
    Idle,
    /// The item waits for its retry; others may go.
    Deferred,
    SetAside,
    /// Stop and wait this long before the next attempt.
    Wait(StdDuration),
    TokenRejected,
}

pub struct Delivery {
    outbox: Outbox,
    client: ApiClient,
    token: DeviceToken,
    clock: Arc<dyn Clock>,
    backoff: Backoff,
    rng: StdRng,
    /// Consecutive attempts that could not reach the server.
    unreachable: u32,
    state: watch::Sender<DeliveryState>,
    wake: Arc<Notify>,
}

impl Delivery {
    pub fn new(
        outbox: Outbox,
        client: ApiClient,
        token: DeviceToken,
        clock: Arc<dyn Clock>,
        backoff: Backoff,
        rng: StdRng,
    ) -> Self {
        Self {
            outbox,
            client,
            token,
            clock,
            backoff,
            rng,
            unreachable: 0,
            state: watch::channel(DeliveryState::Starting).0,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Notify this to try at once (something was just queued).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn state(&self) -> watch::Receiver<DeliveryState> {
        self.state.subscribe()
    }

    /// Try the oldest due item once.
    pub async fn step(&mut self) -> Result<Step, OutboxError> {
        let now = self.clock.now();
        let Some(q) = self.outbox.next_due(now).await? else {
            return Ok(Step::Idle);
        };
        match self.send(&q).await {
            Ok(received_at) => {
                self.outbox.delivered(&q, self.clock.now(), received_at).await?;
                if self.unreachable > 0 {
                    // Back online: what waited out the outage goes now, in order.
                    self.outbox.retry_all_now(self.clock.now()).await?;
                    tracing::info!("server reachable again");
                }
                self.unreachable = 0;
                self.state.send_replace(DeliveryState::Connected);
                Ok(Step::Sent)
            }
            Err(e) => self.failed(&q, e).await,
        }
    }

    async fn failed(&mut self, q: &Queued, e: ClientError) -> Result<Step, OutboxError> {
        let msg = e.to_string();
        match e.disposition() {
            Disposition::Retry if matches!(e, ClientError::Transport(_)) => {
                let wait = self.backoff.delay(self.unreachable, &mut self.rng);
                self.unreachable = self.unreachable.saturating_add(1);
                let next = self.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default();
                self.outbox.retry_later(q, next, &msg).await?;
                tracing::info!(error = %msg, retry_in = ?wait, "server unreachable");
                self.state.send_replace(DeliveryState::Unreachable { error: msg });
                Ok(Step::Wait(wait))
            }
            Disposition::Retry => {
                let wait = self
                    .backoff
                    .delay(q.attempts, &mut self.rng)
                    .max(e.retry_after().unwrap_or_default());
                let next = self.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default();
                self.outbox.retry_later(q, next, &msg).await?;
                tracing::warn!(kind = q.item.kind(), event_id = %q.item.event_id(), error = %msg, retry_in = ?wait,
                    "the server could not take an item; retrying");
                self.state.send_replace(DeliveryState::Unreachable { error: msg });
                Ok(Step::Deferred)
            }
            Disposition::SetAside => {
                tracing::warn!(kind = q.item.kind(), event_id = %q.item.event_id(), error = %msg,
                    "the server refused an item for good; set aside");
                self.outbox.set_aside(q, &msg, self.clock.now()).await?;
                self.state.send_replace(DeliveryState::Connected);
                Ok(Step::SetAside)
            }
            Disposition::Reenroll => {
                tracing::error!("the server no longer accepts this device's token: enrol again");
                self.state.send_replace(DeliveryState::TokenRejected);
                Ok(Step::TokenRejected)
            }
        }
    }

    async fn send(&self, q: &Queued) -> Result<Option<chrono::DateTime<chrono::Utc>>, ClientError> {
        match &q.item {
            Item::Heartbeat(hb) => self
                .client
                .heartbeat(&self.token, hb)
                .await
                .map(|a| Some(a.received_at)),
            Item::Log { meta, image, mime } => self
                .client
                .log(&self.token, meta, image.clone(), mime)
                .await
                .map(|r| Some(r.received_at)),
            Item::Event(ev) => self
                .client
                .event(&self.token, ev)
                .await
                .map(|a| Some(a.received_at)),
            Item::Activity(a) => self
                .client
                .activity(&self.token, a)
                .await
                .map(|a| Some(a.received_at)),
        }
    }

    /// Send until nothing is due or `deadline` passes (used at shutdown).
    pub async fn flush(&mut self, deadline: StdDuration) {
        let _ = tokio::time::timeout(deadline, async {
            while let Ok(Step::Sent | Step::SetAside | Step::Deferred) = self.step().await {}
        })
        .await;
    }

    /// Deliver until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Self {
        let wake = self.wake.clone();
        loop {
            if *stop.borrow() {
                return self;
            }
            // While backing off, new items do not cut the wait short.
            let (pause, wakeable) = match self.step().await {
                Ok(Step::Sent | Step::SetAside | Step::Deferred) => continue,
                Ok(Step::Wait(d)) => (d, false),
                Ok(Step::Idle) => (self.until_next_due().await, true),
                Ok(Step::TokenRejected) => (StdDuration::from_secs(300), true),
                Err(e) => {
                    tracing::error!(error = %e, "the outbox could not be read");
                    (StdDuration::from_secs(30), false)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = wake.notified(), if wakeable => {}
                _ = stop.changed() => {}
            }
        }
    }

    async fn until_next_due(&self) -> StdDuration {
        let next = self.outbox.next_attempt_at().await.ok().flatten();
        let cap = StdDuration::from_secs(60);
        next.map_or(cap, |t| {
            (t - self.clock.now()).to_std().unwrap_or_default().min(cap)
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_is_capped() {
        let b = Backoff::default();
        let mut rng = StdRng::seed_from_u64(1);
        for attempt in 0..12u32 {
            let full = (b.base * 2u32.pow(attempt)).min(b.max);
            for _ in 0..50 {
                let d = b.delay(attempt, &mut rng);
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d:?} not in [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
        // Jitter: not every agent waits the same.
        let spread: std::collections::HashSet<_> = (0..20).map(|_| b.delay(5, &mut rng)).collect();
        assert!(spread.len() > 15);
    }
}
