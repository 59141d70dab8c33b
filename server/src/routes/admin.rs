//! Admin API (`/api/admin/...`), for admin tokens only.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply as _};
use wfh_protocol::admin::{
    CreatedEmployee, Device, Employee, EmployeeList, EnrollmentCode, NewEmployee, Page,
};

use super::{admin, json, reject};
use crate::db::{employee_view, Cursor, ListQuery};
use crate::error::ApiError;
use crate::state::{with_state, AppState};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

pub fn routes(
    state: &AppState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let base = with_state(state);
    let list_employees = base
        .clone()
        .and(warp::path!("employees"))
        .and(warp::get())
        .and_then(list_employees);
    let add_employee = base
        .clone()
        .and(warp::path!("employees"))
        .and(warp::post())
        .and(super::json_body(16 * 1024))
        .and_then(add_employee);
    let get_employee = base
        .clone()
        .and(warp::path!("employees" / i64))
        .and(warp::get())
        .and_then(get_employee);
    let set_active = base
        .clone()
        .and(warp::path!("employees" / i64 / String))
        .and(warp::post())
        .and_then(set_active);
    let devices = base
        .clone()
        .and(warp::path!("employees" / i64 / "devices"))
        .and(warp::get())
        .and_then(list_devices);
    let new_code = base
        .clone()
        .and(warp::path!("employees" / i64 / "enrollment-codes"))
        .and(warp::post())
        .and_then(new_code);
    let revoke = base
        .clone()
        .and(warp::path!("devices" / i64 / "revoke"))
        .and(warp::post())
        .and_then(revoke_device);
    let heartbeats = base
        .clone()
        .and(warp::path!("heartbeats"))
        .and(warp::get())
        .and(warp::query::<ListParams>())
        .and_then(list_heartbeats);
    let events = base
        .clone()
        .and(warp::path!("events"))
        .and(warp::get())
        .and(warp::query::<ListParams>())
        .and_then(list_events);
    let logs = base
        .clone()
        .and(warp::path!("logs"))
        .and(warp::get())
        .and(warp::query::<ListParams>())
        .and_then(list_logs);
    let log = base
        .clone()
        .and(warp::path!("logs" / Uuid))
        .and(warp::get())
        .and_then(get_log);
    let screenshot = base
        .clone()
        .and(warp::path!("logs" / Uuid / "screenshot"))
        .and(warp::get())
        .and_then(screenshot);
    let thumbnail = base
        .clone()
        .and(warp::path!("logs" / Uuid / "thumbnail"))
        .and(warp::get())
        .and_then(thumbnail);
    let consents = base
        .clone()
        .and(warp::path!("employees" / i64 / "consents"))
        .and(warp::get())
        .and_then(list_consents);
    let get_policy = base
        .clone()
        .and(warp::path!("policy"))
        .and(warp::get())
        .and_then(get_policy);
    let put_policy = base
        .clone()
        .and(warp::path!("policy"))
        .and(warp::put())
        .and(super::json_body(16 * 1024))
        .and_then(put_policy);
    let set_team = base
        .clone()
        .and(warp::path!("employees" / i64 / "team"))
        .and(warp::put())
        .and(super::json_body(16 * 1024))
        .and_then(set_team);
    let activity = base
        .clone()
        .and(warp::path!("activity"))
        .and(warp::get())
        .and(warp::query::<ListParams>())
        .and_then(list_activity);
    let summary = base
        .clone()
        .and(warp::path!("summary"))
        .and(warp::get())
        .and(warp::query::<SummaryParams>())
        .and_then(summary);
    let export = base
        .and(warp::path!("logs" / "export" / String))
        .and(warp::get())
        .and(warp::query::<ExportParams>())
        .and_then(export);
    let any = list_employees
        .or(add_employee)
        .unify()
        .or(get_employee)
        .unify()
        .or(devices)
        .unify()
        .or(new_code)
        .unify()
        .or(set_active)
        .unify()
        .or(revoke)
        .unify()
        .or(heartbeats)
        .unify()
        .or(events)
        .unify()
        .or(logs)
        .unify()
        .or(log)
        .unify()
        .or(screenshot)
        .unify()
        .or(thumbnail)
        .unify()
        .or(export)
        .unify()
        .or(consents)
        .unify()
        .or(get_policy)
        .unify()
        .or(put_policy)
        .unify()
        .boxed();
    // Boxed in groups: one chain of this many filters overflows the
    // compiler's type recursion limit in optimised builds.
    let insight = set_team.or(activity).unify().or(summary).unify().boxed();
    let any = any
        .or(insight)
        .unify()
        .or(super::admin_tokens::routes(state).boxed())
        .unify();
    // Authentication once, after the prefix match.
    warp::path("api")
        .and(warp::path("admin"))
        .and(admin(state))
        .and(any)
}

