//! `POST /oauth/introspect` and `POST /oauth/revoke`: extract, call the
//! flow, answer.
use std::net::IpAddr;

use axum::response::Response;

use super::error::oauth_answer;
use super::form::required;
use super::oauth_request::OAuthRequest;
use crate::now_unix;
use crate::oauth::OAuthError;
use crate::oauth::introspect::Introspection;
use crate::oauth::{introspect::introspect_token, revoke::revoke_token};

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
    /// For `private_key_jwt`:
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    client_assertion_type: Option<String>,
    /// For `private_key_jwt`: an assertion signed with one of the
    /// resource server's registered keys.
    client_assertion: Option<String>,
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
    responses((status = 200, description = "OK", body = Introspection), (status = 400, description = "Malformed request", body = super::error::OAuthErrorBody),
              (status = 401, description = "Not authenticated", body = super::error::OAuthErrorBody)),
    security(("basic" = [])))]
pub async fn introspect(mut req: OAuthRequest) -> Response {
    let result = async {
        let form = req.take_form()?;
        let (auth, peer_ip) = req.identify_client(&form)?;
        let token = required(&form, "token")?;
        // `source_ip` is the address the resource server's own caller came
        // from; without it, an account with an allowlist is inactive.
        let caller_ip = match form.get("source_ip") {
            Some(s) => Some(s.trim().parse::<IpAddr>().map_err(|_| {
                OAuthError::InvalidRequest("source_ip must be an IPv4 or IPv6 address".into())
            })?),
            None => None,
        };
        introspect_token(&req.state, &auth, token, peer_ip, caller_ip, now_unix()).await
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
    oauth_answer(
        result.map(|r| r.unwrap_or_else(Introspection::inactive)),
        req.seen,
    )
}

/// Revoke an access or refresh token (RFC 7009).
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = RevokeForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "revoked, or not a live token"), (status = 400, description = "Malformed request", body = super::error::OAuthErrorBody),
              (status = 401, description = "Not authenticated", body = super::error::OAuthErrorBody), (status = 403, description = "Not allowed", body = super::error::OAuthErrorBody)),
    security((), ("basic" = [])))]
pub async fn revoke(mut req: OAuthRequest) -> Response {
    let result = async {
        let form = req.take_form()?;
        let (auth, ip) = req.identify_client(&form)?;
        let token = required(&form, "token")?;
        revoke_token(&req.state, &auth, token, ip, now_unix()).await
    }
    .await;
    // RFC 7009 §2.2: an empty 200, whether or not the token was live.
    oauth_answer(result.map(|()| serde_json::Map::new()), req.seen)
}
