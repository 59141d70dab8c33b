//! Wire types shared by the WFH Monitor agent and server.
//!
//! Every request and response body that crosses the network is declared here
//! once, so the agent and the server can never disagree on a payload. The
//! server derives its OpenAPI document from these types (feature `openapi`).

use std::net::IpAddr;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

pub mod activity;
pub mod policy;
pub use activity::{ActivityPolicy, ActivityRequest, AppTime, SiteTime};
pub use policy::{Consent, ConsentSection, MonitoringPolicy, PausePolicy, PolicyDocument};

/// Header that carries a device or admin token: `Authorization: Bearer <token>`.
pub const AUTHORIZATION: &str = "authorization";
/// Prefix of every device token (lets the server tell token kinds apart).
pub const DEVICE_TOKEN_PREFIX: &str = "wfh_d_";
/// Prefix of every admin token.
pub const ADMIN_TOKEN_PREFIX: &str = "wfh_a_";
/// Response header on the agent endpoints: the revision of the monitoring
/// policy in force, so that an agent fetches a changed policy at once.
pub const POLICY_REVISION_HEADER: &str = "x-wfh-policy-revision";
/// Largest screenshot the server accepts by default, in bytes.
pub const DEFAULT_MAX_SCREENSHOT_BYTES: u64 = 20 * 1024 * 1024;
/// Largest screenshot side the server accepts, in pixels: three 5K monitors
/// side by side still fit. The agent scales a larger desktop down to fit.
pub const SCREENSHOT_MAX_SIDE: u32 = 16_384;
/// Largest screenshot the server accepts, in pixels (40 megapixels; two 5K
/// monitors are 29.5). Decoding one takes four bytes a pixel, so this bounds
/// what a thumbnail costs the server.
pub const SCREENSHOT_MAX_PIXELS: u64 = 40_000_000;

/// What the agent reports about the employee's presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum HeartbeatStatus {
    /// Input seen within the idle threshold.
    Online,
    /// No keyboard or mouse input for the idle threshold.
    Idle,
    /// The employee paused monitoring.
    Paused,
}

impl HeartbeatStatus {
    pub const ALL: [HeartbeatStatus; 3] = [Self::Online, Self::Idle, Self::Paused];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Idle => "idle",
            Self::Paused => "paused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// An employee's presence as the admin API derives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatus {
    Online,
    Idle,
    Paused,
    /// Nothing has arrived for two heartbeat intervals (or ever).
    Offline,
}

impl From<HeartbeatStatus> for PresenceStatus {
    fn from(s: HeartbeatStatus) -> Self {
        match s {
            HeartbeatStatus::Online => Self::Online,
            HeartbeatStatus::Idle => Self::Idle,
            HeartbeatStatus::Paused => Self::Paused,
        }
    }
}

/// `POST /api/enroll`: trade an enrolment code for a device token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The code an admin issued (case and dashes are ignored).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub code: String,
    /// The OS user name on the device.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub username: String,
    /// The device's host name.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub hostname: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct EnrollResponse {
    /// The device token; shown once, keep it in the OS keyring.
    pub token: String,
    pub employee: EmployeeRef,
    pub device_id: i64,
}

impl std::fmt::Debug for EnrollResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollResponse")
            .field("token", &"***")
            .field("employee", &self.employee)
            .field("device_id", &self.device_id)
            .finish()
    }
}

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct EmployeeRef {
    pub id: i64,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub username: String,
    pub display_name: Option<String>,
}

/// `POST /api/heartbeat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    /// The OS user name, as reported by the device.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub username: String,
    /// The host name, as reported by the device.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub hostname: String,
    pub status: HeartbeatStatus,
    /// When the heartbeat was taken, RFC 3339 with the device's UTC offset.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub timestamp: DateTime<FixedOffset>,
    /// Chosen by the agent; a retry with the same id is stored once.
    pub event_id: Uuid,
}

/// What the server answers to an accepted event (heartbeat).
/// A retry answers exactly what the first delivery did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct EventAccepted {
    pub event_id: Uuid,
    pub received_at: DateTime<Utc>,
}

/// The `meta` part of `POST /api/log` (multipart/form-data with a `screenshot` part).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LogMeta {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub username: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub hostname: String,
    /// The device's own addresses (`local-ip-address`).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub local_ips: Vec<IpAddr>,
    /// The public address the device learnt from `GET /api/whoami`, if any.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default)]
    pub public_ip: Option<IpAddr>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub timestamp: DateTime<FixedOffset>,
    pub event_id: Uuid,
}

/// Approximate location resolved on the server from the observed public IP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Location {
    pub city: Option<String>,
    pub region: Option<String>,
    pub country: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country_code: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub accuracy_radius_km: Option<u16>,
}