/// Query of the two listings. Dates are RFC 3339 or `YYYY-MM-DD` (UTC; `to`
/// as a date includes that whole day).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub employee_id: Option<i64>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// 1 to 1000; default 100.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn parse_bound(field: &'static str, s: &str, end_of_day: bool) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        let t = t.with_timezone(&Utc);
        crate::summary::plausible_date(field, t.date_naive())?;
        return Ok(t);
    }
    let day = crate::summary::parse_day(field, s).map_err(|_| {
        ApiError::field(
            field,
            "expected RFC 3339 or YYYY-MM-DD, of a year from 1970 to 9998",
        )
    })?;
    let day = if end_of_day { day + Duration::days(1) } else { day };
    Ok(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
}

impl ListParams {
    fn query(&self) -> Result<ListQuery, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::field(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
        let q = ListQuery {
            employee_id: self.employee_id,
            from: self
                .from
                .as_deref()
                .map(|s| parse_bound("from", s, false))
                .transpose()?,
            to: self
                .to
                .as_deref()
                .map(|s| parse_bound("to", s, true))
                .transpose()?,
            limit,
            after: self
                .cursor
                .as_deref()
                .map(|c| {
                    Cursor::decode(c).ok_or_else(|| ApiError::field("cursor", "not a cursor from this API"))
                })
                .transpose()?,
        };
        if let (Some(from), Some(to)) = (q.from, q.to) {
            if from > to {
                return Err(ApiError::field("from", "is after `to`"));
            }
        }
        Ok(q)
    }
}

fn page<T>(items: Vec<T>, limit: u32, key: impl Fn(&T) -> Cursor) -> Page<T> {
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|last| key(last).encode()))
        .flatten();
    Page { items, next_cursor }
}

async fn employee_with_presence(state: &AppState, id: i64) -> Result<Employee, ApiError> {
    let now = state.clock.now();
    let interval = crate::policy::heartbeat_interval(state);
    state
        .store
        .employee_with_presence(id)
        .await?
        .map(|row| employee_view(row, now, interval))
        .ok_or(ApiError::NotFound("employee"))
}

/// Every employee, with last-seen time and presence status.
#[utoipa::path(get, path = "/api/admin/employees", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = EmployeeList), (status = 401, body = wfh_protocol::ErrorBody),
              (status = 403, body = wfh_protocol::ErrorBody)))]
pub async fn list_employees(state: AppState) -> Result<warp::reply::Response, Rejection> {
    let now = state.clock.now();
    let interval = crate::policy::heartbeat_interval(&state);
    let mut employees: Vec<Employee> = state
        .store
        .employees_with_presence()
        .await
        .map_err(reject)?
        .into_iter()
        .map(|row| employee_view(row, now, interval))
        .collect();
    employees.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(json(
        StatusCode::OK,
        &EmployeeList {
            employees,
            heartbeat_interval_secs: interval,
        },
    ))
}

