//! `POST /oauth/revoke` (RFC 7009). A service account revokes its own
//! tokens; a resource server revokes any token it may introspect. Tokens
//! that are unknown, malformed or already dead answer 200 like revoked ones.
use std::net::IpAddr;

use serde_json::json;

use super::Context;
use super::OAuthError;
use super::client_auth::{
    ClientCredentials, authenticate, authenticate_resource_server, credential_event,
};
use crate::db::AuditEvent;
use crate::domain::credentials::REFRESH_TOKEN_PREFIX;
use crate::domain::resource_server::{RS_CLIENT_ID_PREFIX, ResourceServer};

enum Caller {
    Account(Box<crate::domain::account::ServiceAccount>),
    Resource(Box<ResourceServer>),
}

const NOT_YOURS: &str = "the token was not issued to this client";

pub async fn revoke(
    ctx: &Context,
    creds: &ClientCredentials,
    token: &str,
    source_ip: Option<IpAddr>,
    now: i64,
) -> Result<(), OAuthError> {
    // Revoking only takes privileges away, so a disabled or expired account
    // may still revoke its own tokens; it must still prove its secret.
    let caller = if creds.client_id.starts_with(RS_CLIENT_ID_PREFIX) {
        Caller::Resource(Box::new(
            authenticate_resource_server(ctx, creds, source_ip, now).await?,
        ))
    } else {
        Caller::Account(Box::new(authenticate(ctx, creds, source_ip, now).await?))
    };
    let event = |action: &str, target: &str, org: &str, details: serde_json::Value| match &caller {
        Caller::Account(a) => {
            let mut e = credential_event(a, action, source_ip, now, details);
            e.target_id = Some(target.to_owned());
            e
        }
        Caller::Resource(r) => AuditEvent::new("resource_server", &r.id, action, now)
            .in_org(org)
            .on("service_account", target)
            .from_address(source_ip.map(|i| i.to_string()))
            .with(details),
    };

    if token.starts_with(REFRESH_TOKEN_PREFIX) {
        let Some(g) = ctx.refresh.open(token) else {
            return Ok(());
        };
        if g.exp <= now {
            return Ok(());
        }
        let allowed = match &caller {
            Caller::Account(a) => a.id == g.account_id,
            Caller::Resource(r) => r.audience == g.aud,
        };
        if !allowed {
            return Err(OAuthError::AccessDenied(NOT_YOURS));
        }
        let ev = event(
            "refresh_token.revoked",
            &g.account_id,
            &g.org,
            json!({"family": g.family}),
        );
        ctx.db
            .revoke_refresh_family(&g.family, &g.account_id, now, &ev)
            .await?;
        return Ok(());
    }

    let keys = ctx.keys.current();
    let Some(claims) = ctx.verified.verify(&keys, token, &ctx.issuer, now) else {
        return Ok(());
    };
    let allowed = match &caller {
        Caller::Account(a) => a.client_id.as_deref() == Some(claims.client_id.as_str()),
        Caller::Resource(r) => claims.aud.contains(&r.audience),
    };
    if !allowed {
        return Err(OAuthError::AccessDenied(NOT_YOURS));
    }
    let target = match ctx.db.account_by_client_id(&claims.client_id).await? {
        Some(a) => a.id,
        None => return Ok(()),
    };
    let ev = event(
        "access_token.revoked",
        &target,
        &claims.org,
        json!({"jti": claims.jti}),
    );
    ctx.db
        .revoke_access_token(&claims.jti, &claims.client_id, claims.exp, now, &ev)
        .await?;
    Ok(())
}
