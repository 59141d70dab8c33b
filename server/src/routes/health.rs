//! Operations: health, metrics, the OpenAPI document.

use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply as _};

use super::json;
use crate::state::{with_state, AppState};

pub fn routes(
    state: &AppState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let health = warp::path!("healthz")
        .and(warp::get())
        .and(with_state(state))
        .then(|state: AppState| async move {
            match state.store.ping().await {
                Ok(()) => json(
                    StatusCode::OK,
                    &serde_json::json!({"status": "ok", "database": "ok"}),
                ),
                Err(e) => {
                    tracing::error!(error = %e, "health check: database unreachable");
                    json(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &serde_json::json!({"status": "unavailable", "database": "unreachable"}),
                    )
                }
            }
        });
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_state(state))
        .map(|state: AppState| {
            warp::reply::with_header(
                state.metrics.render(),
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .into_response()
        });
    let openapi = warp::path!("api" / "openapi.json")
        .and(warp::get())
        .map(|| warp::reply::json(&crate::openapi::document()).into_response());
    health.or(metrics).unify().or(openapi).unify()
}
