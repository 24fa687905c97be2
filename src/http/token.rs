//! `POST /oauth/token`: extract, call `oauth::token::grant_token`, answer.
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;

use super::error::oauth_answer;
use super::form::{read_form, required};
use super::observe::Refusal;
use crate::http::AppState;
use crate::now_unix;
use crate::oauth::OAuthError;
use crate::oauth::token::{GrantRequest, TokenRequest, grant_token};

/// Documentation of the token request's form fields.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TokenForm {
    /// `client_credentials` or `refresh_token`.
    grant_type: String,
    /// Space-separated permissions or role ids to narrow the grant to.
    scope: Option<String>,
    /// RFC 8707 target audience.
    resource: Option<String>,
    /// For `refresh_token`.
    refresh_token: Option<String>,
    /// For `client_secret_post` (instead of HTTP Basic).
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Exchange client credentials or a refresh token for tokens.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "OK", body = crate::oauth::token::TokenResponse),
        (status = 400, description = "Malformed request", body = super::error::OAuthErrorBody),
        (status = 401, description = "Not authenticated", body = super::error::OAuthErrorBody),
        (status = 403, description = "Not allowed", body = super::error::OAuthErrorBody),
        (status = 413, description = "Body too large", body = super::error::OAuthErrorBody),
        (status = 503, description = "Temporarily unavailable; retry", body = super::error::OAuthErrorBody),
    ),
    security((), ("basic" = [])))]
pub async fn token(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    let mut seen = Refusal::default();
    let (grant, result) = handle(&state, peer, &headers, &uri, body, &mut seen).await;
    let outcome = match &result {
        Ok(_) => "issued",
        Err(e) => e.code(),
    };
    metrics::counter!("warden_tokens_total", "grant" => grant, "result" => outcome).increment(1);
    if matches!(result, Err(OAuthError::InvalidClient { .. })) {
        metrics::counter!("warden_client_auth_failures_total", "endpoint" => "token").increment(1);
    }
    oauth_answer(result, seen)
}

/// The grant type (for metrics) and the outcome.
async fn handle(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    uri: &Uri,
    body: Body,
    seen: &mut Refusal,
) -> (
    &'static str,
    Result<crate::oauth::token::TokenResponse, OAuthError>,
) {
    let form = match read_form(headers, uri, body).await {
        Ok(f) => f,
        Err(e) => return ("none", Err(e)),
    };
    let grant = match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => "client_credentials",
        Some("refresh_token") => "refresh_token",
        Some(_) => "other",
        None => "none",
    };
    (grant, grant_flow(state, peer, headers, &form, seen).await)
}

async fn grant_flow(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    form: &std::collections::HashMap<String, String>,
    seen: &mut Refusal,
) -> Result<crate::oauth::token::TokenResponse, OAuthError> {
    let grant = match required(form, "grant_type")?.as_str() {
        "client_credentials" => GrantRequest::ClientCredentials {
            scope: form.get("scope").cloned(),
            resource: form.get("resource").cloned(),
        },
        "refresh_token" => GrantRequest::RefreshToken {
            refresh_token: required(form, "refresh_token")?.clone(),
            scope: form.get("scope").cloned(),
            resource: form.get("resource").cloned(),
        },
        _ => return Err(OAuthError::UnsupportedGrantType),
    };
    let (client, source_ip) = super::identify(state, peer, headers, form, seen)?;
    grant_token(
        state,
        TokenRequest {
            grant,
            client,
            source_ip,
            now: now_unix(),
        },
    )
    .await
}
