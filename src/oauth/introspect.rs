//! `POST /oauth/introspect` (RFC 7662): is this token good *now*?
//!
//! The signature and time claims say the token was issued by warden and has
//! not expired; everything else is rechecked live on every call, in this
//! order: the account exists and is not deleted, is not disabled, has not
//! expired, the caller's `source_ip` is inside its allowlist, the token is
//! not revoked, and the calling resource server is in `aud` and was
//! registered by the time the token was issued (an audience deleted and
//! registered again accepts none of the old registration's tokens). The
//! answer carries the token's roles intersected with the account's current
//! roles, their permissions read with the account in the same query.
use std::net::IpAddr;

use serde_json::Value;

use super::Context;
use super::OAuthError;
use super::client_auth::ClientAuth;
use super::inactive::Inactive;
use super::rs_auth;
use crate::crypto::verify::AccessClaims;
use crate::domain::account::ServiceAccount;
use crate::domain::audience::same_resource;
use crate::domain::credentials::REFRESH_TOKEN_PREFIX;
use crate::domain::resource_server::ResourceServer;
use crate::domain::roles::{AudiencePermissions, Grant, RolePermissions, narrow_to_live};

/// An introspection request from its form values, with the caller's
/// authentication. An access token's signature is checked first (usually
/// a cache hit), so that the caller, the account and the revocation list
/// are read in one query; otherwise the caller is looked up alone.
pub async fn introspect_token(
    ctx: &Context,
    auth: &ClientAuth,
    token: &str,
    peer_ip: Option<IpAddr>,
    source_ip: Option<IpAddr>,
    now: i64,
) -> Result<Option<Introspection>, OAuthError> {
    const ENDPOINT: &str = "/oauth/introspect";
    let (rs_id, lookup) = rs_auth::precheck(ctx, auth, peer_ip)?;
    if lookup && !token.starts_with(REFRESH_TOKEN_PREFIX) {
        let keys = ctx.keys.current();
        if let Some(claims) = ctx.verified.verify(&keys, token, &ctx.issuer, now) {
            let found = ctx
                .db
                .introspection_context(
                    &rs_id,
                    &claims.client_id,
                    crate::crypto::verify::token_ref(&claims),
                )
                .await?;
            let (row, account) = match found {
                Some(c) => (Some(c.resource_server), c.account),
                None => (None, None),
            };
            let caller = rs_auth::verify(ctx, auth, &rs_id, peer_ip, now, row, ENDPOINT).await?;
            return Ok(evaluate_access_token(
                &caller, &claims, account, source_ip, now,
            ));
        }
    }
    let row = if lookup {
        ctx.db.resource_server_by_client_id(&rs_id).await?
    } else {
        None
    };
    let caller = rs_auth::verify(ctx, auth, &rs_id, peer_ip, now, row, ENDPOINT).await?;
    introspect(ctx, &caller, token, source_ip, now).await
}

/// `None` is `{"active": false}`, whatever the reason.
pub async fn introspect(
    ctx: &Context,
    caller: &ResourceServer,
    token: &str,
    source_ip: Option<IpAddr>,
    now: i64,
) -> Result<Option<Introspection>, OAuthError> {
    if token.starts_with(REFRESH_TOKEN_PREFIX) {
        return introspect_refresh(ctx, caller, token, source_ip, now).await;
    }
    let keys = ctx.keys.current();
    let Some(claims) = ctx.verified.verify(&keys, token, &ctx.issuer, now) else {
        if tracing::enabled!(tracing::Level::DEBUG) {
            let why = Inactive::of_unverified(&keys, token, &ctx.issuer);
            log_inactive(caller, None, why);
        }
        return Ok(None);
    };
    let account = account_if_audience(ctx, &claims, &caller.audience).await?;
    Ok(evaluate_access_token(
        caller, &claims, account, source_ip, now,
    ))
}

/// Introspection's inactive answer, explained at debug: which resource
/// server asked, about which account, and why (never the token).
fn log_inactive(caller: &ResourceServer, client_id: Option<&str>, why: Inactive) {
    tracing::debug!(
        resource_server = %caller.client_id,
        audience = %caller.audience,
        client_id = client_id.unwrap_or("-"),
        reason = why.reason(),
        "introspection: token inactive"
    );
}

