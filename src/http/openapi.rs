//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! the request/response types (utoipa), rendered once at start-up.
use std::sync::Arc;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::admin::{
    accounts, apis, audit, credentials, members, platform, platform_apis, roles, secrets,
};
use super::{authorize, health, introspect, metrics, token, wellknown};

#[derive(OpenApi)]
#[openapi(
    info(title = "warden", description = "OAuth 2.1 authorization server for service accounts"),
    paths(
        token::token,
        introspect::introspect,
        introspect::revoke,
        wellknown::metadata,
        wellknown::jwks,
        authorize::authorize,
        health::healthz,
        health::readyz,
        metrics::render,
        accounts::list_accounts,
        accounts::create_account,
        accounts::get_account,
        accounts::patch_account,
        accounts::delete_account,
        accounts::disable_account,
        accounts::enable_account,
        secrets::reset_secret,
        secrets::rotate_secret,
        secrets::revoke_secret,
        secrets::account_usage,
        credentials::list_credentials,
        credentials::add_credential,
        credentials::remove_credential,
        accounts::delete_oauth_client,
        roles::list_roles,
        roles::create_role,
        roles::get_role,
        roles::patch_role,
        roles::delete_role,
        roles::list_global_roles,
        roles::create_global_role,
        roles::get_global_role,
        roles::patch_global_role,
        roles::delete_global_role,
        audit::list_audit_events,
        apis::list_apis,
        members::list_members,
        members::patch_member,
        members::delete_member,
        members::list_links,
        members::revoke_link,
        platform::list_orgs,
        platform::create_org,
        platform::get_org,
        platform::patch_org,
        platform::disable_org,
        platform::enable_org,
        platform_apis::list_resource_servers,
        platform_apis::create_resource_server,
        platform_apis::get_resource_server,
        platform_apis::protected_resource_metadata,
        platform_apis::patch_resource_server,
        platform_apis::delete_resource_server,
        platform_apis::reset_rs_secret,
        platform_apis::rotate_rs_secret,
    ),
    components(schemas(super::error::Problem)),
    modifiers(&SecuritySchemes, &OrgScopedPaths)
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                utoipa::openapi::security::HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token requested with resource=<issuer URL>, of an account holding org:manage"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

/// Every org-scoped endpoint is also served at `/api/v1/orgs/{org}/…`
/// (any org for an operator, only its own for anyone else): the document
/// says so by repeating each with the `org` parameter and its 404.
struct OrgScopedPaths;

const ORG_SCOPED: &[&str] = &[
    "/api/v1/service-accounts",
    "/api/v1/oauth/clients",
    "/api/v1/roles",
    "/api/v1/audit-events",
    "/api/v1/members",
    "/api/v1/console-links",
    "/api/v1/apis",
];

impl Modify for OrgScopedPaths {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scoped: Vec<(String, utoipa::openapi::PathItem)> = doc
            .paths
            .paths
            .iter()
            .filter(|(p, _)| ORG_SCOPED.iter().any(|s| p.starts_with(s)))
            .map(|(p, item)| {
                (
                    p.replacen("/api/v1/", "/api/v1/orgs/{org}/", 1),
                    item.clone(),
                )
            })
            .collect();
        let org = org_param();
        for (path, mut item) in scoped {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
                &mut item.put,
            ]
            .into_iter()
            .flatten()
            {
                // Operation ids are unique in a document.
                op.operation_id = op.operation_id.as_ref().map(|id| format!("{id}_in_org"));
                op.parameters
                    .get_or_insert_with(Vec::new)
                    .insert(0, org.clone().into());
                op.responses
                    .responses
                    .entry("404".into())
                    .or_insert_with(|| not_yours().into());
            }
            doc.paths.paths.insert(path, item);
        }
    }
}

/// The `{org}` path parameter.
fn org_param() -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    ParameterBuilder::new()
        .name("org")
        .parameter_in(ParameterIn::Path)
        .required(utoipa::openapi::Required::True)
        .description(Some(
            "the org's slug: any org for an operator, your own otherwise",
        ))
        .schema(Some(utoipa::openapi::schema::Object::with_type(
            utoipa::openapi::schema::Type::String,
        )))
        .build()
}

/// The 404 of an org that does not exist or is not the caller's.
fn not_yours() -> utoipa::openapi::response::Response {
    utoipa::openapi::ResponseBuilder::new()
        .description("No such org, or not yours")
        .content(
            "application/problem+json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// The document as JSON, with `servers` set to this issuer.
pub fn document(issuer: &str) -> Arc<[u8]> {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.servers = Some(vec![utoipa::openapi::Server::new(issuer)]);
    doc.to_json().unwrap_or_default().into_bytes().into()
}

/// The problem answers (RFC 9457) an admin endpoint documents, as a set of
/// the constants below: `responses((status = 200, …), Problems<{ BODY | NOT_FOUND }>)`.
/// Each status has one description, so the document cannot say two things
/// of one answer. Every admin call may also answer 401, 403 and 503.
pub struct Problems<const S: u32>;

pub const MALFORMED: u32 = 1;
pub const INVALID: u32 = 1 << 1;
pub const NOT_FOUND: u32 = 1 << 2;
pub const CONFLICT: u32 = 1 << 3;
pub const PRECONDITION: u32 = 1 << 4;
pub const TOO_LARGE: u32 = 1 << 5;
pub const NOT_JSON: u32 = 1 << 6;
/// A JSON request body: malformed, too large, not JSON, a field invalid.
pub const BODY: u32 = MALFORMED | TOO_LARGE | NOT_JSON | INVALID;
/// A query string: malformed or a parameter invalid.
pub const QUERY: u32 = MALFORMED | INVALID;

const PROBLEMS: [(u32, u16, &str); 10] = [
    (MALFORMED, 400, "Malformed request"),
    (0, 401, "Not authenticated"),
    (0, 403, "Not allowed"),
    (NOT_FOUND, 404, "Not found in your organization"),
    (CONFLICT, 409, "Conflicts with the current state"),
    (PRECONDITION, 412, "If-Match names an older version"),
    (TOO_LARGE, 413, "Body too large"),
    (NOT_JSON, 415, "Body is not JSON"),
    (INVALID, 422, "A field is invalid (named in `field`)"),
    (0, 503, "Temporarily unavailable; retry"),
];

impl<const S: u32> utoipa::IntoResponses for Problems<S> {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        PROBLEMS
            .iter()
            .filter(|(bit, ..)| *bit == 0 || S & bit != 0)
            .map(|(_, status, description)| {
                let content = ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build();
                let response = ResponseBuilder::new()
                    .description(*description)
                    .content("application/problem+json", content)
                    .build();
                (status.to_string(), response.into())
            })
            .collect()
    }
}
