//! `POST /oauth/token`: the client-credentials and refresh-token grants,
//! and the federated ones (jwt-bearer, token exchange), each a checklist
//! in the order the spec gives it.
use std::net::IpAddr;

use serde::Serialize;
use serde_json::json;

use super::Context;
use super::OAuthError;
use super::audience::{
    audience_permissions, check_api_allowed, checked_audience, lookup_key, refresh_audience,
};
use super::client_auth::{ClientAuth, authenticate_probing, check_state, credential_event};
use super::federation;
use super::issue::{issue, scope_error};
use crate::bookkeeping::Usage;
use crate::crypto::refresh::RefreshGrant;
use crate::db::hot::Audience;
use crate::db::refresh::{Spend, SpendRequest};
use crate::domain::account::ServiceAccount;
use crate::domain::credentials::random_token_id;
use crate::domain::roles::{
    AudiencePermissions, Grant, RolePermissions, derive_grant, narrow_to_live,
};

#[derive(Debug)]
pub enum GrantRequest {
    ClientCredentials {
        scope: Option<String>,
        resource: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
        scope: Option<String>,
        resource: Option<String>,
    },
    /// An external token for a federated credential (no client
    /// authentication; `client_id`, when sent, must be the account's).
    Federated {
        kind: FederatedGrant,
        token: String,
        client_id: Option<String>,
        scope: Option<String>,
        resource: Option<String>,
    },
}

/// Which federated grant: they differ only in their parameter names, their
/// error code and the answer's `issued_token_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FederatedGrant {
    JwtBearer,
    TokenExchange,
}

