//! Minting what the token endpoint answers with: the signed access token
//! (RFC 9068) and, for the grants that have one, the sealed refresh token;
//! and the `invalid_scope` answer.
use serde::Serialize;

use super::Context;
use super::OAuthError;
use super::token::TokenResponse;
use crate::crypto::refresh::RefreshGrant;
use crate::domain::account::ServiceAccount;
use crate::domain::credentials::random_token_id;
use crate::domain::roles::{Grant, RolePermissions, ScopeError};

/// RFC 9068 access-token claims.
#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    client_id: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
    scope: String,
    roles: &'a [String],
    org: &'a str,
    /// The grant (refresh-token family) this token belongs to, when it has
    /// one: revoking the refresh token, or its reuse, makes every access
    /// token of the grant inactive too (RFC 7009 §2.1, RFC 9700 §4.14.2).
    /// An identifier, not a credential: nothing can be redeemed with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
}

/// Signs the access token and, with a `family`, seals a refresh token in
/// it. Writes nothing.
pub(super) fn issue(
    ctx: &Context,
    account: &ServiceAccount,
    grant: &Grant,
    aud: &str,
    family: Option<String>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let client_id = account
        .client_id
        .as_deref()
        .ok_or(OAuthError::ServerError)?;
    let access_ttl = ctx.access_token_ttl_secs;
    let scope = grant.scope_string();
    let claims = AccessClaims {
        iss: &ctx.issuer,
        sub: client_id,
        client_id,
        aud,
        exp: now + access_ttl as i64,
        iat: now,
        nbf: now,
        jti: random_token_id(),
        scope: scope.clone(),
        roles: &grant.roles,
        org: &account.org_id,
        sid: family.as_deref(),
    };
    let body = serde_json::to_vec(&claims).map_err(|_| OAuthError::ServerError)?;
    let keys = ctx.keys.current();
    let access_token = keys.signing.sign_jwt(&body).map_err(|e| {
        tracing::error!(error = %e, "signing failed");
        OAuthError::ServerError
    })?;
    let refresh_token = match family {
        Some(family) => {
            let refresh = RefreshGrant {
                jti: random_token_id(),
                family,
                account_id: account.id.clone(),
                org: account.org_id.clone(),
                epoch: account.credential_epoch,
                iat: now,
                exp: now + ctx.refresh_token_ttl_secs,
                aud: aud.to_owned(),
                roles: grant.roles.clone(),
                scope: grant.scope.clone(),
            };
            let sealed = ctx.refresh.seal(&refresh);
            Some(sealed.map_err(|_| OAuthError::ServerError)?)
        }
        None => None,
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: access_ttl,
        refresh_token,
        scope,
        issued_token_type: None,
    })
}

/// `invalid_scope`, saying whether the account lacks the value or the
/// requested resource does not take it (`held`: everything the account
/// holds, whatever the audience).
pub(super) fn scope_error(e: ScopeError, held: &RolePermissions) -> OAuthError {
    match e {
        ScopeError::Malformed => {
            OAuthError::InvalidScope("scope contains characters not allowed by RFC 6749".into())
        }
        ScopeError::NotHeld(s)
            if held.contains_key(&s) || held.values().flatten().any(|p| *p == s) =>
        {
            OAuthError::InvalidScope(format!(
                "`{s}` is not among the permissions of the requested resource"
            ))
        }
        ScopeError::NotHeld(s) => OAuthError::InvalidScope(format!(
            "`{s}` is neither a role nor a permission this account holds"
        )),
    }
}