/// Image formats the server accepts for screenshots (judged from the bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Png,
    Jpeg,
    Webp,
}

impl ImageFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpeg",
            Self::Webp => "webp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Png, Self::Jpeg, Self::Webp]
            .into_iter()
            .find(|f| f.as_str() == s)
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
        }
    }
}

/// A stored detailed log, as `POST /api/log` and the admin API return it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LogRecord {
    pub id: Uuid,
    pub event_id: Uuid,
    pub employee_id: i64,
    pub device_id: i64,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub username: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub hostname: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub local_ips: Vec<IpAddr>,
    /// The public IP the agent reported.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub reported_public_ip: Option<IpAddr>,
    /// The address the server saw the upload come from.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub observed_ip: IpAddr,
    pub location: Option<Location>,
    /// The device's timestamp, with its UTC offset.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub timestamp: DateTime<FixedOffset>,
    pub received_at: DateTime<Utc>,
    pub image: ImageInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ImageInfo {
    pub format: ImageFormat,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// Relative URL of the image on the admin API.
    pub url: String,
}

/// `POST /api/event`: something about the agent itself, not a measurement:
/// it started (with the OS boot time), it is shutting down, or a planned
/// detailed log could not be taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentEventRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub username: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub hostname: String,
    /// When it happened on the device, RFC 3339 with the device's UTC offset.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub timestamp: DateTime<FixedOffset>,
    /// Chosen by the agent; a retry with the same id is stored once.
    pub event_id: Uuid,
    pub event: AgentEvent,
}

/// What happened. `kind` names the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentEvent {
    /// The agent started.
    Startup {
        /// When the operating system booted.
        boot_time: DateTime<Utc>,
        agent_version: String,
        /// Operating system name and version.
        os: String,
    },
    /// The agent is stopping cleanly (shutdown, log-off, service stop).
    Shutdown { reason: ShutdownReason },
    /// A planned detailed log of a working day was not taken.
    LogMissed {
        /// The working day (device-local date).
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
        day: NaiveDate,
        /// Which of the day's logs (0-based).
        #[cfg_attr(feature = "openapi", schema(maximum = 23))]
        slot: u8,
        reason: MissedReason,
        /// Details for people, e.g. the capture error.
        #[serde(default)]
        detail: Option<String>,
    },
    /// The employee accepted the consent of this version
    /// ([`MonitoringPolicy::consent`]); nothing is collected before.
    ConsentGiven { version: String },
}

impl AgentEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Startup { .. } => "startup",
            Self::Shutdown { .. } => "shutdown",
            Self::LogMissed { .. } => "log_missed",
            Self::ConsentGiven { .. } => "consent_given",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ShutdownReason {
    /// The session is ending or the machine is shutting down (SIGTERM, log-off).
    Session,
    /// Stopped by hand (Ctrl-C, `systemctl stop`, Quit in the tray).
    Stopped,
}

/// Why a planned detailed log was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MissedReason {
    /// The computer was off or asleep, or the agent was not running, from the
    /// planned time to the end of the working window.
    NotRunning,
    /// The employee had paused monitoring for the rest of the window.
    Paused,
    /// The screenshot could not be taken (no display, permission refused).
    CaptureFailed,
}

/// `GET /api/whoami`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct WhoAmI {
    /// The public address the server sees for this request.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ip: IpAddr,
    pub employee: EmployeeRef,
    pub device_id: i64,
}

/// The one error shape of the API: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ErrorDetail {
    /// Stable, machine-readable code, e.g. `invalid_token`.
    pub code: String,
    /// Short human-readable explanation.
    pub message: String,
}

pub mod admin {
    //! Admin API types (`/api/admin/...`).
    use super::*;

    /// An employee with the presence derived from the latest heartbeat.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    pub struct Employee {
        pub id: i64,
        pub username: String,
        pub display_name: Option<String>,
        pub active: bool,
        pub created_at: DateTime<Utc>,
        /// Device time of the latest heartbeat, if any.
        pub last_seen: Option<DateTime<Utc>>,
        pub last_hostname: Option<String>,
        pub status: PresenceStatus,
        /// The team the employee belongs to (for team summaries), if any.
        #[serde(default)]
        pub team: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    pub struct EmployeeList {
        pub employees: Vec<Employee>,
        /// Heartbeat interval the status is derived with (offline after two).
        pub heartbeat_interval_secs: u64,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    #[serde(deny_unknown_fields)]
    pub struct NewEmployee {
        pub username: String,
        #[serde(default)]
        pub display_name: Option<String>,
        #[serde(default)]
        pub team: Option<String>,
    }

    /// `PUT /api/admin/employees/{id}/team`: `{"team": "Support"}`, or
    /// `{"team": null}` to take the employee out of any team.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    #[serde(deny_unknown_fields)]
    pub struct TeamChange {
        pub team: Option<String>,
    }

    /// An admin token as listed: never the token itself.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    pub struct AdminToken {
        pub id: i64,
        pub label: String,
        pub created_at: DateTime<Utc>,
        /// After this the token is refused; `null`: it does not expire.
        pub expires_at: Option<DateTime<Utc>>,
        /// Last accepted use, to the minute.
        pub last_used_at: Option<DateTime<Utc>>,
        pub revoked_at: Option<DateTime<Utc>>,
    }

