//! The HTTP surface: one module per area, one `recover` at the edge.

pub mod admin;
pub mod admin_tokens;
pub mod dashboard;
pub mod health;
pub mod ingest;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use warp::http::{HeaderValue, StatusCode};
use warp::{Filter, Rejection};

use crate::auth::{self, Device};
use crate::error::{self, ApiError};
use crate::metrics::{method_label, RequestLabels, RouteLabel, RouteTable};
use crate::state::{with_state, AppState};

/// The peer address of a connection, set by the server loop on every request.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Every route, with JSON errors, request logging and metrics.
pub fn routes(state: &AppState) -> impl Filter<Extract = (impl warp::Reply,), Error = Infallible> + Clone {
    let metrics = state.metrics.clone();
    let doc = crate::openapi::document();
    let table = route_table(&doc);
    let allow = Arc::new(allowed_methods(&doc, &table));
    let allow_table = table.clone();
    let observe = warp::log::custom(move |info| {
        let route = table.label(info.path());
        let status = info.status().as_u16();
        metrics
            .requests
            .get_or_create(&RequestLabels {
                route,
                method: method_label(info.method()),
                status,
            })
            .inc();
        metrics
            .request_seconds
            .get_or_create(&RouteLabel { route })
            .observe(info.elapsed().as_secs_f64());
        if info.status().is_server_error() {
            tracing::warn!(method = %info.method(), path = info.path(), status, "request failed");
        } else {
            tracing::debug!(method = %info.method(), path = info.path(), status, elapsed_ms = info.elapsed().as_millis() as u64, "request");
        }
    });
    let answer = health::routes(state)
        .or(ingest::routes(state))
        .unify()
        .or(admin::routes(state))
        .unify()
        .or(dashboard::routes(state))
        .unify()
        .recover(error::recover)
        .unify();
    let hsts = state.config.tls_enabled();
    warp::path::full()
        .and(warp::method())
        .and(answer)
        .map(
            move |path: warp::path::FullPath, method: warp::http::Method, mut res: warp::reply::Response| {
                if res.status() == StatusCode::METHOD_NOT_ALLOWED {
                    match allow.get(allow_table.label(path.as_str())) {
                        // The route takes this method, so what failed is a
                        // segment that is not an id (`/employees/99999999999999999999`):
                        // nothing by that name.
                        Some(v)
                            if v.to_str()
                                .is_ok_and(|v| v.split(", ").any(|m| m == method.as_str())) =>
                        {
                            res = error::json_error(StatusCode::NOT_FOUND, "not_found", "no such item");
                        }
                        // A method a path does not take (TRACE, say) is told which it does.
                        Some(v) => {
                            res.headers_mut().insert("allow", v.clone());
                        }
                        None => {}
                    }
                }
                let headers = res.headers_mut();
                // Monitoring data is for whoever asked, not for caches on the
                // way or the browser's disk; images set their own rules.
                if path.as_str().starts_with("/api/") && !headers.contains_key("cache-control") {
                    headers.insert("cache-control", HeaderValue::from_static("no-store"));
                }
                if hsts {
                    headers.insert(
                        "strict-transport-security",
                        HeaderValue::from_static("max-age=31536000"),
                    );
                }
                res
            },
        )
        .with(observe)
        .with(warp::reply::with::header("x-content-type-options", "nosniff"))
}

/// Paths outside the API document, all answering GET only.
const OTHER_PATHS: [&str; 12] = [
    "/healthz",
    "/metrics",
    "/api/openapi.json",
    "/",
    "/login",
    "/logs",
    "/admin",
    "/summary",
    "/employees/{id}/{day}",
    "/assets/app.js",
    "/assets/app.css",
    "/assets/icon.svg",
];

