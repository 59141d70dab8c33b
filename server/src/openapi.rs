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
    modifiers(&Security),
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
