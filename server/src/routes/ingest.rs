//! Device-facing endpoints: enrolment, heartbeat, detailed log, whoami.

use std::net::IpAddr;

use bytes::{Buf as _, BufMut as _, BytesMut};
use futures_util::TryStreamExt as _;
use warp::http::StatusCode;
use warp::multipart::FormData;
use warp::{Filter, Rejection};
use wfh_protocol::{AgentEventRequest, EnrollRequest, EnrollResponse, HeartbeatRequest, LogMeta, WhoAmI};

use super::{client_ip, device, json, reject};
use crate::auth::{self, Device};
use crate::db::StoreError;
use crate::error::ApiError;
use crate::state::{with_state, AppState};

const JSON_LIMIT: u64 = 16 * 1024;
/// An activity bucket may name 51 applications and websites with long titles
/// and addresses.
const ACTIVITY_LIMIT: u64 = 512 * 1024;
const META_LIMIT: usize = 64 * 1024;
/// Room for the `meta` part and multipart framing on top of the screenshot.
const FORM_OVERHEAD: u64 = 256 * 1024;

pub fn routes(
    state: &AppState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let enroll = warp::path!("api" / "enroll")
        .and(warp::post())
        .and(with_state(state))
        .and(client_ip(state))
        .and(super::json_body(JSON_LIMIT))
        .and_then(enroll);
    let heartbeat = warp::path!("api" / "heartbeat")
        .and(warp::post())
        .and(with_state(state))
        .and(device(state))
        .and(super::json_body(JSON_LIMIT))
        .and_then(heartbeat);
    let event = warp::path!("api" / "event")
        .and(warp::post())
        .and(with_state(state))
        .and(device(state))
        .and(super::json_body(JSON_LIMIT))
        .and_then(agent_event);
    let activity = warp::path!("api" / "activity")
        .and(warp::post())
        .and(with_state(state))
        .and(device(state))
        .and(super::json_body(ACTIVITY_LIMIT))
        .and_then(activity);
    let log = warp::path!("api" / "log")
        .and(warp::post())
        .and(with_state(state))
        .and(device(state))
        .and(client_ip(state))
        .and(warp::multipart::form().max_length(state.config.max_screenshot_bytes + FORM_OVERHEAD))
        .and_then(log);
    let whoami = warp::path!("api" / "whoami")
        .and(warp::get())
        .and(device(state))
        .and(client_ip(state))
        .map(whoami);
    let policy = warp::path!("api" / "policy")
        .and(warp::get())
        .and(with_state(state))
        .and_then(policy);
    let state = state.clone();
    enroll
        .or(policy)
        .unify()
        .or(heartbeat)
        .unify()
        .or(event)
        .unify()
        .or(activity)
        .unify()
        .or(log)
        .unify()
        .or(whoami)
        .unify()
        .map(move |mut reply: warp::reply::Response| {
            let revision = crate::policy::current(&state).revision;
            reply.headers_mut().insert(
                wfh_protocol::POLICY_REVISION_HEADER,
                warp::http::HeaderValue::from(revision),
            );
            reply
        })
}

/// The monitoring policy and the consent it asks for. Public: an employee
/// may read it before enrolling, and the agent shows it before anything is
/// collected.
#[utoipa::path(get, path = "/api/policy", tag = "agent",
    responses((status = 200, body = wfh_protocol::PolicyDocument)))]
pub async fn policy(state: AppState) -> Result<warp::reply::Response, Rejection> {
    let doc = crate::policy::current(&state);
    Ok(json(StatusCode::OK, &doc))
}

/// Trade an enrolment code for a device token.
#[utoipa::path(post, path = "/api/enroll", tag = "agent", request_body = EnrollRequest,
    responses((status = 201, body = EnrollResponse), (status = 401, body = wfh_protocol::ErrorBody),
              (status = 422, body = wfh_protocol::ErrorBody),
              (status = 429, body = wfh_protocol::ErrorBody, description = "too many wrong codes from this address; `Retry-After` says when to try again")))]