/// Every path the server answers, as a pattern: the API document's paths,
/// operations, and the dashboard's pages and assets. Metrics are labelled
/// with these and nothing else.
pub fn route_table(doc: &utoipa::openapi::OpenApi) -> RouteTable {
    let api: Vec<&str> = doc.paths.paths.keys().map(String::as_str).collect();
    RouteTable::new(api.into_iter().chain(OTHER_PATHS))
}

/// The `Allow` header of each route pattern: its methods, from the API
/// document; GET for the rest.
fn allowed_methods(doc: &utoipa::openapi::OpenApi, table: &RouteTable) -> HashMap<&'static str, HeaderValue> {
    let mut allow = HashMap::new();
    for (path, item) in &doc.paths.paths {
        let methods: Vec<&str> = [
            ("GET", item.get.is_some()),
            ("PUT", item.put.is_some()),
            ("POST", item.post.is_some()),
            ("DELETE", item.delete.is_some()),
        ]
        .into_iter()
        .filter_map(|(m, has)| has.then_some(m))
        .collect();
        if let Ok(v) = HeaderValue::from_str(&methods.join(", ")) {
            allow.insert(table.label(path), v);
        }
    }
    for path in OTHER_PATHS {
        allow.insert(table.label(path), HeaderValue::from_static("GET"));
    }
    allow
}

/// The device behind the bearer token.
pub fn device(state: &AppState) -> impl Filter<Extract = (Device,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and(with_state(state))
        .and_then(|header: Option<String>, state: AppState| async move {
            let token = auth::bearer(header.as_deref())?;
            state.auth.device(token).await.map_err(Rejection::from)
        })
}

/// Passes only with a valid admin token, or a dashboard session cookie; a
/// change (any method but GET and HEAD) made with a cookie must also carry
/// the session's CSRF token in `X-CSRF-Token`.
pub fn admin(state: &AppState) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and(warp::cookie::optional::<String>(dashboard::SESSION_COOKIE))
        .and(warp::method())
        .and(warp::header::optional::<String>("x-csrf-token"))
        .and(with_state(state))
        .and_then(
            |header: Option<String>,
             cookie: Option<String>,
             method: warp::http::Method,
             csrf: Option<String>,
             state: AppState| async move {
                match (header, cookie) {
                    (None, Some(session)) => {
                        let expected = dashboard::session_csrf(&state, &session).await?;
                        let safe = method == warp::http::Method::GET || method == warp::http::Method::HEAD;
                        if !safe && !dashboard::same_secret(csrf.as_deref(), &expected) {
                            return Err(reject(ApiError::CsrfFailed));
                        }
                        Ok(())
                    }
                    (header, _) => {
                        let token = auth::bearer(header.as_deref())?;
                        state.auth.admin(token).await.map_err(Rejection::from)
                    }
                }
            },
        )
        .untuple_one()
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the
/// right-most address in `X-Forwarded-For` that is not a trusted proxy.
pub fn client_ip(state: &AppState) -> impl Filter<Extract = (IpAddr,), Error = Rejection> + Clone {
    warp::ext::optional::<PeerAddr>()
        .and(warp::header::optional::<String>("x-forwarded-for"))
        .and(with_state(state))
        .map(|peer: Option<PeerAddr>, xff: Option<String>, state: AppState| {
            let peer = peer.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |p| p.0.ip());
            resolve_client_ip(peer, xff.as_deref(), |ip| state.config.is_trusted_proxy(ip))
        })
}

pub fn resolve_client_ip(peer: IpAddr, xff: Option<&str>, trusted: impl Fn(IpAddr) -> bool) -> IpAddr {
    let peer = canonical(peer);
    if !trusted(peer) {
        return peer;
    }
    let Some(xff) = xff else { return peer };
    let hops: Vec<IpAddr> = xff
        .split(',')
        .filter_map(|h| h.trim().parse::<IpAddr>().ok())
        .map(canonical)
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !trusted(**ip))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

