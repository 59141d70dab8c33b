//! Prometheus metrics, served as text at `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<RouteLabel, Histogram>,
    pub heartbeats: Family<OutcomeLabel, Counter>,
    pub logs: Family<OutcomeLabel, Counter>,
    pub heartbeat_batch_size: Histogram,
    pub log_batch_size: Histogram,
    pub retention_deleted: Family<KindLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wfh");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let heartbeats = Family::<OutcomeLabel, Counter>::default();
        let logs = Family::<OutcomeLabel, Counter>::default();
        let heartbeat_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        let log_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 7));
        let retention_deleted = Family::<KindLabel, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer",
            request_seconds.clone(),
        );
        registry.register(
            "heartbeats",
            "Heartbeats accepted (stored or duplicate)",
            heartbeats.clone(),
        );
        registry.register(
            "logs",
            "Detailed logs accepted (stored or duplicate)",
            logs.clone(),
        );
        registry.register(
            "heartbeat_batch_size",
            "Heartbeats stored per database commit",
            heartbeat_batch_size.clone(),
        );
        registry.register(
            "log_batch_size",
            "Detailed-log rows stored per database commit",
            log_batch_size.clone(),
        );
        registry.register(
            "retention_deleted",
            "Items removed by retention",
            retention_deleted.clone(),
        );
        Self {
            registry,
            requests,
            request_seconds,
            heartbeats,
            logs,
            heartbeat_batch_size,
            log_batch_size,
            retention_deleted,
        }
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}

/// A low-cardinality route label: ids in the path become `:id`.
pub fn route_label(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if !seg.is_empty()
                && (seg.bytes().all(|b| b.is_ascii_digit()) || seg.parse::<uuid::Uuid>().is_ok())
            {
                ":id"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_paths_are_folded() {
        assert_eq!(
            route_label("/api/admin/employees/42/devices"),
            "/api/admin/employees/:id/devices"
        );
        assert_eq!(
            route_label("/api/admin/logs/6b3a3f0e-3c57-4a55-9b8e-2a43e0a0c001/screenshot"),
            "/api/admin/logs/:id/screenshot"
        );
        assert_eq!(route_label("/api/heartbeat"), "/api/heartbeat");
    }
}
