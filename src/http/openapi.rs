//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! the request/response types (utoipa), rendered once at start-up.
use std::sync::Arc;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::admin::{accounts, audit, roles};
use super::{health, introspect, metrics, token, wellknown};

#[derive(OpenApi)]
#[openapi(
    info(title = "warden", description = "OAuth 2.1 authorization server for service accounts"),
    paths(
        token::token,
        introspect::introspect,
        introspect::revoke,
        wellknown::metadata,
        wellknown::jwks,
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
        accounts::reset_secret,
        accounts::rotate_secret,
        accounts::revoke_secret,
        accounts::account_usage,
        accounts::delete_oauth_client,
        roles::list_roles,
        roles::create_role,
        audit::list_audit_events,
    ),
    modifiers(&SecuritySchemes)
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

/// The document as JSON, with `servers` set to this issuer.
pub fn document(issuer: &str) -> Arc<[u8]> {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.servers = Some(vec![utoipa::openapi::Server::new(issuer)]);
    doc.to_json().unwrap_or_default().into_bytes().into()
}