    /// `POST /api/admin/admin-tokens`.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    #[serde(deny_unknown_fields)]
    pub struct NewAdminToken {
        /// What the token is for, e.g. "dashboard" or "alice" (1 to 100 characters).
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
        pub label: String,
        /// Days until it expires (1 to 3650); omitted: it does not expire.
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3650))]
        pub expires_days: Option<u32>,
    }

    /// A new admin token: the token is shown once, here.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    pub struct CreatedAdminToken {
        pub token: String,
        #[serde(flatten)]
        pub info: AdminToken,
    }

    /// A freshly issued enrolment code. Shown once.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    pub struct EnrollmentCode {
        pub employee_id: i64,
        pub code: String,
        pub expires_at: DateTime<Utc>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    pub struct CreatedEmployee {
        pub employee: Employee,
        pub enrollment: EnrollmentCode,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    pub struct Device {
        pub id: i64,
        pub employee_id: i64,
        pub username: String,
        pub hostname: String,
        pub created_at: DateTime<Utc>,
        pub revoked_at: Option<DateTime<Utc>>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    pub struct HeartbeatRecord {
        pub event_id: Uuid,
        pub employee_id: i64,
        pub device_id: i64,
        pub username: String,
        pub hostname: String,
        pub status: HeartbeatStatus,
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        pub timestamp: DateTime<FixedOffset>,
        pub received_at: DateTime<Utc>,
    }

    /// A stored agent event (startup, shutdown, missed log).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    pub struct AgentEventRecord {
        pub event_id: Uuid,
        pub employee_id: i64,
        pub device_id: i64,
        pub username: String,
        pub hostname: String,
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        pub timestamp: DateTime<FixedOffset>,
        pub received_at: DateTime<Utc>,
        pub event: AgentEvent,
    }

    /// A consent an employee gave on one of their devices.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    pub struct ConsentEntry {
        pub event_id: Uuid,
        pub device_id: i64,
        /// `Consent::version` of the text that was accepted.
        pub version: String,
        /// When the employee accepted, device time with its offset.
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        pub accepted_at: DateTime<FixedOffset>,
        pub received_at: DateTime<Utc>,
    }

    /// A stored bucket of activity.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    pub struct ActivityRecord {
        pub event_id: Uuid,
        pub employee_id: i64,
        pub device_id: i64,
        pub username: String,
        pub hostname: String,
        /// Start of the bucket, device time with its offset.
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        pub start: DateTime<FixedOffset>,
        pub duration_secs: u32,
        pub observed_secs: u32,
        pub active_secs: Option<u32>,
        pub idle_secs: Option<u32>,
        pub apps: Vec<crate::AppTime>,
        pub sites: Vec<crate::SiteTime>,
        pub key_presses: Option<u32>,
        pub received_at: DateTime<Utc>,
    }

    /// The length of a summary.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    #[serde(rename_all = "snake_case")]
    pub enum Period {
        /// One calendar day in the company's time zone.
        Day,
        /// One ISO week, Monday to Sunday.
        Week,
        /// One calendar month.
        Month,
    }

    /// Where a summary's active and idle seconds come from.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    #[serde(rename_all = "snake_case")]
    pub enum ActiveIdleSource {
        /// Activity buckets (the policy's `idle_time` switch): measured input.
        Activity,
        /// Heartbeat statuses (online or idle), one interval each.
        Heartbeats,
        /// Some days one, some the other.
        Mixed,
        /// Nothing was received.
        None,
    }

    /// A name and the seconds spent on it.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    pub struct NamedSecs {
        pub name: String,
        pub secs: u64,
    }

    /// The figures of a day, a week, a month, for one employee or a team.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    pub struct SummaryFigures {
        /// First and last heartbeat, in the company's time zone.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
        pub first_seen: Option<DateTime<FixedOffset>>,
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
        pub last_seen: Option<DateTime<FixedOffset>>,
        /// Signed in and not paused: each heartbeat counts until the next
        /// one, at most one heartbeat interval.
        pub online_secs: u64,
        pub active_secs: u64,
        pub idle_secs: u64,
        pub active_idle_source: ActiveIdleSource,
        pub paused_secs: u64,
        /// When the computers booted (from the agent's start-up reports).
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
        pub boots: Vec<DateTime<FixedOffset>>,
        /// When the agents stopped with the session or the machine.
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
        pub shutdowns: Vec<DateTime<FixedOffset>>,
        /// Applications by time, most first (at most 10).
        pub top_apps: Vec<NamedSecs>,
        /// Websites by time, most first (at most 10).
        pub top_sites: Vec<NamedSecs>,
        /// Key presses counted, where the policy switches counting on.
        pub key_presses: Option<u64>,
        pub logs_taken: u32,
        /// Working days in the period (up to today) × the policy's logs per day.
        pub logs_expected: u32,
    }

    /// One day of a summary.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    pub struct DaySummary {
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
        pub date: NaiveDate,
        /// Length of the day in hours: 24, or 23 and 25 on DST changes.
        pub hours: u32,
        pub figures: SummaryFigures,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    pub struct EmployeeSummary {
        pub employee: EmployeeRef,
        pub team: Option<String>,
        pub totals: SummaryFigures,
        pub days: Vec<DaySummary>,
    }

    /// `GET /api/admin/summary`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    pub struct Summary {
        pub period: Period,
        /// "2026-12-01", "2026-W49" or "2026-12".
        pub label: String,
        /// The company's time zone (IANA name) every day is cut in.
        pub timezone: String,
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        pub start: DateTime<FixedOffset>,
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        pub end: DateTime<FixedOffset>,
        /// The team asked for, if any.
        pub team: Option<String>,
        pub employees: Vec<EmployeeSummary>,
        /// Everyone above together (team summaries).
        pub team_totals: Option<SummaryFigures>,
    }

    /// One page of a listing; pass `next_cursor` as `cursor` for the next.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(ToSchema))]
    pub struct Page<T> {
        pub items: Vec<T>,
        pub next_cursor: Option<String>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_round_trips_with_its_offset() {
        let json = r#"{"username":"ana","hostname":"lap-1","status":"idle",
            "timestamp":"2026-03-29T09:15:00+02:00",
            "event_id":"6b3a3f0e-3c57-4a55-9b8e-2a43e0a0c001"}"#;
        let hb: HeartbeatRequest = serde_json::from_str(json).unwrap();
        assert_eq!(hb.status, HeartbeatStatus::Idle);
        assert_eq!(hb.timestamp.offset().local_minus_utc(), 7200);
        let back = serde_json::to_string(&hb).unwrap();
        assert!(back.contains("2026-03-29T09:15:00+02:00"), "{back}");
    }

    #[test]
    fn heartbeat_refuses_unknown_status_and_fields() {
        let bad_status = r#"{"username":"a","hostname":"h","status":"away",
            "timestamp":"2026-03-29T09:15:00Z","event_id":"6b3a3f0e-3c57-4a55-9b8e-2a43e0a0c001"}"#;
        assert!(serde_json::from_str::<HeartbeatRequest>(bad_status).is_err());
        let extra = r#"{"username":"a","hostname":"h","status":"online","x":1,
            "timestamp":"2026-03-29T09:15:00Z","event_id":"6b3a3f0e-3c57-4a55-9b8e-2a43e0a0c001"}"#;
        assert!(serde_json::from_str::<HeartbeatRequest>(extra).is_err());
    }

    #[test]
    fn agent_events_are_tagged_by_kind() {
        let json = r#"{"username":"a","hostname":"h","timestamp":"2026-03-29T22:00:00+02:00",
            "event_id":"6b3a3f0e-3c57-4a55-9b8e-2a43e0a0c001",
            "event":{"kind":"log_missed","day":"2026-03-29","slot":1,"reason":"not_running"}}"#;
        let ev: AgentEventRequest = serde_json::from_str(json).unwrap();
        assert_eq!(
            ev.event,
            AgentEvent::LogMissed {
                day: NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(),
                slot: 1,
                reason: MissedReason::NotRunning,
                detail: None
            }
        );
        let unknown = json.replace("log_missed", "lunch_break");
        assert!(serde_json::from_str::<AgentEventRequest>(&unknown).is_err());
    }

    #[test]
    fn status_strings_parse_back() {
        for s in HeartbeatStatus::ALL {
            assert_eq!(HeartbeatStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(HeartbeatStatus::parse("ONLINE"), None);
    }

    #[test]
    fn enroll_response_debug_hides_the_token() {
        let r = EnrollResponse {
            token: "wfh_d_secret".into(),
            employee: EmployeeRef {
                id: 1,
                username: "ana".into(),
                display_name: None,
            },
            device_id: 7,
        };
        assert!(!format!("{r:?}").contains("secret"));
    }
}
