//! The monitoring policy this device follows, and the employee's consent.
//!
//! The server's policy (`GET /api/policy`) is fetched at start and hourly and
//! kept in the agent's database, so the agent knows it offline. Schedule keys
//! set on the device itself ([`AgentConfig::pinned`]) take precedence. The
//! consent the employee sees is rendered from the *effective* policy — what
//! this device will really do — and nothing is collected until the employee
//! has accepted that exact text ([`Consent::version`]).

use chrono::{DateTime, Duration, Local, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wfh_protocol::{AgentEvent, AgentEventRequest, Consent, MonitoringPolicy, PolicyDocument};

use crate::client::{ApiClient, ClientError};
use crate::config::AgentConfig;
use crate::outbox::{Item, Outbox, OutboxError};
use crate::scheduler::{ScheduleConfig, WorkingDays};
use crate::system::Identity;

const POLICY: &str = "policy";
const CONSENT: &str = "consent";

/// The policy in force on this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effective {
    /// Revision of the server's policy it is based on (0: built-in default,
    /// or never fetched).
    pub revision: i64,
    pub policy: MonitoringPolicy,
    pub consent: Consent,
}

impl Effective {
    pub fn new(config: &AgentConfig, server: Option<&PolicyDocument>) -> Self {
        let (revision, base) = match server {
            Some(doc) => (doc.revision, doc.policy.clone()),
            None => (0, MonitoringPolicy::default()),
        };
        let policy = config.effective_policy(&base);
        let consent = policy.consent();
        Self {
            revision,
            policy,
            consent,
        }
    }

    pub fn schedule(&self) -> ScheduleConfig {
        let defaults = ScheduleConfig::default();
        let (window_start, window_end) = self
            .policy
            .window()
            .unwrap_or((defaults.window_start, defaults.window_end));
        ScheduleConfig {
            per_day: self.policy.logs_per_day,
            days: WorkingDays::from_days(self.policy.weekdays()),
            window_start,
            window_end,
            ..defaults
        }
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::seconds(i64::from(self.policy.heartbeat_interval_secs.max(1)))
    }

    /// The longest pause allowed now, in minutes (`None`: pausing is off).
    pub fn pause_limit(&self, now: DateTime<Utc>) -> Option<u32> {
        let local = now.with_timezone(&Local);
        let midnight = crate::scheduler::local_instant(
            &Local,
            local.date_naive() + Duration::days(1),
            chrono::NaiveTime::MIN,
            true,
        );
        let left = u32::try_from((midnight - now).num_minutes().max(1)).unwrap_or(u32::MAX);
        self.policy.pause_limit(left)
    }
}

/// What the employee accepted, kept on the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub version: String,
    pub accepted_at: DateTime<Utc>,
    pub event_id: Uuid,
    /// The policy that text was rendered from (absent in acceptances kept
    /// before it was recorded).
    #[serde(default)]
    pub policy: Option<MonitoringPolicy>,
}

/// The server's policy as last fetched.
pub async fn cached(outbox: &Outbox) -> Result<Option<PolicyDocument>, OutboxError> {
    Ok(outbox
        .meta(POLICY)
        .await?
        .and_then(|json| serde_json::from_str(&json).ok()))
}

/// The effective policy from the cached server policy.
pub async fn effective(config: &AgentConfig, outbox: &Outbox) -> Result<Effective, OutboxError> {
    Ok(Effective::new(config, cached(outbox).await?.as_ref()))
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot fetch the monitoring policy: {0}")]
    Fetch(#[from] ClientError),
    #[error("the server's monitoring policy is not valid: {0}")]
    Invalid(String),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// Fetch the server's policy and keep it.
pub async fn refresh(client: &ApiClient, outbox: &Outbox) -> Result<PolicyDocument, PolicyError> {
    let doc = client.policy().await?;
    doc.policy.validate().map_err(PolicyError::Invalid)?;
    let json = serde_json::to_string(&doc).expect("policies serialise");
    if outbox.meta(POLICY).await?.as_deref() != Some(json.as_str()) {
        tracing::info!(revision = doc.revision, consent = %doc.consent.version, "monitoring policy updated");
        outbox.set_meta(POLICY, Some(&json)).await?;
    }
    Ok(doc)
}

/// The consent the employee last accepted on this device.
pub async fn accepted(outbox: &Outbox) -> Result<Option<Accepted>, OutboxError> {
    Ok(outbox
        .meta(CONSENT)
        .await?
        .and_then(|json| serde_json::from_str(&json).ok()))
}

/// May the agent collect under `effective`? Yes when the employee accepted
/// exactly its consent, or accepted a policy that collected at least as much
/// ([`MonitoringPolicy::collects_no_more_than`]): a switch turned off takes
/// effect at once, one turned on waits for the employee.
pub async fn consented(outbox: &Outbox, effective: &Effective) -> Result<bool, OutboxError> {
    Ok(accepted(outbox).await?.is_some_and(|a| {
        a.version == effective.consent.version
            || a.policy
                .as_ref()
                .is_some_and(|p| effective.policy.collects_no_more_than(p))
    }))
}

/// Record the employee's acceptance of `consent`: kept here, and reported to
/// the server through the outbox (it reaches the server once enrolled).
pub async fn accept(
    outbox: &Outbox,
    identity: &Identity,
    effective: &Effective,
    now: DateTime<Utc>,
) -> Result<Accepted, OutboxError> {
    let consent = &effective.consent;
    let accepted = Accepted {
        version: consent.version.clone(),
        accepted_at: now,
        event_id: Uuid::new_v4(),
        policy: Some(effective.policy.clone()),
    };
    let event = Item::Event(AgentEventRequest {
        username: identity.username.clone(),
        hostname: identity.hostname.clone(),
        timestamp: now.with_timezone(&Local).fixed_offset(),
        event_id: accepted.event_id,
        event: AgentEvent::ConsentGiven {
            version: consent.version.clone(),
        },
    });
    outbox.enqueue(&event, now).await?;
    outbox
        .set_meta(
            CONSENT,
            Some(&serde_json::to_string(&accepted).expect("serialises")),
        )
        .await?;
    tracing::info!(version = %consent.version, "consent given");
    Ok(accepted)
}

/// Withdraw consent: collection stops until it is given again.
pub async fn withdraw(outbox: &Outbox) -> Result<(), OutboxError> {
    outbox.set_meta(CONSENT, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_keys_win_and_the_consent_says_what_the_device_does() {
        let server = PolicyDocument {
            revision: 3,
            policy: MonitoringPolicy {
                heartbeat_interval_secs: 600,
                ..MonitoringPolicy::default()
            },
            consent: MonitoringPolicy::default().consent(),
        };
        let follow = Effective::new(&AgentConfig::default(), Some(&server));
        assert_eq!(follow.heartbeat_interval(), Duration::minutes(10));
        assert_eq!(follow.consent, server.policy.consent());

        let pinned = AgentConfig {
            heartbeat_interval_secs: 60,
            window_start: chrono::NaiveTime::from_hms_opt(9, 0, 30).unwrap(),
            pinned: vec!["heartbeat_interval_secs", "window_start"],
            ..AgentConfig::default()
        };
        let own = Effective::new(&pinned, Some(&server));
        assert_eq!(own.heartbeat_interval(), Duration::minutes(1));
        assert_eq!(own.schedule().window_start, pinned.window_start);
        assert_ne!(own.consent.version, follow.consent.version);
        let text: String = own.consent.sections[0].items.concat();
        assert!(
            text.contains("every minute") && text.contains("09:00:30"),
            "{text}"
        );
    }
}
