//! The dashboard: a small single-page app embedded in the binary
//! (`server/dashboard/`), and the sign-in that turns an admin token into a
//! session cookie for it.
//!
//! * `POST /api/session {token}` checks the admin token and sets the cookie
//!   (HttpOnly, SameSite=Strict, Secure when the request came over HTTPS);
//!   the answer carries the session's CSRF token, which the page sends back in
//!   `X-CSRF-Token` with every change (`admin` in `routes/mod.rs` checks it).
//! * `GET /api/session` answers the CSRF token again (after a reload).
//! * `DELETE /api/session` signs out: the session is deleted on the server.
//!
//! Every page path answers the same `index.html`; the app routes in the
//! browser and reads everything through the admin API.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use warp::http::{HeaderValue, StatusCode};
use warp::{Filter, Rejection, Reply as _};

use super::{json, reject, PeerAddr};
use crate::auth::{hash_secret, new_session_secret};
use crate::db::NewSession;
use crate::error::ApiError;
use crate::state::{with_state, AppState};

pub const SESSION_COOKIE: &str = "wfh_session";
/// How long a sign-in lasts.
pub const SESSION_HOURS: i64 = 12;

const INDEX_HTML: &str = include_str!("../../dashboard/index.html");
const APP_JS: &str = include_str!("../../dashboard/app.js");
const APP_CSS: &str = include_str!("../../dashboard/app.css");
const ICON_SVG: &str = include_str!("../../dashboard/icon.svg");

/// Only what the app itself serves: no inline script, no third party.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub token: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    pub csrf_token: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub retention_days: u32,
    pub heartbeat_interval_secs: u64,
}

pub fn routes(
    state: &AppState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let page = warp::get()
        .and(
            warp::path::end()
                .or(warp::path!("login"))
                .unify()
                .or(warp::path!("logs"))
                .unify()
                .or(warp::path!("admin"))
                .unify()
                .or(warp::path!("summary"))
                .unify()
                .or(warp::path!("employees" / i64 / String)
                    .map(|_: i64, _: String| ())
                    .untuple_one())
                .unify(),
        )
        .map(|| asset(INDEX_HTML, "text/html; charset=utf-8"));
    let assets = warp::get().and(
        warp::path!("assets" / "app.js")
            .map(|| asset(APP_JS, "text/javascript; charset=utf-8"))
            .or(warp::path!("assets" / "app.css").map(|| asset(APP_CSS, "text/css; charset=utf-8")))
            .unify()
            .or(warp::path!("assets" / "icon.svg").map(|| asset(ICON_SVG, "image/svg+xml")))
            .unify(),
    );
    let base = with_state(state);
    let sign_in = base
        .clone()
        .and(warp::path!("api" / "session"))
        .and(warp::post())
        .and(https(state))
        .and(super::client_ip(state))
        .and(super::json_body(4 * 1024))
        .and_then(sign_in);
    let current = base
        .clone()
        .and(warp::path!("api" / "session"))
        .and(warp::get())
        .and(warp::cookie::optional::<String>(SESSION_COOKIE))
        .and_then(current);
    let sign_out = base
        .and(warp::path!("api" / "session"))
        .and(warp::delete())
        .and(https(state))
        .and(warp::cookie::optional::<String>(SESSION_COOKIE))
        .and(warp::header::optional::<String>("x-csrf-token"))
        .and_then(sign_out);
    page.or(assets)
        .unify()
        .or(sign_in)
        .unify()
        .or(current)
        .unify()
        .or(sign_out)
        .unify()
}

fn asset(body: &'static str, content_type: &'static str) -> warp::reply::Response {
    let mut res = warp::reply::Response::new(body.into());
    let h = res.headers_mut();
    h.insert("content-type", HeaderValue::from_static(content_type));
    // The files change with the binary: revalidate, never serve stale code.
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    res
}

/// Whether the request reached us over HTTPS: our own TLS, or a trusted
/// proxy that says so in `X-Forwarded-Proto`.
fn https(state: &AppState) -> impl Filter<Extract = (bool,), Error = Rejection> + Clone {
    warp::ext::optional::<PeerAddr>()
        .and(warp::header::optional::<String>("x-forwarded-proto"))
        .and(with_state(state))
        .map(|peer: Option<PeerAddr>, proto: Option<String>, state: AppState| {
            if state.config.tls_cert.is_some() {
                return true;
            }
            let from_proxy = peer.is_some_and(|p| state.config.is_trusted_proxy(p.0.ip()));
            from_proxy && proto.is_some_and(|p| p.eq_ignore_ascii_case("https"))
        })
}

fn cookie(value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .expect("cookie characters are URL-safe base64")
}