/// The account behind a verified access token and whether the token is
/// revoked, read only when the token is for `audience` (else `None`, with
/// no query).
async fn account_if_audience(
    ctx: &Context,
    claims: &AccessClaims,
    audience: &str,
) -> Result<Option<(ServiceAccount, bool)>, OAuthError> {
    if !claims.aud.names(audience) {
        return Ok(None);
    }
    Ok(ctx
        .db
        .account_with_revocation(&claims.client_id, crate::crypto::verify::token_ref(claims))
        .await?)
}

/// An access token presented `to` an audience (the admin API presents its
/// callers' to the issuer's): verified, then live-checked exactly as
/// introspection checks it. `Err(why)` when it is not active there, now.
pub async fn live_access_token(
    ctx: &Context,
    token: &str,
    to: &PresentedTo<'_>,
    source_ip: Option<IpAddr>,
    now: i64,
) -> Result<Result<LiveToken, Inactive>, OAuthError> {
    let keys = ctx.keys.current();
    let Some(claims) = ctx.verified.verify(&keys, token, &ctx.issuer, now) else {
        return Ok(Err(Inactive::NotVerified));
    };
    let account = account_if_audience(ctx, &claims, to.audience).await?;
    Ok(check_live(&claims, to, account, source_ip, now))
}

/// RFC 7662 answer: `{"active": false}`, or the live claims of an active
/// token (`nbf` for access tokens only).
///
/// The repeated `skip_serializing_if` is deliberate: one flat struct of
/// optional claims is what the OpenAPI document can state exactly (a
/// flattened optional struct becomes a schema `{"active": false}` fails).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Introspection {
    pub active: bool,
    /// `Bearer` (an access token) or `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// A string, or an array of strings.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub aud: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The token's permissions the account still holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The token's roles the account still holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

impl Introspection {
    /// Not active, whatever the reason (RFC 7662 §2.2 says no more).
    pub fn inactive() -> Self {
        Self {
            active: false,
            token_type: None,
            client_id: None,
            sub: None,
            org: None,
            aud: None,
            iss: None,
            exp: None,
            iat: None,
            nbf: None,
            jti: None,
            scope: None,
            roles: None,
        }
    }
}

/// A verified access token that passed the live checks: the account
/// behind it, the token's grant narrowed to what the account holds now
/// and the audience allows, and the token's roles the account still holds,
/// each with all its permissions (what the caller may grant, whatever the
/// token's audience narrowed its scope to).
pub struct LiveToken {
    pub account: ServiceAccount,
    pub grant: Grant,
    pub roles: RolePermissions,
}

/// Where a token is presented: an audience, and which permissions a token
/// for it may carry.
pub struct PresentedTo<'a> {
    pub audience: &'a str,
    pub allowed: AudiencePermissions,
    /// When this audience was registered: a token issued before was for
    /// another registration of it (one deleted since), or for none.
    pub since: i64,
}

impl<'a> PresentedTo<'a> {
    /// A resource server's API, with the permissions it declares now.
    pub fn api(rs: &'a ResourceServer) -> Self {
        Self {
            audience: &rs.audience,
            allowed: AudiencePermissions::of_api(&rs.permissions),
            since: rs.created_at,
        }
    }

    /// The admin API (the issuer), with its own permissions.
    pub fn admin_api(issuer: &'a str) -> Self {
        Self {
            audience: issuer,
            allowed: AudiencePermissions::AdminApi,
            since: i64::MIN,
        }
    }
}

/// The live checks on a verified access token presented to `audience`,
/// given the account behind it and whether its `jti` is revoked: the one
/// place they live, for introspection and the admin API alike. `Err`
/// says why the token is not active for that audience, from `source_ip`,
/// now.
pub fn check_live(
    claims: &AccessClaims,
    to: &PresentedTo<'_>,
    account: Option<(ServiceAccount, bool)>,
    source_ip: Option<IpAddr>,
    now: i64,
) -> Result<LiveToken, Inactive> {
    // The admin API's tokens carry the issuer exactly as configured (the
    // token endpoint gives them no other spelling); an API's, in any.
    let for_it = if to.allowed == AudiencePermissions::AdminApi {
        claims.aud.contains(to.audience)
    } else {
        claims.aud.names(to.audience)
    };
    if !for_it {
        return Err(Inactive::Audience);
    }
    if claims.iat < to.since {
        return Err(Inactive::EarlierRegistration);
    }
    let (account, revoked) = account.ok_or(Inactive::NoAccount)?;
    if revoked {
        return Err(Inactive::Revoked);
    }
    if !claims_match(claims, &account) {
        return Err(Inactive::ClaimsMismatch);
    }
    account
        .check_usable(now, source_ip)
        .map_err(Inactive::Account)?;
    // An account since limited to other APIs: its tokens for this one die.
    if to.allowed != AudiencePermissions::AdminApi && !account.may_use_api(to.audience) {
        return Err(Inactive::OtherApi);
    }
    let token_grant = Grant::from_token(&claims.roles, &claims.scope);
    let mut held = account.role_permissions();
    let grant = narrow_to_live(&token_grant, &to.allowed.restrict(&held));
    // A token never gains a role the account got after it was issued.
    held.retain(|role, _| token_grant.roles.contains(role));
    Ok(LiveToken {
        account,
        grant,
        roles: held,
    })
}

