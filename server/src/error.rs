//! The API's errors and the one place they become HTTP responses.
//!
//! Every failure reaches the client as `{"error": {"code", "message"}}` with a
//! short message; the log gets the whole cause chain.

use std::convert::Infallible;
use std::error::Error as _;

use warp::http::StatusCode;
use warp::reject::Rejection;
use warp::reply::Reply;
use wfh_protocol::{ErrorBody, ErrorDetail};

use crate::db::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or malformed Authorization header; expected `Bearer <token>`")]
    MissingToken,
    #[error("the token is not valid")]
    InvalidToken,
    #[error("this device has been revoked; enrol it again")]
    DeviceRevoked,
    #[error("this employee is disabled")]
    EmployeeDisabled,
    #[error("this endpoint needs an admin token")]
    AdminOnly,
    #[error("the enrolment code is not valid, expired or already used")]
    InvalidEnrollmentCode,
    #[error("the session has ended; sign in again")]
    SessionExpired,
    #[error("missing or wrong X-CSRF-Token header for a change made with a session cookie")]
    CsrfFailed,
    #[error("{0}")]
    InvalidBody(String),
    #[error("{field}: {message}")]
    InvalidField { field: &'static str, message: String },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    ImageTooLarge(String),
    #[error("timestamp: ahead of the server's clock by more than the allowed skew; send it again in {retry_after_secs} s")]
    TimestampInFuture { retry_after_secs: u64 },
    #[error("timestamp: {0}")]
    Expired(String),
    #[error("too many failed attempts from this address; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the stored screenshot cannot be decoded; the original is still available")]
    ScreenshotUnreadable,
    #[error("the body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("the server is shutting down")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field,
            message: message.into(),
        }
    }

    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(e.into())
    }

    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            MissingToken | InvalidToken | DeviceRevoked | InvalidEnrollmentCode | SessionExpired => {
                StatusCode::UNAUTHORIZED
            }
            EmployeeDisabled | AdminOnly | CsrfFailed => StatusCode::FORBIDDEN,
            InvalidBody(_) => StatusCode::BAD_REQUEST,
            InvalidField { .. }
            | ImageTooLarge(_)
            | ScreenshotUnreadable
            | TimestampInFuture { .. }
            | Expired(_) => StatusCode::UNPROCESSABLE_ENTITY,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            NotFound(_) => StatusCode::NOT_FOUND,
            Conflict(_) => StatusCode::CONFLICT,
            Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Seconds after which the same request may succeed (`Retry-After`).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::TimestampInFuture { retry_after_secs } | ApiError::RateLimited { retry_after_secs } => {
                Some(*retry_after_secs)
            }
            _ => None,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            MissingToken => "missing_token",
            InvalidToken => "invalid_token",
            DeviceRevoked => "device_revoked",
            EmployeeDisabled => "employee_disabled",
            AdminOnly => "admin_only",
            InvalidEnrollmentCode => "invalid_enrollment_code",
            SessionExpired => "session_expired",
            CsrfFailed => "csrf_failed",
            InvalidBody(_) => "invalid_body",
            InvalidField { .. } => "invalid_field",
            UnsupportedMediaType(_) => "unsupported_media_type",
            ImageTooLarge(_) => "image_too_large",
            TimestampInFuture { .. } => "timestamp_in_future",
            Expired(_) => "expired",
            RateLimited { .. } => "rate_limited",
            ScreenshotUnreadable => "screenshot_unreadable",
            PayloadTooLarge { .. } => "payload_too_large",
            NotFound(_) => "not_found",
            Conflict(_) => "conflict",
            Unavailable => "unavailable",
            Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            other => ApiError::Internal(other.into()),
        }
    }
}

/// `outer: inner: innermost`, for logs.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        out.push_str(": ");
        out.push_str(&inner.to_string());
        cur = inner.source();
    }
    out
}

pub fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> warp::reply::Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message: message.into(),
        },
    };
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// The `recover` at the edge: every rejection becomes the JSON error shape.
pub async fn recover(r: Rejection) -> Result<warp::reply::Response, Infallible> {
    if let Some(e) = r.find::<ApiError>() {
        if let ApiError::Internal(cause) = e {
            tracing::error!(error = %error_chain(cause.as_ref()), "request failed");
        }
        let mut res = json_error(e.status(), e.code(), e.to_string());
        if let Some(secs) = e.retry_after_secs() {
            res.headers_mut()
                .insert("retry-after", warp::http::HeaderValue::from(secs.max(1)));
        }
        return Ok(res);
    }
    let (status, code, message) = if r.is_not_found() {
        (StatusCode::NOT_FOUND, "not_found", "no such endpoint".to_owned())
    } else if let Some(e) = r.find::<warp::filters::body::BodyDeserializeError>() {
        let detail = e.source().map(|s| s.to_string()).unwrap_or_default();
        (
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("the JSON body is not valid: {detail}"),
        )
    } else if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is too large".to_owned(),
        )
    } else if r.find::<warp::reject::LengthRequired>().is_some() {
        (
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "a Content-Length header is required".to_owned(),
        )
    } else if r.find::<warp::reject::UnsupportedMediaType>().is_some() {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "wrong Content-Type for this endpoint".to_owned(),
        )
    } else if let Some(e) = r.find::<warp::reject::InvalidHeader>() {
        (StatusCode::BAD_REQUEST, "invalid_header", e.to_string())
    } else if let Some(e) = r.find::<warp::reject::MissingHeader>() {
        (StatusCode::BAD_REQUEST, "missing_header", e.to_string())
    } else if let Some(e) = r.find::<warp::reject::InvalidQuery>() {
        (StatusCode::BAD_REQUEST, "invalid_query", e.to_string())
    } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed".to_owned(),
        )
    } else {
        tracing::warn!(rejection = ?r, "unhandled rejection");
        (
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request could not be handled".to_owned(),
        )
    };
    Ok(json_error(status, code, message))
}