/// Create an employee code and enrolment code (shown once).
pub async fn create_employee(
    state: &AppState,
    username: &str,
    display_name: Option<&str>,
    team: Option<&str>,
) -> Result<CreatedEmployee, ApiError> {
    crate::ingest::check_name("username", username)?;
    let team = team.map(check_team).transpose()?;
    let who = state
        .store
        .create_employee(username.trim(), display_name.map(str::trim), state.clock.now())
        .await?;
    if team.is_some() {
        state.store.set_employee_team(who.id, team.as_deref()).await?;
    }
    let enrollment = issue_code(state, who.id).await?;
    tracing::info!(employee = who.id, "employee added");
    Ok(CreatedEmployee {
        employee: employee_with_presence(state, who.id).await?,
        enrollment,
    })
}

pub async fn issue_code(state: &AppState, employee_id: i64) -> Result<EnrollmentCode, ApiError> {
    let code = crate::auth::new_enrollment_code();
    let now = state.clock.now();
    let ttl = i64::try_from(state.config.enrollment_code_ttl_hours).unwrap_or(24 * 365);
    let expires_at = now + Duration::hours(ttl);
    state
        .store
        .add_enrollment_code(
            employee_id,
            &crate::auth::hash_enrollment_code(&code),
            now,
            expires_at,
        )
        .await?;
    Ok(EnrollmentCode {
        employee_id,
        code,
        expires_at,
    })
}

/// Add an employee; answers with a fresh enrolment code.
#[utoipa::path(post, path = "/api/admin/employees", tag = "admin", security(("admin_token" = [])),
    request_body = NewEmployee,
    responses((status = 201, body = CreatedEmployee), (status = 409, body = wfh_protocol::ErrorBody)))]
pub async fn add_employee(state: AppState, new: NewEmployee) -> Result<warp::reply::Response, Rejection> {
    let created = create_employee(
        &state,
        &new.username,
        new.display_name.as_deref(),
        new.team.as_deref(),
    )
    .await?;
    Ok(json(StatusCode::CREATED, &created))
}

/// One employee.
#[utoipa::path(get, path = "/api/admin/employees/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "the employee's id")),
    responses((status = 200, body = Employee), (status = 404, body = wfh_protocol::ErrorBody)))]
pub async fn get_employee(state: AppState, id: i64) -> Result<warp::reply::Response, Rejection> {
    Ok(json(StatusCode::OK, &employee_with_presence(&state, id).await?))
}

/// `POST /api/admin/employees/{id}/disable` or `/enable`. A disabled employee's
/// devices are refused (403) until enabled again.
#[utoipa::path(post, path = "/api/admin/employees/{id}/{action}", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "the employee's id"), ("action" = String, Path, description = "`disable` or `enable`")),
    responses((status = 200, body = Employee), (status = 404, body = wfh_protocol::ErrorBody)))]
pub async fn set_active(
    state: AppState,
    id: i64,
    action: String,
) -> Result<warp::reply::Response, Rejection> {
    let active = match action.as_str() {
        "disable" => false,
        "enable" => true,
        _ => return Err(warp::reject::not_found()),
    };
    state
        .store
        .set_employee_active(id, active)
        .await
        .map_err(reject)?;
    state.auth.forget_devices();
    tracing::info!(employee = id, active, "employee status changed");
    Ok(json(StatusCode::OK, &employee_with_presence(&state, id).await?))
}

/// An employee's devices.
#[utoipa::path(get, path = "/api/admin/employees/{id}/devices", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "the employee's id")),
    responses((status = 200, body = Vec<Device>)))]
pub async fn list_devices(state: AppState, id: i64) -> Result<warp::reply::Response, Rejection> {
    state.store.employee(id).await.map_err(reject)?;
    Ok(json(
        StatusCode::OK,
        &state.store.devices(id).await.map_err(reject)?,
    ))
}

/// Issue another enrolment code (a new laptop, a lost code).
#[utoipa::path(post, path = "/api/admin/employees/{id}/enrollment-codes", tag = "admin",
    security(("admin_token" = [])), params(("id" = i64, Path, description = "the employee's id")), responses((status = 201, body = EnrollmentCode)))]