/// Introspection's answer for a verified access token.
fn evaluate_access_token(
    caller: &ResourceServer,
    claims: &AccessClaims,
    account: Option<(ServiceAccount, bool)>,
    source_ip: Option<IpAddr>,
    now: i64,
) -> Option<Introspection> {
    let live = match check_live(claims, &PresentedTo::api(caller), account, source_ip, now) {
        Ok(LiveToken { grant, .. }) => grant,
        Err(why) => {
            log_inactive(caller, Some(&claims.client_id), why);
            return None;
        }
    };
    Some(Introspection {
        active: true,
        token_type: Some("Bearer"),
        client_id: Some(claims.client_id.clone()),
        sub: Some(claims.sub.clone()),
        org: Some(claims.org.clone()),
        aud: Some(claims.aud.to_json()),
        iss: Some(claims.iss.clone()),
        exp: Some(claims.exp),
        iat: Some(claims.iat),
        nbf: Some(claims.nbf),
        jti: Some(claims.jti.clone()),
        scope: Some(live.scope_string()),
        roles: Some(live.roles),
    })
}

async fn introspect_refresh(
    ctx: &Context,
    caller: &ResourceServer,
    token: &str,
    source_ip: Option<IpAddr>,
    now: i64,
) -> Result<Option<Introspection>, OAuthError> {
    let inactive = |client_id: Option<&str>, why: Inactive| {
        log_inactive(caller, client_id, why);
        Ok(None)
    };
    let Some(g) = ctx.refresh.open(token) else {
        return inactive(None, Inactive::NotVerified);
    };
    if g.exp <= now {
        return inactive(None, Inactive::Expired);
    }
    if !same_resource(&g.aud, &caller.audience) {
        return inactive(None, Inactive::Audience);
    }
    if g.iat < caller.created_at {
        return inactive(None, Inactive::EarlierRegistration);
    }
    let Some(account) = ctx.db.find_account(None, &g.account_id).await? else {
        return inactive(None, Inactive::NoAccount);
    };
    let client_id = account.client_id.as_deref();
    if let Err(u) = account.check_usable(now, source_ip) {
        return inactive(client_id, Inactive::Account(u));
    }
    if !account.may_use_api(&caller.audience) {
        return inactive(client_id, Inactive::OtherApi);
    }
    let chain = ctx.db.refresh_state(&g.jti, &g.family).await?;
    // A secret reset since, a refresh token used already, or its family
    // revoked: each is a revocation.
    if account.credential_epoch != g.epoch || chain.spent || chain.family_revoked {
        return inactive(client_id, Inactive::Revoked);
    }
    let live = narrow_to_live(
        &Grant {
            roles: g.roles,
            scope: g.scope,
        },
        &AudiencePermissions::of_api(&caller.permissions).restrict(&account.role_permissions()),
    );
    let client_id = account.client_id.clone().unwrap_or_default();
    Ok(Some(Introspection {
        active: true,
        token_type: Some("refresh_token"),
        sub: Some(client_id.clone()),
        client_id: Some(client_id),
        org: Some(g.org),
        aud: Some(Value::String(g.aud)),
        iss: Some(ctx.issuer.clone()),
        exp: Some(g.exp),
        iat: Some(g.iat),
        nbf: None,
        jti: Some(g.jti),
        scope: Some(live.scope_string()),
        roles: Some(live.roles),
    }))
}

/// The token's subject and org are the account's: only warden's own key
/// could sign a mismatch, and if one ever existed it must not be taken at
/// its word.
pub fn claims_match(claims: &AccessClaims, a: &ServiceAccount) -> bool {
    claims.sub == claims.client_id && claims.org == a.org_id
}
