//! The OpenAPI document, derived from the handlers and the wire types.
//! Served at `/api/openapi.json`; a copy is kept in `server/openapi.json`
//! and a test fails when the two differ.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{admin, admin_tokens, dashboard, ingest};

#[derive(OpenApi)]
#[openapi(
    info(title = "WFH Monitor API", description = "Agent ingest and admin API of the WFH Monitor server. \
        Every error is `{\"error\": {\"code\", \"message\"}}`."),
    paths(
        ingest::enroll, ingest::policy, ingest::heartbeat, ingest::agent_event, ingest::activity, ingest::log, ingest::whoami,
        admin::list_employees, admin::add_employee, admin::get_employee, admin::set_active,
        admin::list_devices, admin::new_code, admin::revoke_device, admin::list_heartbeats,
        admin::list_events, admin::list_logs, admin::get_log, admin::screenshot,
        admin::thumbnail, admin::export, admin::list_consents, admin::get_policy, admin::put_policy,
        admin::set_team, admin::list_activity, admin::summary,
        admin_tokens::list_admin_tokens, admin_tokens::create_admin_token, admin_tokens::revoke_admin_token,
        dashboard::sign_in, dashboard::current, dashboard::sign_out,
    ),
    components(schemas(wfh_protocol::LogMeta, wfh_protocol::PresenceStatus)),
    modifiers(&Security, &ErrorResponses, &StrictRequests),
    tags((name = "agent", description = "Called by the agent with a device token"),
         (name = "admin", description = "Called by admins with an admin token"),
         (name = "dashboard", description = "Dashboard sign-in: an admin token becomes a session cookie; \
             the admin API then accepts the cookie, and changes made with it need `X-CSRF-Token`")),
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let bearer = || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("device_token", bearer());
        components.add_security_scheme("admin_token", bearer());
    }
}

/// The error answers every operation can give, documented where they
/// happen rather than written out on each handler: 401 and 403 where a
/// token is needed, 400/413/415/422 where a body is read, 400/422 where a
/// query is, 404 where a path names something.
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for item in doc.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete];
            for op in operations.into_iter().flatten() {
                let mut add = |status: &str, description: &str| {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error(description).into());
                };
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let body = op.request_body.is_some();
                let params = op.parameters.as_deref().unwrap_or_default();
                let in_path = params
                    .iter()
                    .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Path));
                let in_query = params
                    .iter()
                    .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query));
                if secured {
                    add(
                        "401",
                        "`missing_token`, `invalid_token` or `device_revoked`: no valid token",
                    );
                    add(
                        "403",
                        "the wrong kind of token, a disabled employee, or a change made with a session cookie without `X-CSRF-Token`",
                    );
                }
                if body {
                    add("400", "`invalid_body`: the body is not what this operation takes");
                    add("413", "`payload_too_large`: the body is over the limit");
                    add("415", "`unsupported_media_type`: the wrong Content-Type");
                    add("422", "`invalid_field`: a field is out of range");
                }
                if in_query {
                    add("400", "`invalid_query`: an unknown or malformed query parameter");
                    add("422", "`invalid_field`: a query parameter is out of range");
                }
                if in_path {
                    add("404", "`not_found`: nothing with that id");
                }
            }
        }
    }
}

/// What the server enforces on request bodies that the derived schemas do
/// not say: the types read with `deny_unknown_fields` take no other
/// properties, and IP addresses are IPv4 or IPv6 addresses.
struct StrictRequests;

/// Request types that refuse unknown fields (`#[serde(deny_unknown_fields)]`,
/// and the upload, which refuses unknown parts).
const CLOSED_SCHEMAS: [&str; 15] = [
    "EnrollRequest",
    "HeartbeatRequest",
    "LogMeta",
    "AgentEventRequest",
    "AgentEvent",
    "ActivityRequest",
    "AppTime",
    "SiteTime",
    "NewEmployee",
    "TeamChange",
    "NewAdminToken",
    "MonitoringPolicy",
    "PausePolicy",
    "ActivityPolicy",
    "LogUpload",
];

impl Modify for StrictRequests {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{
            AdditionalProperties, AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type,
        };
        use utoipa::openapi::{RefOr, Schema};
        fn close(schema: &mut Schema) {
            match schema {
                Schema::Object(o) => {
                    o.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)))
                }
                Schema::OneOf(one) => one.items.iter_mut().for_each(|i| {
                    if let RefOr::T(s) = i {
                        close(s);
                    }
                }),
                _ => {}
            }
        }
        let ip = |nullable: bool| -> Schema {
            let format = |f| {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(f)))
                    .build()
            };
            let mut any = AnyOfBuilder::new()
                .item(format(KnownFormat::Ipv4))
                .item(format(KnownFormat::Ipv6));
            if nullable {
                any = any.item(ObjectBuilder::new().schema_type(Type::Null).build());
            }
            Schema::AnyOf(any.build())
        };
        let Some(components) = doc.components.as_mut() else {
            return;
        };
        for name in CLOSED_SCHEMAS {
            if let Some(RefOr::T(schema)) = components.schemas.get_mut(name) {
                close(schema);
            }
        }
        if let Some(RefOr::T(Schema::Object(meta))) = components.schemas.get_mut("LogMeta") {
            if let Some(RefOr::T(Schema::Array(list))) = meta.properties.get_mut("local_ips") {
                list.items = utoipa::openapi::schema::ArrayItems::RefOrSchema(Box::new(RefOr::T(ip(false))));
            }
            if let Some(public) = meta.properties.get_mut("public_ip") {
                *public = RefOr::T(ip(true));
            }
        }
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_openapi_document_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        let current = super::document().to_pretty_json().unwrap() + "\n";
        if std::env::var_os("WFH_UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &current).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == current,
            "server/openapi.json is stale: run `WFH_UPDATE_OPENAPI=1 cargo test -p wfh-server openapi` and commit it"
        );
    }
}
