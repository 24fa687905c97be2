//! `POST /oauth/token`: extract, call `oauth::token::grant_token`, answer.

use axum::response::Response;

use super::error::oauth_answer;
use super::form::required;
use super::oauth_request::{Form, OAuthRequest};
use crate::now_unix;
use crate::oauth::OAuthError;
use crate::oauth::federation::{
    ACCESS_TOKEN_TYPE, JWT_BEARER_GRANT, JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT,
};
use crate::oauth::token::{FederatedGrant, GrantRequest, TokenRequest, grant_token};

/// Documentation of the token request's form fields.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TokenForm {
    /// `client_credentials`, `refresh_token`,
    /// `urn:ietf:params:oauth:grant-type:jwt-bearer` or
    /// `urn:ietf:params:oauth:grant-type:token-exchange`.
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
    /// For `private_key_jwt`:
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    client_assertion_type: Option<String>,
    /// For `private_key_jwt`: the client assertion, a JWT signed with one
    /// of the account's registered keys.
    client_assertion: Option<String>,
    /// For jwt-bearer: the external JWT a federated credential trusts.
    assertion: Option<String>,
    /// For token exchange: the external JWT a federated credential trusts.
    subject_token: Option<String>,
    /// For token exchange: `urn:ietf:params:oauth:token-type:jwt`.
    subject_token_type: Option<String>,
    /// For token exchange: `urn:ietf:params:oauth:token-type:access_token`
    /// if sent.
    requested_token_type: Option<String>,
    /// The target, as `resource` (a synonym, as Auth0's clients send it;
    /// both naming two targets: `invalid_target`).
    audience: Option<String>,
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
        Ok(Some(JWT_BEARER_GRANT)) => "jwt_bearer",
        Ok(Some(TOKEN_EXCHANGE_GRANT)) => "token_exchange",
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
            resource: target(form)?,
        },
        "refresh_token" => GrantRequest::RefreshToken {
            refresh_token: required(form, "refresh_token")?.clone(),
            scope: form.get("scope").cloned(),
            resource: target(form)?,
        },
        JWT_BEARER_GRANT => federated(form, FederatedGrant::JwtBearer)?,
        TOKEN_EXCHANGE_GRANT => federated(form, FederatedGrant::TokenExchange)?,
        _ => return Err(OAuthError::UnsupportedGrantType),
    };
    let (client, source_ip) = match grant {
        GrantRequest::Federated { .. } => (None, req.identify_federated(form)?),
        _ => {
            let (c, ip) = req.identify_client(form)?;
            (Some(c), ip)
        }
    };
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

/// The requested target: `resource` (RFC 8707), or `audience` as Auth0's
/// clients and RFC 8693 spell it (a synonym on every grant). Both, naming
/// two resources, is `invalid_target`; both naming one (in any spelling)
/// is `resource`.
fn target(form: &Form) -> Result<Option<String>, OAuthError> {
    match (form.get("resource"), form.get("audience")) {
        (Some(r), Some(a)) if !crate::domain::audience::same_resource(r, a) => {
            Err(OAuthError::InvalidTarget(
                "resource and audience name two targets: send one (audience is a synonym of resource)",
            ))
        }
        (r, a) => Ok(r.or(a).cloned()),
    }
}

/// A federated grant's parameters: jwt-bearer's `assertion` (RFC 7523
/// §2.1), or token exchange's `subject_token` of type JWT (RFC 8693 §2.1;
/// no `actor_token`: delegation is not offered; `audience` as `resource`).
fn federated(
    form: &super::oauth_request::Form,
    kind: FederatedGrant,
) -> Result<GrantRequest, OAuthError> {
    let bad = |m: &str| Err(OAuthError::InvalidRequest(m.to_owned()));
    let (token, resource) = match kind {
        FederatedGrant::JwtBearer => (required(form, "assertion")?, target(form)?),
        FederatedGrant::TokenExchange => {
            if required(form, "subject_token_type")? != JWT_TOKEN_TYPE {
                return bad("subject_token_type must be urn:ietf:params:oauth:token-type:jwt");
            }
            if form
                .get("requested_token_type")
                .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
            {
                return bad(
                    "requested_token_type, when sent, must be urn:ietf:params:oauth:token-type:access_token",
                );
            }
            if form.contains_key("actor_token") || form.contains_key("actor_token_type") {
                return bad(
                    "actor_token is not supported: warden does not issue delegation tokens",
                );
            }
            (required(form, "subject_token")?, target(form)?)
        }
    };
    Ok(GrantRequest::Federated {
        kind,
        token: token.clone(),
        client_id: form.get("client_id").cloned(),
        scope: form.get("scope").cloned(),
        resource,
    })
}