/// `::ffff:1.2.3.4` → `1.2.3.4`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Refuse (429) an address that has used up its failures on `route`, and
/// count the refusal.
pub(crate) fn refuse_if_throttled(
    state: &AppState,
    throttle: &crate::throttle::FailureThrottle,
    ip: IpAddr,
    route: &'static str,
) -> Result<(), Rejection> {
    throttle.check(ip).map_err(|retry_after_secs| {
        state
            .metrics
            .rate_limited
            .get_or_create(&RouteLabel { route })
            .inc();
        tracing::warn!(%ip, route, "too many failed attempts from this address: refused");
        reject(ApiError::RateLimited { retry_after_secs })
    })
}

/// A JSON body of at most `limit` bytes, as `warp::body::json` reads it, but
/// a whole number written as a float (`735.0`, an integer to JSON Schema)
/// is taken where an integer is expected. Only a body that fails to read as
/// it is pays for the second look.
pub fn json_body<T: serde::de::DeserializeOwned + Send>(
    limit: u64,
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::body::content_length_limit(limit)
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::bytes())
        .and_then(|content_type: Option<String>, body: bytes::Bytes| async move {
            if content_type.is_some_and(|ct| {
                let ct = ct.to_ascii_lowercase();
                !(ct.starts_with("application/json") || ct.contains("+json"))
            }) {
                return Err(reject(ApiError::UnsupportedMediaType(
                    "wrong Content-Type for this endpoint: application/json expected".into(),
                )));
            }
            serde_json::from_slice::<T>(&body).or_else(|first| {
                let mut value: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|_| invalid_json(&first))?;
                if !whole_floats_to_integers(&mut value) {
                    return Err(invalid_json(&first));
                }
                serde_json::from_value(value).map_err(|e| invalid_json(&e))
            })
        })
}

fn invalid_json(e: &serde_json::Error) -> Rejection {
    reject(ApiError::InvalidBody(format!("the JSON body is not valid: {e}")))
}

/// Write `1.0` as `1` everywhere in `value`; whether anything changed.
fn whole_floats_to_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                *value = Value::from(f as i64);
                true
            } else {
                false
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |any, v| whole_floats_to_integers(v) | any),
        Value::Object(map) => map
            .values_mut()
            .fold(false, |any, v| whole_floats_to_integers(v) | any),
        _ => false,
    }
}

/// JSON with a status code.
pub fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> warp::reply::Response {
    use warp::Reply as _;
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

pub(crate) fn reject(e: impl Into<ApiError>) -> Rejection {
    warp::reject::custom(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let trusted = |ip: IpAddr| ip == proxy;
        let client = |peer: &str, xff| resolve_client_ip(peer.parse().unwrap(), xff, trusted).to_string();
        assert_eq!(client("127.0.0.1", Some("81.2.69.142")), "81.2.69.142");
        assert_eq!(
            client("127.0.0.1", Some("6.6.6.6, 81.2.69.142, 127.0.0.1")),
            "81.2.69.142"
        );
        assert_eq!(client("203.0.113.9", Some("81.2.69.142")), "203.0.113.9");
        assert_eq!(client("127.0.0.1", Some("garbage")), "127.0.0.1");
        assert_eq!(client("::ffff:203.0.113.9", None), "203.0.113.9");
    }

    #[test]
    fn whole_numbers_written_as_floats_become_integers_and_nothing_else_changes() {
        let mut v =
            serde_json::json!({"a": 735.0, "b": [1.0, 2.5, -3.0], "c": {"d": 1e300, "e": "7.0"}, "f": 4});
        assert!(whole_floats_to_integers(&mut v));
        assert_eq!(
            v,
            serde_json::json!({"a": 735, "b": [1, 2.5, -3], "c": {"d": 1e300, "e": "7.0"}, "f": 4})
        );
        let mut plain = serde_json::json!({"a": 1, "b": "x", "c": 0.5});
        assert!(!whole_floats_to_integers(&mut plain));
    }
}
