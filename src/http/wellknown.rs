//! Discovery: RFC 8414 metadata and the RFC 7517 key set.
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::crypto::jose::ACCEPTED_ALGS;
use crate::http::AppState;

/// The metadata document, rendered once at start-up.
pub fn metadata_body(state: &AppState) -> Arc<[u8]> {
    let iss = &state.issuer;
    let doc = json!({
        "issuer": iss,
        // An endpoint that refuses every response type (`http/authorize.rs`):
        // the MCP SDKs' metadata schemas require one.
        "authorization_endpoint": format!("{iss}/oauth/authorize"),
        "token_endpoint": format!("{iss}/oauth/token"),
        "jwks_uri": format!("{iss}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{iss}/oauth/introspect"),
        "introspection_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported":
            ACCEPTED_ALGS.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "revocation_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "revocation_endpoint_auth_signing_alg_values_supported":
            ACCEPTED_ALGS.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "grant_types_supported": ["client_credentials", "refresh_token",
            crate::oauth::federation::JWT_BEARER_GRANT, crate::oauth::federation::TOKEN_EXCHANGE_GRANT],
        "token_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported":
            ACCEPTED_ALGS.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        // Only what is true: the authorization endpoint supports no
        // response type, and there is no ID token. RFC 8414 requires the
        // field.
        "response_types_supported": [],
        "scopes_supported": state.scopes_supported,
        "access_token_signing_alg_values_supported": ["ES256", "EdDSA", "RS256"],
    });
    doc.to_string().into_bytes().into()
}

/// RFC 8414 authorization-server metadata (also served at
/// `/.well-known/openid-configuration`).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    responses((status = 200, description = "metadata document", content_type = "application/json")))]
pub async fn metadata(State(body): State<Arc<[u8]>>) -> Response {
    json_bytes(body, HeaderValue::from_static("public, max-age=3600"))
}

/// A pre-rendered JSON document (the OpenAPI description).
pub async fn json_doc(State(body): State<Arc<[u8]>>) -> Response {
    json_bytes(body, HeaderValue::from_static("public, max-age=300"))
}

/// `Cache-Control` for the JWKS: a resource server may cache it for the
/// key publication delay minus the reload interval. A new key reaches every
/// replica's JWKS within one reload interval of its creation and signs no
/// earlier than the publication delay after it, so any copy cached before
/// the key appeared has expired by the time a token signed with it exists.
pub fn jwks_cache_control(config: &crate::config::Config) -> HeaderValue {
    let secs = config
        .key_publication_delay
        .saturating_sub(config.key_reload_interval)
        .as_secs();
    HeaderValue::from_str(&format!("public, max-age={secs}"))
        .unwrap_or_else(|_| HeaderValue::from_static("no-cache"))
}

/// The public signing keys (RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "discovery",
    responses((status = 200, description = "JWK set", content_type = "application/json")))]
pub async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    json_bytes(
        state.keys.current().jwks.clone(),
        state.jwks_cache_control.clone(),
    )
}

fn json_bytes(body: Arc<[u8]>, cache: HeaderValue) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, cache),
        ],
        axum::body::Bytes::from_owner(body),
    )
        .into_response()
}