pub async fn new_code(state: AppState, id: i64) -> Result<warp::reply::Response, Rejection> {
    state.store.employee(id).await.map_err(reject)?;
    Ok(json(StatusCode::CREATED, &issue_code(&state, id).await?))
}

/// Revoke a device: its token stops working at once.
#[utoipa::path(post, path = "/api/admin/devices/{id}/revoke", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "the device's id")),
    responses((status = 200, body = Device), (status = 404, body = wfh_protocol::ErrorBody)))]
pub async fn revoke_device(state: AppState, id: i64) -> Result<warp::reply::Response, Rejection> {
    let device = state
        .store
        .revoke_device(id, state.clock.now())
        .await
        .map_err(reject)?;
    state.auth.forget_devices();
    tracing::info!(device = id, "device revoked");
    Ok(json(StatusCode::OK, &device))
}

/// Heartbeats, newest first, filtered and paginated.
#[utoipa::path(get, path = "/api/admin/heartbeats", tag = "admin", security(("admin_token" = [])),
    params(ListParams), responses((status = 200, body = Page<wfh_protocol::admin::HeartbeatRecord>)))]
pub async fn list_heartbeats(
    state: AppState,
    params: ListParams,
) -> Result<warp::reply::Response, Rejection> {
    let q = params.query()?;
    let items = state.store.heartbeats(&q).await.map_err(reject)?;
    Ok(json(
        StatusCode::OK,
        &page(items, q.limit, |h| Cursor {
            occurred_at: h.timestamp.with_timezone(&Utc),
            id: h.event_id,
        }),
    ))
}

/// Agent events (startup with boot time, shutdown, missed detailed logs and
/// why), newest first, filtered and paginated.
#[utoipa::path(get, path = "/api/admin/events", tag = "admin", security(("admin_token" = [])),
    params(ListParams), responses((status = 200, body = Page<wfh_protocol::admin::AgentEventRecord>)))]
pub async fn list_events(state: AppState, params: ListParams) -> Result<warp::reply::Response, Rejection> {
    let q = params.query()?;
    let items = state.store.agent_events(&q).await.map_err(reject)?;
    Ok(json(
        StatusCode::OK,
        &page(items, q.limit, |e| Cursor {
            occurred_at: e.timestamp.with_timezone(&Utc),
            id: e.event_id,
        }),
    ))
}

/// Buckets of activity, newest first, filtered and paginated.
#[utoipa::path(get, path = "/api/admin/activity", tag = "admin", security(("admin_token" = [])),
    params(ListParams), responses((status = 200, body = Page<wfh_protocol::admin::ActivityRecord>)))]
pub async fn list_activity(state: AppState, params: ListParams) -> Result<warp::reply::Response, Rejection> {
    let q = params.query()?;
    let items = state.store.activity(&q).await.map_err(reject)?;
    Ok(json(
        StatusCode::OK,
        &page(items, q.limit, |a| Cursor {
            occurred_at: a.start.with_timezone(&Utc),
            id: a.event_id,
        }),
    ))
}

fn check_team(team: &str) -> Result<String, ApiError> {
    let team = team.trim();
    if team.is_empty() || team.chars().count() > 100 || team.chars().any(char::is_control) {
        return Err(ApiError::field("team", "must be 1 to 100 characters"));
    }
    Ok(team.to_owned())
}

/// Put an employee in a team, or in none (`{"team": null}`).
#[utoipa::path(put, path = "/api/admin/employees/{id}/team", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "the employee's id")),
    request_body = wfh_protocol::admin::TeamChange,
    responses((status = 200, body = Employee), (status = 404, body = wfh_protocol::ErrorBody),
              (status = 422, body = wfh_protocol::ErrorBody)))]
