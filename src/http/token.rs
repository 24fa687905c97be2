//! `POST /oauth/token`: extract, call `oauth::token::grant_token`, answer.

use axum::response::Response;

use super::error::oauth_answer;
use super::form::required;
use super::oauth_request::{Form, OAuthRequest};
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
pub async fn token(mut req: OAuthRequest) -> Response {
    let form = req.take_form();
    let grant = match form
        .as_ref()
        .map(|f| f.get("grant_type").map(String::as_str))
    {
        Ok(Some("client_credentials")) => "client_credentials",
        Ok(Some("refresh_token")) => "refresh_token",
        Ok(Some(_)) => "other",
        Ok(None) | Err(_) => "none",
    };
    let result = match form {
        Ok(form) => grant_flow(&mut req, &form).await,
        Err(e) => Err(e),
    };
    let outcome = match &result {
        Ok(_) => "issued",
        Err(e) => e.code(),
    };
    metrics::counter!("warden_tokens_total", "grant" => grant, "result" => outcome).increment(1);
    if matches!(result, Err(OAuthError::InvalidClient { .. })) {
        metrics::counter!("warden_client_auth_failures_total", "endpoint" => "token").increment(1);
    }
    oauth_answer(result, req.seen)
}

/// The grant the form asks for, by the client it names.
async fn grant_flow(
    req: &mut OAuthRequest,
    form: &Form,
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
    let (client, source_ip) = req.identify_client(form)?;
    grant_token(
        &req.state,
        TokenRequest {
            grant,
            client,
            source_ip,
            now: now_unix(),
        },
    )
    .await
}
