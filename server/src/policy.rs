//! The monitoring policy: stored once, served to agents and admins.
//!
//! Until an admin changes it, the policy is the built-in default with the
//! server's `heartbeat_interval_secs`; `retention_days` always comes from the
//! server's configuration (it is what retention really does).

use std::sync::Arc;

use wfh_protocol::{MonitoringPolicy, PolicyDocument};

use crate::config::Config;
use crate::db::{Store, StoreError};
use crate::error::ApiError;
use crate::state::AppState;

/// The policy in force, with its consent: kept in memory (read from the
/// database at start, replaced together with it), so that answering agents
/// and storing their activity costs no query. Its revision is told to agents
/// in every answer ([`wfh_protocol::POLICY_REVISION_HEADER`]).
pub fn current(state: &AppState) -> Arc<PolicyDocument> {
    state.policy.read().expect("policy cache").clone()
}

/// The stored policy, or the built-in default with the server's
/// `heartbeat_interval_secs` until an admin sets one.
pub async fn load(store: &dyn Store, config: &Config) -> Result<PolicyDocument, StoreError> {
    let (revision, mut policy) = match store.policy().await? {
        Some((revision, json)) => (
            revision,
            serde_json::from_str::<MonitoringPolicy>(&json)
                .map_err(|e| StoreError::Corrupt(format!("bad stored policy: {e}")))?,
        ),
        None => (
            0,
            MonitoringPolicy {
                heartbeat_interval_secs: u32::try_from(config.heartbeat_interval_secs).unwrap_or(300),
                ..MonitoringPolicy::default()
            },
        ),
    };
    policy.retention_days = config.retention_days;
    let consent = policy.consent();
    Ok(PolicyDocument {
        revision,
        policy,
        consent,
    })
}

/// Replace the policy after checking it; answers with the new document.
pub async fn replace(state: &AppState, mut policy: MonitoringPolicy) -> Result<PolicyDocument, ApiError> {
    policy.retention_days = state.config.retention_days;
    policy.validate().map_err(|e| ApiError::field("policy", e))?;
    let json = serde_json::to_string(&policy).map_err(ApiError::internal)?;
    let revision = state.store.set_policy(&json, state.clock.now()).await?;
    let consent = policy.consent();
    tracing::info!(revision, consent = %consent.version, "monitoring policy changed");
    let document = PolicyDocument {
        revision,
        policy,
        consent,
    };
    {
        // Two changes at once: the higher revision is the one in force.
        let mut cached = state.policy.write().expect("policy cache");
        if cached.revision < revision {
            *cached = Arc::new(document.clone());
        }
    }
    Ok(document)
}

/// The heartbeat interval presence is judged by (offline after two).
pub fn heartbeat_interval(state: &AppState) -> u64 {
    u64::from(current(state).policy.heartbeat_interval_secs)
}