pub async fn enroll(
    state: AppState,
    ip: std::net::IpAddr,
    req: EnrollRequest,
) -> Result<warp::reply::Response, Rejection> {
    super::refuse_if_throttled(&state, &state.throttles.enrolment, ip, "/api/enroll")?;
    crate::ingest::check_name("username", &req.username)?;
    crate::ingest::check_name("hostname", &req.hostname)?;
    let token = auth::new_device_token();
    let redeemed = state
        .store
        .redeem_enrollment_code(
            &auth::hash_enrollment_code(&req.code),
            &req.username,
            &req.hostname,
            &auth::hash_secret(&token),
            state.clock.now(),
        )
        .await;
    let (employee, device_id) = match redeemed {
        Ok(v) => v,
        Err(StoreError::InvalidCode) => {
            state.throttles.enrolment.failed(ip);
            tracing::warn!(%ip, "enrolment with a wrong, used or expired code");
            return Err(reject(ApiError::InvalidEnrollmentCode));
        }
        Err(e) => return Err(reject(e)),
    };
    tracing::info!(employee = employee.id, device_id, hostname = %req.hostname, "device enrolled");
    Ok(json(
        StatusCode::CREATED,
        &EnrollResponse {
            token,
            employee,
            device_id,
        },
    ))
}

/// Record a heartbeat. A retry with the same `event_id` answers as the first did.
#[utoipa::path(post, path = "/api/heartbeat", tag = "agent", request_body = HeartbeatRequest,
    security(("device_token" = [])),
    responses((status = 201, body = wfh_protocol::EventAccepted), (status = 400, body = wfh_protocol::ErrorBody),
              (status = 401, body = wfh_protocol::ErrorBody),
              (status = 422, body = wfh_protocol::ErrorBody, description = "`invalid_field`, `expired` (older than retention keeps), or `timestamp_in_future` (with `Retry-After`)"),
              (status = 429, body = wfh_protocol::ErrorBody, description = "far faster than the policy's interval; `Retry-After` says when to go on")))]
pub async fn heartbeat(
    state: AppState,
    device: Device,
    req: HeartbeatRequest,
) -> Result<warp::reply::Response, Rejection> {
    let accepted = crate::ingest::heartbeat(&state, &device, req).await?;
    Ok(json(StatusCode::CREATED, &accepted))
}

/// Report an agent event: startup (with the OS boot time), shutdown, or a
/// planned detailed log that was missed and why. Idempotent on `event_id`.
#[utoipa::path(post, path = "/api/event", tag = "agent", request_body = AgentEventRequest,
    security(("device_token" = [])),
    responses((status = 201, body = wfh_protocol::EventAccepted), (status = 400, body = wfh_protocol::ErrorBody),
              (status = 401, body = wfh_protocol::ErrorBody), (status = 409, body = wfh_protocol::ErrorBody),
              (status = 422, body = wfh_protocol::ErrorBody)))]
pub async fn agent_event(
    state: AppState,
    device: Device,
    req: AgentEventRequest,
) -> Result<warp::reply::Response, Rejection> {
    let accepted = crate::ingest::agent_event(&state, &device, req).await?;
    Ok(json(StatusCode::CREATED, &accepted))
}

/// Report a bucket of activity (applications, websites, active and idle
/// seconds, key presses), each kind only where the monitoring policy
/// switches it on; what the policy does not allow is dropped. Idempotent on
/// `event_id`.
#[utoipa::path(post, path = "/api/activity", tag = "agent", request_body = wfh_protocol::ActivityRequest,
    security(("device_token" = [])),
    responses((status = 201, body = wfh_protocol::EventAccepted), (status = 400, body = wfh_protocol::ErrorBody),
              (status = 401, body = wfh_protocol::ErrorBody), (status = 409, body = wfh_protocol::ErrorBody),
              (status = 422, body = wfh_protocol::ErrorBody)))]
