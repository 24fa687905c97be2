//! `POST /oauth/token`: extract, call `oauth::token::token`, answer.
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};

use super::error::no_store;
use super::form::{client_credentials, read_form};
use crate::app::AppState;
use crate::domain::ip::client_ip;
use crate::now_unix;
use crate::oauth::OAuthError;
use crate::oauth::token::{GrantRequest, TokenRequest, token as run_grant};

pub async fn token(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    match handle(&state, peer, &headers, &uri, body).await {
        Ok(r) => (no_store(), Json(r)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    uri: &Uri,
    body: Body,
) -> Result<crate::oauth::token::TokenResponse, OAuthError> {
    let mut form = read_form(headers, uri, body).await?;
    let grant_type = form.remove("grant_type").ok_or_else(|| OAuthError::InvalidRequest("grant_type is required".into()))?;
    let grant = match grant_type.as_str() {
        "client_credentials" => GrantRequest::ClientCredentials { scope: form.remove("scope"), resource: form.remove("resource") },
        "refresh_token" => GrantRequest::RefreshToken {
            refresh_token: form
                .remove("refresh_token")
                .ok_or_else(|| OAuthError::InvalidRequest("refresh_token is required".into()))?,
            scope: form.remove("scope"),
            resource: form.remove("resource"),
        },
        _ => return Err(OAuthError::UnsupportedGrantType),
    };
    let client = client_credentials(headers, &form)?;
    let source_ip = source_ip(state, peer, headers);
    run_grant(state, TokenRequest { grant, client, source_ip, now: now_unix() }).await
}

/// The caller's address per the trusted-proxy configuration.
pub fn source_ip(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> Option<std::net::IpAddr> {
    let xff: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    client_ip(peer.ip(), &xff, &state.config.trusted_proxies)
}
