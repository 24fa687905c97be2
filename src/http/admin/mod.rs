//! The admin API (`/api/v1`): warden's own resource server. Callers are
//! service accounts holding `org:manage`, with a bearer token whose `aud`
//! is the issuer URL. Every call is scoped to the caller's org; errors are
//! RFC 9457 problem documents, shaped here and only here.
pub(crate) mod accounts;
pub(crate) mod apis;
pub(crate) mod audit;
mod auth;
pub(crate) mod credentials;
pub(crate) mod members;
pub(crate) mod platform;
pub(crate) mod platform_apis;
pub(crate) mod query;
pub(crate) mod roles;
pub(crate) mod secrets;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::FromRequest;
use axum::http::header;
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

pub use crate::http::error::{ApiError, Problem};
pub use auth::{AdminCaller, AuditRead, OrgManage, OrgRead, PlatformManage};

use crate::http::AppState;

/// The admin API: the org-scoped endpoints at `/api/v1/…` (the caller's
/// own org) and again at `/api/v1/orgs/{org}/…` (any org for an operator,
/// only its own for anyone else), and the platform endpoints.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .nest("/api/v1", org_routes())
        .nest("/api/v1/orgs/{org}", org_routes())
        .merge(platform::router())
        .layer(axum::middleware::map_response(no_store))
}

/// Admin answers are never cached: some carry a secret once (a created
/// account, a reset), and a browser (the console) calls them all.
async fn no_store(mut r: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let h = r.headers_mut();
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    r
}

fn org_routes() -> Router<Arc<AppState>> {
    use axum::routing::delete;
    Router::new()
        .route(
            "/service-accounts",
            get(accounts::list_accounts).post(accounts::create_account),
        )
        .route(
            "/service-accounts/{id}",
            get(accounts::get_account)
                .patch(accounts::patch_account)
                .delete(accounts::delete_account),
        )
        .route(
            "/service-accounts/{id}/disable",
            post(accounts::disable_account),
        )
        .route(
            "/service-accounts/{id}/enable",
            post(accounts::enable_account),
        )
        .route(
            "/service-accounts/{id}/reset-secret",
            post(secrets::reset_secret),
        )
        .route(
            "/service-accounts/{id}/rotate-secret",
            post(secrets::rotate_secret),
        )
        .route("/service-accounts/{id}/usage", get(secrets::account_usage))
        .route(
            "/service-accounts/{id}/credentials",
            get(credentials::list_credentials).post(credentials::add_credential),
        )
        .route(
            "/service-accounts/{id}/credentials/{credential_id}",
            delete(credentials::remove_credential),
        )
        .route(
            "/service-accounts/{id}/secrets/{prefix}",
            delete(secrets::revoke_secret),
        )
        .route("/oauth/clients/{id}", delete(accounts::delete_oauth_client))
        .route("/roles", get(roles::list_roles).post(roles::create_role))
        .route(
            "/roles/{id}",
            get(roles::get_role)
                .patch(roles::patch_role)
                .delete(roles::delete_role),
        )
        .route("/audit-events", get(audit::list_audit_events))
        .route("/apis", get(apis::list_apis))
        .route("/console-links", get(members::list_links))
        .route("/console-links/{link}", delete(members::revoke_link))
        .route("/members", get(members::list_members))
        .route(
            "/members/{subject}",
            axum::routing::patch(members::patch_member).delete(members::delete_member),
        )
}

/// The `{id}` of a path.
#[derive(serde::Deserialize)]
pub struct IdPath {
    pub id: String,
}

/// The `{id}` and `{prefix}` of a secret's path.
#[derive(serde::Deserialize)]
pub struct SecretPath {
    pub id: String,
    pub prefix: String,
}

/// A JSON body: `application/json`, at most 64 KiB, unknown fields and
/// malformed JSON refused with a message that says what is wrong.
pub struct ApiJson<T>(pub T);

const MAX_JSON_BYTES: usize = 64 * 1024;

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_json_body(req).await?;
        Ok(Self(decode_json(&bytes)?))
    }
}

/// Like `ApiJson`, but an empty body means `T::default()`.
pub struct MaybeJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for MaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, ApiError> {
        let empty = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v == "0")
            || (req.headers().get(header::CONTENT_TYPE).is_none()
                && req.headers().get(header::CONTENT_LENGTH).is_none());
        if empty {
            return Ok(Self(T::default()));
        }
        let bytes = read_json_body(req).await?;
        if bytes.is_empty() {
            return Ok(Self(T::default()));
        }
        Ok(Self(decode_json(&bytes)?))
    }
}

async fn read_json_body(req: axum::extract::Request) -> Result<Bytes, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    axum::body::to_bytes(req.into_body(), MAX_JSON_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)
}

/// Decodes a JSON body already read.
pub fn decode_json<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.len() > MAX_JSON_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    // Every body is an object: serde would also take a struct's fields
    // from an array, in order, which no client means.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::BadRequest(
            "invalid JSON body: expected a JSON object".into(),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// A version as an `ETag` (a strong tag: the version number, quoted).
pub(crate) fn etag(version: i64) -> axum::http::HeaderValue {
    axum::http::HeaderValue::from_str(&format!("\"{version}\""))
        .unwrap_or(axum::http::HeaderValue::from_static("\"0\""))
}

/// The version an `If-Match` header names: `None` without the header (or
/// with `*`: any version). A list, a weak tag or anything this API did not
/// issue can match no version, so it answers 412.
pub(crate) fn if_match(headers: &axum::http::HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(v) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| ApiError::PreconditionFailed)?.trim();
    if v == "*" {
        return Ok(None);
    }
    v.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|t| !t.is_empty() && t.len() <= 18 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<i64>().ok())
        .map(Some)
        .ok_or(ApiError::PreconditionFailed)
}
