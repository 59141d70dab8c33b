//! What every handler shares, passed in through a `with_state()` filter.

use std::convert::Infallible;
use std::sync::Arc;

use warp::Filter;

use crate::auth::Authenticator;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Store;
use crate::geoip::GeoIp;
use crate::ingest::{HeartbeatWriter, LogWriter};
use crate::metrics::Metrics;
use crate::screenshots::Screenshots;

/// Cloned for every request by every filter that needs it, so it is one
/// `Arc`: a clone is one atomic increment (cloning eight `Arc`s and a channel
/// sender was a fifth of the server's CPU under load).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

#[derive(Debug)]
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub auth: Arc<Authenticator>,
    pub heartbeats: HeartbeatWriter,
    pub logs: LogWriter,
    pub screenshots: Screenshots,
    pub geoip: Arc<GeoIp>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub throttles: crate::throttle::Throttles,
    /// The monitoring policy in force ([`crate::policy::current`]); its
    /// revision goes to agents with every answer, so that a change reaches
    /// them with their next request.
    pub policy: std::sync::RwLock<Arc<wfh_protocol::PolicyDocument>>,
}

pub fn with_state(state: &AppState) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    let state = state.clone();
    warp::any().map(move || state.clone())
}