#[derive(Debug)]
pub struct TokenRequest {
    pub grant: GrantRequest,
    /// `None` for the federated grants only.
    pub client: Option<ClientAuth>,
    pub source_ip: Option<IpAddr>,
    pub now: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    /// Not for the federated grants (the workload exchanges a fresh
    /// external token instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
    /// Token exchange only (RFC 8693 §2.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

const INVALID_REFRESH: &str = "the refresh token is invalid, expired or revoked";

/// The token endpoint's decision, in the order RFC 6749 gives it: the
/// requested audience, the client's authentication and live state (one
/// query, with the audience), then the grant itself.
pub async fn grant_token(ctx: &Context, req: TokenRequest) -> Result<TokenResponse, OAuthError> {
    if let GrantRequest::Federated { .. } = req.grant {
        return federated(ctx, req).await;
    }
    let client = req
        .client
        .as_ref()
        .ok_or(OAuthError::InvalidClient { basic: false })?;
    // A refresh token is opened (local crypto, no database) before the
    // client is authenticated, so its audience can be checked in the same
    // query as the account; it is judged only after authentication.
    let (requested, opened) = match &req.grant {
        GrantRequest::ClientCredentials { resource, .. }
        | GrantRequest::Federated { resource, .. } => (resource.clone(), None),
        GrantRequest::RefreshToken {
            refresh_token,
            resource,
            ..
        } => {
            let opened = ctx.refresh.open(refresh_token);
            let aud = resource
                .clone()
                .or_else(|| opened.as_ref().map(|g| g.aud.clone()));
            (aud, opened)
        }
    };
    // The audience's declared permissions are read with the account.
    let target = requested.as_deref().unwrap_or(&ctx.default_audience);
    let probe = lookup_key(ctx, target);
    let (account, probed) =
        authenticate_probing(ctx, client, req.source_ip, req.now, probe.as_deref()).await?;

    check_state(&account, req.source_ip, req.now)?;
    let who = Client {
        account: &account,
        ip: req.source_ip,
        now: req.now,
    };
    match req.grant {
        GrantRequest::ClientCredentials { scope, .. } => {
            // An audience registered again within the second it was freed
            // takes tokens from the next second on (`PresentedTo::since`):
            // none is issued before then that it would refuse. (A refresh
            // token from before is refused by `refresh_audience`.)
            if let Audience::Api { since, .. } = probed
                && since > req.now
            {
                return Err(OAuthError::TemporarilyUnavailable);
            }
            let aud = checked_audience(ctx, requested.as_deref(), &probed)?;
            check_api_allowed(&account, &aud, &probed)?;
            let allowed = audience_permissions(ctx, &aud, &probed);
            client_credentials(ctx, &who, aud, &allowed, scope.as_deref(), None).await
        }
        GrantRequest::RefreshToken {
            scope, resource, ..
        } => {
            let old = opened
                .filter(|g| g.account_id == account.id && g.exp > req.now)
                .ok_or(OAuthError::InvalidGrant(INVALID_REFRESH))?;
            let aud = refresh_audience(ctx, &old, resource.as_deref(), &probed)?;
            check_api_allowed(&account, &aud, &probed)?;
            let allowed = audience_permissions(ctx, &aud, &probed);
            refresh(ctx, &who, old, aud, &allowed, scope.as_deref()).await
        }
        GrantRequest::Federated { .. } => Err(OAuthError::UnsupportedGrantType),
    }
}

/// A federated grant: the external token names the account (in place of
/// client authentication), then everything else is client_credentials',
/// without a refresh token.
async fn federated(ctx: &Context, req: TokenRequest) -> Result<TokenResponse, OAuthError> {
    let GrantRequest::Federated {
        kind,
        token,
        client_id,
        scope,
        resource,
    } = req.grant
    else {
        return Err(OAuthError::UnsupportedGrantType);
    };
    let refuse: federation::Refuse = match kind {
        FederatedGrant::JwtBearer => OAuthError::InvalidGrant,
        FederatedGrant::TokenExchange => |why| OAuthError::InvalidRequest(why.into()),
    };
    let target = resource.as_deref().unwrap_or(&ctx.default_audience);
    let key = lookup_key(ctx, target);
    let presented = federation::Presented {
        token: &token,
        client_id: client_id.as_deref(),
        source_ip: req.source_ip,
        now: req.now,
        audience: key.as_deref(),
    };
    let found = federation::authenticate(ctx, &presented, refuse).await?;
    let (account, probed, via) = (found.account, found.requested, found.details);
    check_state(&account, req.source_ip, req.now)?;
    if let Audience::Api { since, .. } = probed
        && since > req.now
    {
        return Err(OAuthError::TemporarilyUnavailable);
    }
    let aud = checked_audience(ctx, resource.as_deref(), &probed)?;
    check_api_allowed(&account, &aud, &probed)?;
    let allowed = audience_permissions(ctx, &aud, &probed);
    let who = Client {
        account: &account,
        ip: req.source_ip,
        now: req.now,
    };
    client_credentials(
        ctx,
        &who,
        aud,
        &allowed,
        scope.as_deref(),
        Some((kind, via)),
    )
    .await
}

/// The authenticated client of a token request.
struct Client<'a> {
    account: &'a ServiceAccount,
    ip: Option<IpAddr>,
    now: i64,
}

async fn client_credentials(
    ctx: &Context,
    who: &Client<'_>,
    aud: String,
    allowed: &AudiencePermissions,
    scope: Option<&str>,
    federated: Option<(FederatedGrant, serde_json::Value)>,
) -> Result<TokenResponse, OAuthError> {
    let all = who.account.role_permissions();
    let held = allowed.restrict(&all);
    let mut grant = derive_grant(&held, scope).map_err(|e| scope_error(e, &all))?;
    if *allowed == AudiencePermissions::AdminApi {
        // The admin API judges what its caller may grant by the token's
        // roles: every role asked for, not only those holding an admin-API
        // permission (the scope stays the admin API's own).
        grant.roles = derive_grant(&all, scope).map_or(grant.roles, |g| g.roles);
    }
    let family = federated.is_none().then(random_token_id);
    let mut out = issue(ctx, who.account, &grant, &aud, family, who.now)?;
    let (grant_type, via) = match federated {
        None => ("client_credentials", None),
        Some((FederatedGrant::JwtBearer, via)) => (federation::JWT_BEARER_GRANT, Some(via)),
        Some((FederatedGrant::TokenExchange, via)) => {
            out.issued_token_type = Some(federation::ACCESS_TOKEN_TYPE);
            (federation::TOKEN_EXCHANGE_GRANT, Some(via))
        }
    };
    ctx.bookkeeper
        .used(&who.account.id, who.now, who.ip, Usage::Issued, || {
            credential_event(
                who.account,
                "token.issued",
                who.ip,
                who.now,
                match via {
                    // The federated credential and the external token.
                    Some(via) => json!({"grant_type": grant_type, "scope": out.scope,
                                        "aud": aud, "federated": via}),
                    None => json!({"grant_type": grant_type, "scope": out.scope, "aud": aud}),
                },
            )
        });
    Ok(out)
}