pub async fn set_team(
    state: AppState,
    id: i64,
    change: wfh_protocol::admin::TeamChange,
) -> Result<warp::reply::Response, Rejection> {
    let team = change.team.as_deref().map(check_team).transpose()?;
    state
        .store
        .set_employee_team(id, team.as_deref())
        .await
        .map_err(reject)?;
    tracing::info!(
        employee = id,
        team = team.as_deref().unwrap_or(""),
        "team changed"
    );
    Ok(json(StatusCode::OK, &employee_with_presence(&state, id).await?))
}

/// Query of `GET /api/admin/summary`: one employee, one team, or everyone.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SummaryParams {
    /// `day`, `week` (ISO, Monday to Sunday) or `month`.
    pub period: wfh_protocol::admin::Period,
    /// Any day of the period, `YYYY-MM-DD` (in the company's time zone).
    /// Default: today.
    pub date: Option<String>,
    pub employee_id: Option<i64>,
    pub team: Option<String>,
    /// `json` (default), `csv` or `pdf`.
    pub format: Option<String>,
}

/// Daily, weekly or monthly summary per employee (and the team's totals
/// with `team`), cut in the company's time zone (`company_timezone`); as
/// JSON, CSV or a PDF report.
#[utoipa::path(get, path = "/api/admin/summary", tag = "admin", security(("admin_token" = [])),
    params(SummaryParams),
    responses((status = 200, body = wfh_protocol::admin::Summary), (status = 404, body = wfh_protocol::ErrorBody),
              (status = 422, body = wfh_protocol::ErrorBody)))]
pub async fn summary(state: AppState, params: SummaryParams) -> Result<warp::reply::Response, Rejection> {
    let format = match params.format.as_deref() {
        None | Some("json") => None,
        Some(f @ ("csv" | "pdf")) => Some(f),
        Some(_) => return Err(reject(ApiError::field("format", "must be json, csv or pdf"))),
    };
    let summary = crate::summary::for_request(&state, &params).await?;
    if let Some(format) = format {
        let name = format!(
            "wfh-summary-{}{}.{format}",
            summary.label,
            summary
                .team
                .as_deref()
                .map(|t| format!("-{}", crate::export::file_safe(t)))
                .unwrap_or_default()
        );
        let (body, mime) = if format == "pdf" {
            (
                crate::export::summary_pdf(&summary, state.clock.now()),
                "application/pdf",
            )
        } else {
            (crate::export::summary_csv(&summary), "text/csv; charset=utf-8")
        };
        return warp::http::Response::builder()
            .status(StatusCode::OK)
            .header("content-type", mime)
            .header("content-disposition", format!("attachment; filename=\"{name}\""))
            .body(body.into())
            .map_err(|e| reject(ApiError::internal(e)));
    }
    Ok(json(StatusCode::OK, &summary))
}

/// Detailed logs, newest first, filtered and paginated.
#[utoipa::path(get, path = "/api/admin/logs", tag = "admin", security(("admin_token" = [])),
    params(ListParams), responses((status = 200, body = Page<wfh_protocol::LogRecord>)))]
pub async fn list_logs(state: AppState, params: ListParams) -> Result<warp::reply::Response, Rejection> {
    let q = params.query()?;
    let items = state.store.logs(&q).await.map_err(reject)?;
    Ok(json(
        StatusCode::OK,
        &page(items, q.limit, |l| Cursor {
            occurred_at: l.timestamp.with_timezone(&Utc),
            id: l.id,
        }),
    ))
}

/// One detailed log.
#[utoipa::path(get, path = "/api/admin/logs/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = uuid::Uuid, Path, description = "the detailed log's id")),
    responses((status = 200, body = wfh_protocol::LogRecord), (status = 404, body = wfh_protocol::ErrorBody)))]
pub async fn get_log(state: AppState, id: Uuid) -> Result<warp::reply::Response, Rejection> {
    let (record, _) = stored_log(&state, id).await?;
    Ok(json(StatusCode::OK, &record))
}

/// A log and its screenshot's stored path, or 404.
async fn stored_log(state: &AppState, id: Uuid) -> Result<(wfh_protocol::LogRecord, String), Rejection> {
    state
        .store
        .log(id)
        .await
        .map_err(reject)?
        .ok_or_else(|| reject(ApiError::NotFound("log")))
}

