//! The agent's one HTTP client: rustls only, timeouts, a user agent, and one
//! function ([`ClientError::disposition`]) that tells the outbox what to do
//! with a failure: retry later, set aside, or enrol again.

use std::time::Duration;

use reqwest::{StatusCode, Url};
use wfh_protocol::{
    AgentEventRequest, EnrollRequest, EnrollResponse, ErrorBody, EventAccepted, HeartbeatRequest, LogMeta,
    LogRecord, WhoAmI,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A device token. Never printed: `Debug` shows `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceToken(String);

impl DeviceToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceToken(***)")
    }
}

/// What the caller should do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// It may succeed later (network, 5xx, 429, a proxy's error page, a
    /// disabled employee, a server clock behind this one): keep it and try
    /// again with backoff, no sooner than the server's `Retry-After`.
    Retry,
    /// The server refused this item for good, saying why (a malformed or
    /// expired item): set it aside with the reason, for the employee to see.
    SetAside,
    /// The token is no longer valid: enrol again.
    Reenroll,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("server URL {0:?} is not allowed: use https:// (http:// only to this machine)")]
    InsecureUrl(String),
    #[error("server URL is not valid: {0}")]
    BadUrl(String),
    #[error("the extra CA certificate is not valid PEM: {0}")]
    BadCertificate(String),
    #[error("cannot reach the server: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("the server answered {status}: {code}: {message}")]
    Status {
        status: StatusCode,
        code: String,
        message: String,
        /// The answer's `Retry-After`, in seconds.
        retry_after: Option<Duration>,
        /// Whether the answer was the server's own JSON error, rather than
        /// a page from something in between (a proxy, a captive portal).
        from_server: bool,
    },
}

impl ClientError {
    pub fn disposition(&self) -> Disposition {
        let ClientError::Status {
            status,
            code,
            from_server,
            ..
        } = self
        else {
            return match self {
                ClientError::Transport(_) => Disposition::Retry,
                _ => Disposition::SetAside,
            };
        };
        match (*status, code.as_str()) {
            (StatusCode::UNAUTHORIZED, _) if *from_server => Disposition::Reenroll,
            // Only the server itself can refuse an item for good; an error
            // page from a proxy in between says nothing about the item.
            _ if !from_server => Disposition::Retry,
            (StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT, _) => Disposition::Retry,
            (s, _) if s.is_server_error() => Disposition::Retry,
            // Our clock is ahead of the server's: it will catch up.
            (_, "timestamp_in_future") => Disposition::Retry,
            // The admin may enable the employee again.
            (_, "employee_disabled") => Disposition::Retry,
            // An endpoint this server does not have yet, or a newer agent
            // than it accepts: an upgrade on either side fixes it.
            (StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::UPGRADE_REQUIRED, _) => {
                Disposition::Retry
            }
            _ => Disposition::SetAside,
        }
    }

    /// How long the server asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The machine-readable code of a server error, if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Status { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// HTTPS only, except to this machine (`localhost`, `127.0.0.0/8`, `::1`).
pub fn check_server_url(url: &str) -> Result<Url, ClientError> {
    let parsed = Url::parse(url).map_err(|e| ClientError::BadUrl(e.to_string()))?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback(&parsed) => Ok(parsed),
        _ => Err(ClientError::InsecureUrl(url.to_owned())),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    /// The policy revision the server named in its latest answer (-1: none
    /// yet); shared by every clone.
    policy_revision: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl ApiClient {
    /// `extra_ca_pem`: a company CA to trust besides the system's roots.
    pub fn new(server: &str, extra_ca_pem: Option<&[u8]>) -> Result<Self, ClientError> {
        let base = check_server_url(server)?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("wfh-agent/", env!("CARGO_PKG_VERSION")))
            .https_only(base.scheme() == "https");
        if let Some(pem) = extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::BadCertificate(e.to_string()))?;
            if certs.is_empty() {
                return Err(ClientError::BadCertificate("no certificate found".into()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(ClientError::Transport)?;
        Ok(Self {
            http,
            base,
            policy_revision: std::sync::Arc::new(std::sync::atomic::AtomicI64::new(-1)),
        })
    }

    pub fn server(&self) -> &Url {
        &self.base
    }

    /// The policy revision the server last named, if it named one.
    pub fn policy_revision_seen(&self) -> Option<i64> {
        let r = self.policy_revision.load(std::sync::atomic::Ordering::Relaxed);
        (r >= 0).then_some(r)
    }

    /// Note the policy revision of an answer, then decode it.
    async fn decode<T: serde::de::DeserializeOwned>(
        &self,
        sent: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<T, ClientError> {
        if let Ok(res) = &sent {
            let revision = res
                .headers()
                .get(wfh_protocol::POLICY_REVISION_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i64>().ok());
            if let Some(r) = revision {
                self.policy_revision
                    .store(r, std::sync::atomic::Ordering::Relaxed);
            }
        }
        decode(sent).await
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("API paths are valid relative URLs")
    }

    pub async fn enroll(
        &self,
        code: &str,
        username: &str,
        hostname: &str,
    ) -> Result<EnrollResponse, ClientError> {
        let req = EnrollRequest {
            code: code.to_owned(),
            username: username.to_owned(),
            hostname: hostname.to_owned(),
        };
        self.decode(self.http.post(self.url("api/enroll")).json(&req).send().await)
            .await
    }

    pub async fn heartbeat(
        &self,
        token: &DeviceToken,
        hb: &HeartbeatRequest,
    ) -> Result<EventAccepted, ClientError> {
        let req = self
            .http
            .post(self.url("api/heartbeat"))
            .bearer_auth(token.expose())
            .json(hb);
        self.decode(req.send().await).await
    }

    /// Upload a detailed log with its screenshot (`mime`: `image/webp`, ...).
    pub async fn log(
        &self,
        token: &DeviceToken,
        meta: &LogMeta,
        screenshot: Vec<u8>,
        mime: &str,
    ) -> Result<LogRecord, ClientError> {
        let meta = serde_json::to_vec(meta).expect("LogMeta serialises");
        let form = reqwest::multipart::Form::new()
            .part(
                "meta",
                reqwest::multipart::Part::bytes(meta)
                    .mime_str("application/json")
                    .expect("static MIME type"),
            )
            .part(
                "screenshot",
                reqwest::multipart::Part::bytes(screenshot)
                    .file_name("screenshot")
                    .mime_str(mime)
                    .map_err(|e| ClientError::BadUrl(e.to_string()))?,
            );
        let req = self
            .http
            .post(self.url("api/log"))
            .bearer_auth(token.expose())
            .multipart(form);
        self.decode(req.send().await).await
    }

    /// Report an agent event (startup, shutdown, missed log).
    pub async fn event(
        &self,
        token: &DeviceToken,
        ev: &AgentEventRequest,
    ) -> Result<EventAccepted, ClientError> {
        let req = self
            .http
            .post(self.url("api/event"))
            .bearer_auth(token.expose())
            .json(ev);
        self.decode(req.send().await).await
    }

    /// Report a bucket of activity.
    pub async fn activity(
        &self,
        token: &DeviceToken,
        bucket: &wfh_protocol::ActivityRequest,
    ) -> Result<EventAccepted, ClientError> {
        let req = self
            .http
            .post(self.url("api/activity"))
            .bearer_auth(token.expose())
            .json(bucket);
        self.decode(req.send().await).await
    }

    /// The monitoring policy and its consent (public; no token needed).
    pub async fn policy(&self) -> Result<wfh_protocol::PolicyDocument, ClientError> {
        self.decode(self.http.get(self.url("api/policy")).send().await)
            .await
    }

    pub async fn whoami(&self, token: &DeviceToken) -> Result<WhoAmI, ClientError> {
        self.decode(
            self.http
                .get(self.url("api/whoami"))
                .bearer_auth(token.expose())
                .send()
                .await,
        )
        .await
    }
}

async fn decode<T: serde::de::DeserializeOwned>(
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, ClientError> {
    let res = sent.map_err(ClientError::Transport)?;
    let status = res.status();
    if status.is_success() {
        return res.json().await.map_err(ClientError::Transport);
    }
    // Delta-seconds only: the server sends no dates, and a proxy's date is
    // no better than our own backoff.
    let retry_after = res
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| Duration::from_secs(secs.min(24 * 3600)));
    let body = res.bytes().await.unwrap_or_default();
    let (code, message, from_server) = match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(e) => (e.error.code, e.error.message, true),
        Err(_) => (
            "http_error".to_owned(),
            String::from_utf8_lossy(&body).chars().take(200).collect(),
            false,
        ),
    };
    Err(ClientError::Status {
        status,
        code,
        message,
        retry_after,
        from_server,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        assert!(check_server_url("https://wfh.example.com").is_ok());
        assert!(check_server_url("http://127.0.0.1:8080").is_ok());
        assert!(check_server_url("http://localhost:8080").is_ok());
        assert!(check_server_url("http://[::1]:8080").is_ok());
        assert!(matches!(
            check_server_url("http://wfh.example.com"),
            Err(ClientError::InsecureUrl(_))
        ));
        assert!(matches!(
            check_server_url("ftp://x"),
            Err(ClientError::InsecureUrl(_))
        ));
        assert!(matches!(
            check_server_url("not a url"),
            Err(ClientError::BadUrl(_))
        ));
    }

    #[test]
    fn failures_map_to_what_the_outbox_should_do() {
        let answer = |s: u16, code: &str, from_server: bool| ClientError::Status {
            status: StatusCode::from_u16(s).unwrap(),
            code: code.into(),
            message: "y".into(),
            retry_after: None,
            from_server,
        };
        let status = |s: u16| answer(s, "invalid_field", true);
        assert_eq!(status(500).disposition(), Disposition::Retry);
        assert_eq!(status(503).disposition(), Disposition::Retry);
        assert_eq!(status(429).disposition(), Disposition::Retry);
        assert_eq!(status(401).disposition(), Disposition::Reenroll);
        assert_eq!(status(422).disposition(), Disposition::SetAside);
        assert_eq!(status(409).disposition(), Disposition::SetAside);
        assert_eq!(status(413).disposition(), Disposition::SetAside);
        // A proxy's page, whatever its status, refuses nothing for good.
        for s in [400, 401, 403, 404, 422] {
            assert_eq!(
                answer(s, "http_error", false).disposition(),
                Disposition::Retry,
                "{s}"
            );
        }
        // What can succeed later: the server's clock catches up, the employee
        // is enabled again, the server is upgraded.
        assert_eq!(
            answer(422, "timestamp_in_future", true).disposition(),
            Disposition::Retry
        );
        assert_eq!(
            answer(403, "employee_disabled", true).disposition(),
            Disposition::Retry
        );
        assert_eq!(answer(404, "not_found", true).disposition(), Disposition::Retry);
        assert_eq!(answer(422, "expired", true).disposition(), Disposition::SetAside);
    }

    #[test]
    fn tokens_do_not_print() {
        assert_eq!(
            format!("{:?}", DeviceToken::new("wfh_d_secret")),
            "DeviceToken(***)"
        );
    }
}