async fn refresh(
    ctx: &Context,
    who: &Client<'_>,
    old: RefreshGrant,
    aud: String,
    allowed: &AudiencePermissions,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let account = who.account;
    if old.epoch != account.credential_epoch {
        return Err(OAuthError::InvalidGrant(
            "the refresh token was issued before the secret was reset",
        ));
    }
    let all = account.role_permissions();
    let available = still_held(&old, &allowed.restrict(&all));
    if available.is_empty() {
        return Err(OAuthError::InvalidGrant(
            if still_held(&old, &all).is_empty() {
                "the account no longer holds any of the refresh token's permissions"
            } else {
                "none of the refresh token's permissions is among those its resource declares now"
            },
        ));
    }
    let mut grant = derive_grant(&available, scope).map_err(|e| scope_error(e, &available))?;
    if *allowed == AudiencePermissions::AdminApi && scope.is_none() {
        // As at issue: the roles the refresh token carried, still held.
        grant.roles = old
            .roles
            .iter()
            .filter(|r| all.contains_key(*r))
            .cloned()
            .collect();
    }
    spend(ctx, who, &old).await?;
    let out = issue(
        ctx,
        account,
        &grant,
        &aud,
        Some(old.family.clone()),
        who.now,
    )?;
    ctx.bookkeeper
        .used(&account.id, who.now, who.ip, Usage::Refreshed, || {
            credential_event(
                account,
                "token.refreshed",
                who.ip,
                who.now,
                json!({"grant_type": "refresh_token", "scope": out.scope, "aud": aud, "family": old.family}),
            )
        });
    Ok(out)
}

/// The refresh token's roles the account still holds, each with the
/// token's permissions it still grants.
fn still_held(old: &RefreshGrant, live: &RolePermissions) -> RolePermissions {
    let previous = Grant {
        roles: old.roles.clone(),
        scope: old.scope.clone(),
    };
    let remaining = narrow_to_live(&previous, live);
    remaining
        .roles
        .iter()
        .filter_map(|r| {
            let perms: Vec<String> = live
                .get(r)?
                .iter()
                .filter(|p| remaining.scope.contains(p))
                .cloned()
                .collect();
            (!perms.is_empty()).then(|| (r.clone(), perms))
        })
        .collect()
}

/// Spends the refresh token: once only, on every replica. A second use
/// is reuse, and revokes the whole family.
async fn spend(ctx: &Context, who: &Client<'_>, old: &RefreshGrant) -> Result<(), OAuthError> {
    let spend = SpendRequest {
        jti: &old.jti,
        family: &old.family,
        account_id: &who.account.id,
        expires_at: old.exp,
        now: who.now,
    };
    let reuse = credential_event(
        who.account,
        "refresh_token.reuse_detected",
        who.ip,
        who.now,
        json!({"family": old.family}),
    );
    match ctx.db.spend_refresh_token(&spend, &reuse).await? {
        Spend::Won => Ok(()),
        Spend::Reused => {
            tracing::warn!(account = %who.account.id, family = %old.family, "refresh token reuse; family revoked");
            Err(OAuthError::InvalidGrant(INVALID_REFRESH))
        }
        Spend::FamilyRevoked => Err(OAuthError::InvalidGrant(INVALID_REFRESH)),
    }
}
