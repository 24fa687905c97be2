//! `POST /oauth/introspect` and `POST /oauth/revoke`: extract, call the
//! flow, answer.
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::no_store;
use super::form::{client_credentials, read_form};
use super::observe::Refusal;
use super::token::with_caller;
use crate::app::AppState;
use crate::now_unix;
use crate::oauth::OAuthError;
use crate::oauth::{
    introspect::introspect_request as run_introspect, revoke::revoke as run_revoke,
};

/// Documentation of the introspection request's form fields.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct IntrospectForm {
    token: String,
    /// Accepted and not needed: warden recognises its tokens.
    token_type_hint: Option<String>,
    /// The address the resource server's own caller came from.
    source_ip: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// RFC 7662 answer: `{"active": false}` or the live claims.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct IntrospectionAnswer {
    active: bool,
    token_type: Option<String>,
    client_id: Option<String>,
    sub: Option<String>,
    org: Option<String>,
    #[schema(value_type = Option<Object>)]
    aud: Option<String>,
    iss: Option<String>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
    scope: Option<String>,
    roles: Option<Vec<String>>,
}

/// Documentation of the revocation request's form fields.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct RevokeForm {
    token: String,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Is this token active right now? For registered resource servers.
#[utoipa::path(post, path = "/oauth/introspect", tag = "oauth",
    request_body(content = IntrospectForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "OK", body = IntrospectionAnswer), (status = 400, description = "Malformed request", body = super::error::OAuthErrorBody),
              (status = 401, description = "Not authenticated", body = super::error::OAuthErrorBody)),
    security(("basic" = [])))]
pub async fn introspect(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    let mut seen = Refusal::default();
    let result = async {
        let form = read_form(&headers, &uri, body).await?;
        let creds = client_credentials(&headers, &form)?;
        seen.client_id = creds.shown_id();
        let now = now_unix();
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
        // `source_ip` is the address the resource server's own caller came
        // from; without it, an account with an allowlist is inactive.
        let caller_ip = match form.get("source_ip") {
            Some(s) => Some(s.trim().parse::<IpAddr>().map_err(|_| {
                OAuthError::InvalidRequest("source_ip must be an IPv4 or IPv6 address".into())
            })?),
            None => None,
        };
        let peer_ip = super::client_address(&state, peer, &headers);
        seen.ip = peer_ip;
        run_introspect(&state, &creds, token, peer_ip, caller_ip, now).await
    }
    .await;
    let outcome = match &result {
        Ok(Some(_)) => "active",
        Ok(None) => "inactive",
        Err(e) => e.code(),
    };
    metrics::counter!("warden_introspections_total", "result" => outcome).increment(1);
    if matches!(result, Err(OAuthError::InvalidClient { .. })) {
        metrics::counter!("warden_client_auth_failures_total", "endpoint" => "introspect")
            .increment(1);
    }
    match result {
        Ok(Some(active)) => (no_store(), Json(active)).into_response(),
        Ok(None) => (no_store(), Json(json!({"active": false}))).into_response(),
        Err(e) => with_caller(e.into_response(), seen),
    }
}

/// Revoke an access or refresh token (RFC 7009).
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = RevokeForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "revoked, or not a live token"), (status = 400, description = "Malformed request", body = super::error::OAuthErrorBody),
              (status = 401, description = "Not authenticated", body = super::error::OAuthErrorBody), (status = 403, description = "Not allowed", body = super::error::OAuthErrorBody)),
    security((), ("basic" = [])))]
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    let mut seen = Refusal::default();
    let result = async {
        let form = read_form(&headers, &uri, body).await?;
        let creds = client_credentials(&headers, &form)?;
        seen.client_id = creds.shown_id();
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
        let ip = super::client_address(&state, peer, &headers);
        seen.ip = ip;
        run_revoke(&state, &creds, token, ip, now_unix()).await
    }
    .await;
    match result {
        Ok(()) => (no_store(), Json(json!({}))).into_response(),
        Err(e) => with_caller(e.into_response(), seen),
    }
}