/// An image file's bytes as a response; a missing file is a 404.
fn image_reply(
    read: std::io::Result<Vec<u8>>,
    mime: &'static str,
    cache: &'static str,
) -> Result<warp::reply::Response, Rejection> {
    let bytes = match read {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(reject(ApiError::NotFound("screenshot")))
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            tracing::warn!(error = %e, "a stored screenshot cannot be decoded for its thumbnail");
            return Err(reject(ApiError::ScreenshotUnreadable));
        }
        Err(e) => return Err(reject(ApiError::internal(e))),
    };
    let mut res = warp::reply::Response::new(bytes.into());
    let h = res.headers_mut();
    h.insert("content-type", warp::http::HeaderValue::from_static(mime));
    h.insert("cache-control", warp::http::HeaderValue::from_static(cache));
    Ok(res)
}

/// The screenshot of a detailed log.
#[utoipa::path(get, path = "/api/admin/logs/{id}/screenshot", tag = "admin", security(("admin_token" = [])),
    params(("id" = uuid::Uuid, Path, description = "the detailed log's id")),
    responses((status = 200, content_type = "image/*", description = "the image as uploaded"),
              (status = 404, body = wfh_protocol::ErrorBody)))]
pub async fn screenshot(state: AppState, id: Uuid) -> Result<warp::reply::Response, Rejection> {
    let (record, path) = stored_log(&state, id).await?;
    let file = state
        .screenshots
        .resolve(&path)
        .ok_or(ApiError::NotFound("screenshot"))?;
    let mut res = image_reply(
        tokio::fs::read(&file).await,
        record.image.format.mime(),
        "private, max-age=3600",
    )?;
    if let Ok(v) = format!("inline; filename=\"{id}.{}\"", record.image.format.extension()).parse() {
        res.headers_mut().insert("content-disposition", v);
    }
    Ok(res)
}

/// A small JPEG of a detailed log's screenshot (at most 384 pixels a side),
/// made on first use and kept until retention deletes the screenshot.
#[utoipa::path(get, path = "/api/admin/logs/{id}/thumbnail", tag = "admin", security(("admin_token" = [])),
    params(("id" = uuid::Uuid, Path, description = "the detailed log's id")),
    responses((status = 200, content_type = "image/jpeg", description = "the thumbnail"),
              (status = 404, body = wfh_protocol::ErrorBody),
              (status = 422, body = wfh_protocol::ErrorBody, description = "`screenshot_unreadable`: the stored file cannot be decoded (the screenshot itself is still served as stored)")))]
pub async fn thumbnail(state: AppState, id: Uuid) -> Result<warp::reply::Response, Rejection> {
    let (_, path) = stored_log(&state, id).await?;
    image_reply(
        state.screenshots.thumbnail(&path).await,
        "image/jpeg",
        "private, max-age=86400, immutable",
    )
}

/// Filter of an export: the logs page's filter, without paging.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    pub employee_id: Option<i64>,
    /// RFC 3339 or `YYYY-MM-DD` (UTC); default: the retention period.
    pub from: Option<String>,
    pub to: Option<String>,
}

/// `GET /api/admin/logs/export/logs.csv` or `…/logs.pdf`: the detailed logs
/// of a filter, newest first, streamed (the PDF with a thumbnail per log).
#[utoipa::path(get, path = "/api/admin/logs/export/{file}", tag = "admin", security(("admin_token" = [])),
    params(("file" = String, Path, description = "`logs.csv` or `logs.pdf`"), ExportParams),
    responses((status = 200, content_type = "text/csv", description = "CSV, or PDF for logs.pdf"),
              (status = 422, body = wfh_protocol::ErrorBody)))]