pub async fn activity(
    state: AppState,
    device: Device,
    req: wfh_protocol::ActivityRequest,
) -> Result<warp::reply::Response, Rejection> {
    let accepted = crate::ingest::activity(&state, &device, req).await?;
    Ok(json(StatusCode::CREATED, &accepted))
}

/// The parts of a detailed-log upload, for the API document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct LogUpload {
    meta: LogMeta,
    /// PNG, JPEG or WebP.
    #[schema(value_type = String, format = Binary)]
    screenshot: Vec<u8>,
}

/// Upload a detailed log: `multipart/form-data` with a JSON part `meta`
/// (`LogMeta`) and a part `screenshot` (PNG, JPEG or WebP).
#[utoipa::path(post, path = "/api/log", tag = "agent",
    request_body(content = LogUpload, content_type = "multipart/form-data",
        description = "parts `meta` (JSON LogMeta) and `screenshot` (a PNG, JPEG or WebP image)"),
    security(("device_token" = [])),
    responses((status = 201, body = wfh_protocol::LogRecord), (status = 400, body = wfh_protocol::ErrorBody),
              (status = 401, body = wfh_protocol::ErrorBody), (status = 413, body = wfh_protocol::ErrorBody),
              (status = 415, body = wfh_protocol::ErrorBody), (status = 422, body = wfh_protocol::ErrorBody)))]
pub async fn log(
    state: AppState,
    device: Device,
    ip: IpAddr,
    form: FormData,
) -> Result<warp::reply::Response, Rejection> {
    let (meta, image) = read_log_form(form, state.config.max_screenshot_bytes).await?;
    let record = crate::ingest::log(&state, &device, meta, image, ip).await?;
    Ok(json(StatusCode::CREATED, &record))
}

/// The public address the server sees, so agents need no third-party service.
#[utoipa::path(get, path = "/api/whoami", tag = "agent", security(("device_token" = [])),
    responses((status = 200, body = WhoAmI), (status = 401, body = wfh_protocol::ErrorBody)))]
pub fn whoami(device: Device, ip: IpAddr) -> warp::reply::Response {
    json(
        StatusCode::OK,
        &WhoAmI {
            ip,
            employee: device.employee,
            device_id: device.device_id,
        },
    )
}

async fn read_log_form(form: FormData, max_image: u64) -> Result<(LogMeta, bytes::Bytes), ApiError> {
    let multipart = |e: warp::Error| ApiError::InvalidBody(format!("the multipart body is malformed: {e}"));
    let mut meta = None;
    let mut image = None;
    let mut parts = Box::pin(form);
    while let Some(part) = parts.try_next().await.map_err(multipart)? {
        let name = part.name().to_owned();
        let limit = match name.as_str() {
            "meta" => META_LIMIT as u64,
            "screenshot" => max_image,
            other => return Err(ApiError::InvalidBody(format!("unexpected part `{other}`"))),
        };
        let mut buf = BytesMut::new();
        let mut stream = Box::pin(part.stream());
        while let Some(mut chunk) = stream.try_next().await.map_err(multipart)? {
            if (buf.len() + chunk.remaining()) as u64 > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            while chunk.has_remaining() {
                let piece = chunk.chunk();
                let n = piece.len();
                buf.put_slice(piece);
                chunk.advance(n);
            }
        }
        match name.as_str() {
            "meta" => {
                let parsed: LogMeta = serde_json::from_slice(&buf)
                    .map_err(|e| ApiError::InvalidBody(format!("the `meta` part is not valid: {e}")))?;
                meta = Some(parsed);
            }
            _ => image = Some(buf.freeze()),
        }
    }
    let meta = meta.ok_or_else(|| ApiError::InvalidBody("the `meta` part is missing".into()))?;
    let image = image.ok_or_else(|| ApiError::InvalidBody("the `screenshot` part is missing".into()))?;
    Ok((meta, image))
}