/// The CSRF token of the session behind `cookie`, or 401.
pub async fn session_csrf(state: &AppState, cookie: &str) -> Result<String, ApiError> {
    state
        .store
        .session_csrf(&hash_secret(cookie), state.clock.now())
        .await?
        .ok_or(ApiError::SessionExpired)
}

/// Compares two secrets without leaking where they differ.
pub fn same_secret(given: Option<&str>, expected: &str) -> bool {
    given.is_some_and(|g| hash_secret(g) == hash_secret(expected))
}

fn info(state: &AppState, csrf_token: String, expires_at: Option<DateTime<Utc>>) -> SessionInfo {
    SessionInfo {
        csrf_token,
        expires_at,
        retention_days: state.config.retention_days,
        heartbeat_interval_secs: state.config.heartbeat_interval_secs,
    }
}

/// Sign in with an admin token: sets the session cookie (HttpOnly,
/// SameSite=Strict, Secure over HTTPS) and answers the CSRF token.
#[utoipa::path(post, path = "/api/session", tag = "dashboard", request_body = SignIn,
    responses((status = 201, body = SessionInfo, description = "signed in; `Set-Cookie: wfh_session=…`"),
              (status = 401, body = wfh_protocol::ErrorBody), (status = 403, body = wfh_protocol::ErrorBody),
              (status = 429, body = wfh_protocol::ErrorBody, description = "too many wrong tokens from this address; `Retry-After` says when to try again")))]
pub async fn sign_in(
    state: AppState,
    secure: bool,
    ip: std::net::IpAddr,
    body: SignIn,
) -> Result<warp::reply::Response, Rejection> {
    super::refuse_if_throttled(&state, &state.throttles.sign_in, ip, "/api/session")?;
    let token = body.token.trim();
    // The same checks as a bearer token: a device token is told it is the wrong kind.
    if let Err(e) = state.auth.admin(token).await {
        if matches!(e, ApiError::InvalidToken | ApiError::MissingToken) {
            state.throttles.sign_in.failed(ip);
            tracing::warn!(%ip, "dashboard sign-in with a wrong admin token");
        }
        return Err(reject(e));
    }
    let session = new_session_secret();
    let now = state.clock.now();
    let expires_at = now + Duration::hours(SESSION_HOURS);
    let new = NewSession {
        session_hash: hash_secret(&session),
        csrf_token: new_session_secret(),
        created_at: now,
        expires_at,
    };
    if !state
        .store
        .create_session(&hash_secret(token), &new)
        .await
        .map_err(reject)?
    {
        return Err(reject(ApiError::InvalidToken));
    }
    tracing::info!("dashboard sign-in");
    let mut res = json(
        StatusCode::CREATED,
        &info(&state, new.csrf_token, Some(expires_at)),
    );
    res.headers_mut()
        .insert("set-cookie", cookie(&session, SESSION_HOURS * 3600, secure));
    res.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    Ok(res)
}

/// The current session's CSRF token (after a page reload).
#[utoipa::path(get, path = "/api/session", tag = "dashboard",
    responses((status = 200, body = SessionInfo), (status = 401, body = wfh_protocol::ErrorBody)))]
pub async fn current(state: AppState, session: Option<String>) -> Result<warp::reply::Response, Rejection> {
    let session = session.ok_or(ApiError::SessionExpired).map_err(reject)?;
    let csrf = session_csrf(&state, &session).await.map_err(reject)?;
    let mut res = json(StatusCode::OK, &info(&state, csrf, None));
    res.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Sign out: the session is deleted on the server and the cookie cleared.
/// A live session needs its `X-CSRF-Token`.
#[utoipa::path(delete, path = "/api/session", tag = "dashboard",
    responses((status = 204, description = "signed out"), (status = 403, body = wfh_protocol::ErrorBody)))]
pub async fn sign_out(
    state: AppState,
    secure: bool,
    session: Option<String>,
    csrf: Option<String>,
) -> Result<warp::reply::Response, Rejection> {
    if let Some(session) = session {
        // An expired session signs out quietly; a live one needs its CSRF token.
        if let Ok(expected) = session_csrf(&state, &session).await {
            if !same_secret(csrf.as_deref(), &expected) {
                return Err(reject(ApiError::CsrfFailed));
            }
        }
        state
            .store
            .delete_session(&hash_secret(&session))
            .await
            .map_err(reject)?;
        tracing::info!("dashboard sign-out");
    }
    let mut res = warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response();
    res.headers_mut().insert("set-cookie", cookie("", 0, secure));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let c = cookie("abc", 60, true);
        let c = c.to_str().unwrap();
        assert!(c.starts_with("wfh_session=abc;"));
        for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/", "Max-Age=60"] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
        assert!(!cookie("abc", 60, false).to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(Some("abc"), "abc"));
        assert!(!same_secret(Some("abd"), "abc"));
        assert!(!same_secret(Some(""), "abc"));
        assert!(!same_secret(None, "abc"));
    }
}