pub async fn export(
    state: AppState,
    file: String,
    params: ExportParams,
) -> Result<warp::reply::Response, Rejection> {
    let pdf = match file.as_str() {
        "logs.csv" => false,
        "logs.pdf" => true,
        _ => return Err(warp::reject::not_found()),
    };
    let now = state.clock.now();
    let list = ListParams {
        employee_id: params.employee_id,
        from: params.from,
        to: params.to,
        limit: None,
        cursor: None,
    };
    let mut query = list.query().map_err(reject)?;
    let days = i64::from(state.config.retention_days);
    let from = query.from.unwrap_or(now - Duration::days(days));
    let to = query.to.unwrap_or(now + Duration::days(1));
    if to - from > Duration::days(days + 2) {
        return Err(reject(ApiError::field(
            "from",
            format!("an export covers at most the retention period ({days} days)"),
        )));
    }
    query.from = Some(from);
    query.to = Some(to);
    if let Some(id) = query.employee_id {
        state.store.employee(id).await.map_err(reject)?;
    }
    let people = state
        .store
        .employees_with_presence()
        .await
        .map_err(reject)?
        .into_iter()
        .map(|row| {
            let e = row.who;
            (
                e.id,
                crate::export::Person {
                    username: e.username,
                    display_name: e.display_name,
                },
            )
        })
        .collect();
    let scope = crate::export::Scope {
        query,
        people,
        generated_at: now,
    };
    let name = format!(
        "wfh-logs-{}-to-{}.{}",
        from.format("%Y-%m-%d"),
        (to - Duration::microseconds(1)).format("%Y-%m-%d"),
        if pdf { "pdf" } else { "csv" }
    );
    let body = if pdf {
        warp::reply::stream(crate::export::stream(|tx| crate::export::pdf(state, scope, tx))).into_response()
    } else {
        warp::reply::stream(crate::export::stream(|tx| crate::export::csv(state, scope, tx))).into_response()
    };
    let mut res = body;
    let h = res.headers_mut();
    h.insert(
        "content-type",
        warp::http::HeaderValue::from_static(if pdf {
            "application/pdf"
        } else {
            "text/csv; charset=utf-8"
        }),
    );
    if let Ok(v) = format!("attachment; filename=\"{name}\"").parse() {
        h.insert("content-disposition", v);
    }
    h.insert("cache-control", warp::http::HeaderValue::from_static("no-store"));
    Ok(res)
}

/// An employee's consents, newest first.
#[utoipa::path(get, path = "/api/admin/employees/{id}/consents", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "the employee's id")),
    responses((status = 200, body = Vec<wfh_protocol::admin::ConsentEntry>), (status = 404, body = wfh_protocol::ErrorBody)))]
pub async fn list_consents(state: AppState, id: i64) -> Result<warp::reply::Response, Rejection> {
    state.store.employee(id).await.map_err(reject)?;
    let consents = state.store.consents(id).await.map_err(reject)?;
    Ok(json(StatusCode::OK, &consents))
}

/// The monitoring policy in force.
#[utoipa::path(get, path = "/api/admin/policy", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = wfh_protocol::PolicyDocument)))]
pub async fn get_policy(state: AppState) -> Result<warp::reply::Response, Rejection> {
    let doc = crate::policy::current(&state);
    Ok(json(StatusCode::OK, &doc))
}

/// Replace the monitoring policy. Agents pick it up within the hour (at once
/// on start); a change to what is collected asks every employee to accept
/// the new consent before collection goes on. `retention_days` is the
/// server's setting and is ignored here.
#[utoipa::path(put, path = "/api/admin/policy", tag = "admin", security(("admin_token" = [])),
    request_body = wfh_protocol::MonitoringPolicy,
    responses((status = 200, body = wfh_protocol::PolicyDocument), (status = 422, body = wfh_protocol::ErrorBody)))]
pub async fn put_policy(
    state: AppState,
    policy: wfh_protocol::MonitoringPolicy,
) -> Result<warp::reply::Response, Rejection> {
    let doc = crate::policy::replace(&state, policy).await.map_err(reject)?;
    Ok(json(StatusCode::OK, &doc))
}
