//! Admin tokens (`/api/admin/admin-tokens`): list, create, revoke. A revoked
//! or expired token, and every dashboard session opened with it, is refused
//! from the next request on.

use warp::http::StatusCode;
use warp::{Filter, Rejection};
use wfh_protocol::admin::{AdminToken, CreatedAdminToken, NewAdminToken};

use super::{json, reject};
use crate::state::{with_state, AppState};

/// The admin-token routes, below `/api/admin` (authenticated by the caller).
pub fn routes(
    state: &AppState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let base = with_state(state);
    let list = base
        .clone()
        .and(warp::path!("admin-tokens"))
        .and(warp::get())
        .and_then(list_admin_tokens);
    let create = base
        .clone()
        .and(warp::path!("admin-tokens"))
        .and(warp::post())
        .and(super::json_body(4 * 1024))
        .and_then(create_admin_token);
    let revoke = base
        .and(warp::path!("admin-tokens" / i64 / "revoke"))
        .and(warp::post())
        .and_then(revoke_admin_token);
    list.or(create).unify().or(revoke).unify()
}

/// Every admin token, revoked and expired ones too; never the tokens themselves.
#[utoipa::path(get, path = "/api/admin/admin-tokens", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = Vec<AdminToken>), (status = 401, body = wfh_protocol::ErrorBody)))]
pub async fn list_admin_tokens(state: AppState) -> Result<warp::reply::Response, Rejection> {
    Ok(json(
        StatusCode::OK,
        &state.store.admin_tokens().await.map_err(reject)?,
    ))
}

/// Create an admin token; the answer is the only place it is ever shown.
#[utoipa::path(post, path = "/api/admin/admin-tokens", tag = "admin", security(("admin_token" = [])),
    request_body = NewAdminToken,
    responses((status = 201, body = CreatedAdminToken), (status = 401, body = wfh_protocol::ErrorBody),
              (status = 422, body = wfh_protocol::ErrorBody)))]
pub async fn create_admin_token(
    state: AppState,
    new: NewAdminToken,
) -> Result<warp::reply::Response, Rejection> {
    let created = crate::auth::create_admin_token(
        state.store.as_ref(),
        &new.label,
        new.expires_days,
        state.clock.now(),
    )
    .await
    .map_err(reject)?;
    tracing::info!(admin_token = created.info.id, "admin token created");
    Ok(json(StatusCode::CREATED, &created))
}

/// Revoke an admin token: it and its dashboard sessions are refused at once.
#[utoipa::path(post, path = "/api/admin/admin-tokens/{id}/revoke", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "the token's id")),
    responses((status = 200, body = AdminToken), (status = 401, body = wfh_protocol::ErrorBody),
              (status = 404, body = wfh_protocol::ErrorBody)))]
pub async fn revoke_admin_token(state: AppState, id: i64) -> Result<warp::reply::Response, Rejection> {
    let token = state
        .store
        .revoke_admin_token(id, state.clock.now())
        .await
        .map_err(reject)?;
    tracing::info!(admin_token = id, "admin token revoked");
    Ok(json(StatusCode::OK, &token))
}
