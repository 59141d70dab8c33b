//! Prometheus metrics, served as text at `GET /metrics`.
//!
//! Labels come from fixed sets only (route patterns, a few methods, status
//! codes), never from what a client sends: random paths from the internet
//! must not grow the output or the server's memory.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: &'static str,
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
    pub rate_limited: Family<RouteLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        registry.register(
            "wfh_build",
            "The server's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register_collector(Box::new(ProcessCollector));
        let mut registry_root = registry;
        let registry = registry_root.sub_registry_with_prefix("wfh");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let heartbeats = Family::<OutcomeLabel, Counter>::default();
        let logs = Family::<OutcomeLabel, Counter>::default();
        let heartbeat_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        let log_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 7));
        let retention_deleted = Family::<KindLabel, Counter>::default();
        let rate_limited = Family::<RouteLabel, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused (429) after too many failed sign-ins or enrolments from one address",
            rate_limited.clone(),
        );
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
            registry: registry_root,
            requests,
            request_seconds,
            heartbeats,
            logs,
            heartbeat_batch_size,
            log_batch_size,
            retention_deleted,
            rate_limited,
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

/// The label of every path no route matches.
pub const UNMATCHED: &str = "unmatched";

/// The route patterns requests are labelled with, like `/api/admin/logs/{id}`.
#[derive(Debug, Clone)]
pub struct RouteTable {
    patterns: Vec<(Vec<&'static str>, &'static str)>,
}

impl RouteTable {
    /// `patterns` as written in the API document: `{name}` stands for one
    /// path segment. Leaked once at start-up, so labels are `&'static str`.
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Self {
        let mut seen = std::collections::HashSet::new();
        let patterns = patterns
            .into_iter()
            .filter(|p| seen.insert(p.to_string()))
            .map(|p| {
                let label: &'static str = Box::leak(p.to_owned().into_boxed_str());
                (label.split('/').collect(), label)
            })
            .collect();
        Self { patterns }
    }

    /// The pattern `path` matches, or [`UNMATCHED`]. A literal segment wins
    /// over a `{…}` one (`/logs/export/{file}` before `/logs/{id}/{x}`).
    pub fn label(&self, path: &str) -> &'static str {
        let segments: Vec<&str> = path.split('/').collect();
        let mut best: Option<(usize, &'static str)> = None;
        for (pattern, label) in &self.patterns {
            if pattern.len() != segments.len() {
                continue;
            }
            let mut literal = 0;
            let matches = pattern.iter().zip(&segments).all(|(p, s)| {
                if p.starts_with('{') && p.ends_with('}') {
                    !s.is_empty()
                } else {
                    literal += 1;
                    p == s
                }
            });
            if matches && best.is_none_or(|(n, _)| literal > n) {
                best = Some((literal, label));
            }
        }
        best.map_or(UNMATCHED, |(_, label)| label)
    }
}

/// A method label from a fixed set.
pub fn method_label(method: &warp::http::Method) -> &'static str {
    use warp::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The process's own figures, read from `/proc/self` on each scrape:
/// resident memory, open file descriptors, CPU time, threads.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = process_figures() else {
            return Ok(());
        };
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                p.resident_bytes,
            ),
            ("process_open_fds", "Number of open file descriptors", p.open_fds),
            ("process_threads", "Number of OS threads", p.threads),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let cpu = ConstCounter::new(p.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
struct ProcessFigures {
    resident_bytes: i64,
    open_fds: i64,
    threads: i64,
    cpu_seconds: f64,
}

#[cfg(target_os = "linux")]
fn process_figures() -> Option<ProcessFigures> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let status_field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<i64>().ok())
    };
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may
    // hold spaces: `rest` begins at field 3 of proc(5); utime is 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    // USER_HZ, what /proc counts CPU time in, is 100 on every Linux.
    let cpu_seconds = (ticks(14)? + ticks(15)?) as f64 / 100.0;
    Some(ProcessFigures {
        resident_bytes: status_field("VmRSS:")? * 1024,
        open_fds: std::fs::read_dir("/proc/self/fd").ok()?.count() as i64,
        threads: status_field("Threads:")?,
        cpu_seconds,
    })
}

#[cfg(not(target_os = "linux"))]
fn process_figures() -> Option<ProcessFigures> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_labelled_with_the_route_they_match_and_nothing_else() {
        let table = RouteTable::new([
            "/api/admin/employees/{id}/devices",
            "/api/admin/logs/{id}/{what}",
            "/api/admin/logs/export/{file}",
            "/api/heartbeat",
        ]);
        assert_eq!(
            table.label("/api/admin/employees/42/devices"),
            "/api/admin/employees/{id}/devices"
        );
        assert_eq!(
            table.label("/api/admin/logs/6b3a3f0e-3c57-4a55-9b8e-2a43e0a0c001/screenshot"),
            "/api/admin/logs/{id}/{what}"
        );
        assert_eq!(
            table.label("/api/admin/logs/export/logs.csv"),
            "/api/admin/logs/export/{file}"
        );
        assert_eq!(table.label("/api/heartbeat"), "/api/heartbeat");
        for random in [
            "/api/heartbeat/x",
            "/wp-login.php",
            "/",
            "/api//heartbeat",
            "/api/admin/employees//devices",
        ] {
            assert_eq!(table.label(random), UNMATCHED, "{random}");
        }
    }

    #[test]
    fn the_process_reports_its_own_memory_and_files() {
        let p = process_figures().unwrap();
        assert!(
            p.resident_bytes > 1 << 20 && p.open_fds >= 3 && p.threads >= 1,
            "{p:?}"
        );
        let text = Metrics::default().render();
        for name in [
            "wfh_build_info{version=",
            "process_resident_memory_bytes ",
            "process_open_fds ",
        ] {
            assert!(text.contains(name), "{name} in {text}");
        }
    }
}
