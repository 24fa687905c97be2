//! `POST /oauth/revoke` (RFC 7009). A service account revokes its own
//! tokens; a resource server revokes any token it may introspect. Tokens
//! that are unknown, malformed or already dead answer 200 like revoked ones.
use std::net::IpAddr;

use serde_json::json;

use super::Context;
use super::OAuthError;
use super::client_auth::{
    ClientAuth, authenticate, authenticate_resource_server, credential_event,
};
use crate::db::AuditEvent;
use crate::domain::credentials::REFRESH_TOKEN_PREFIX;
use crate::domain::resource_server::{RS_CLIENT_ID_PREFIX, ResourceServer};

enum Caller {
    Account(Box<crate::domain::account::ServiceAccount>),
    Resource(Box<ResourceServer>),
}

const NOT_YOURS: &str = "the token was not issued to this client";

/// Revokes `token` for an authenticated caller. Revoking only takes
/// privileges away, so a disabled or expired account may still revoke its
/// own tokens; it must still prove its secret (or sign an assertion with
/// its key).
pub async fn revoke_token(
    ctx: &Context,
    auth: &ClientAuth,
    token: &str,
    source_ip: Option<IpAddr>,
    now: i64,
) -> Result<(), OAuthError> {
    let caller = match auth {
        ClientAuth::Secret(creds) if creds.client_id.starts_with(RS_CLIENT_ID_PREFIX) => {
            Caller::Resource(Box::new(
                authenticate_resource_server(ctx, creds, source_ip, now).await?,
            ))
        }
        ClientAuth::Secret(creds) => {
            Caller::Account(Box::new(authenticate(ctx, creds, source_ip, now).await?))
        }
        ClientAuth::Assertion(a) if a.claimed.starts_with(RS_CLIENT_ID_PREFIX) => {
            Caller::Resource(Box::new(
                super::rs_auth::authenticate(ctx, auth, source_ip, now, "/oauth/revoke").await?,
            ))
        }
        ClientAuth::Assertion(a) => {
            let (account, _) =
                super::assertion::authenticate(ctx, a, source_ip, now, None, "/oauth/revoke")
                    .await?;
            Caller::Account(Box::new(account))
        }
    };
    let call = Call {
        caller,
        ip: source_ip,
        now,
    };
    if token.starts_with(REFRESH_TOKEN_PREFIX) {
        revoke_refresh(ctx, &call, token).await
    } else {
        revoke_access(ctx, &call, token).await
    }
}

/// An authenticated revocation request.
struct Call {
    caller: Caller,
    ip: Option<IpAddr>,
    now: i64,
}

impl Call {
    /// The audit event of revoking a token of account `target` in `org`.
    fn event(
        &self,
        action: &str,
        target: &str,
        org: &str,
        details: serde_json::Value,
    ) -> AuditEvent {
        match &self.caller {
            Caller::Account(a) => {
                let mut e = credential_event(a, action, self.ip, self.now, details);
                e.target_id = Some(target.to_owned());
                e
            }
            Caller::Resource(r) => AuditEvent::new("resource_server", &r.id, action, self.now)
                .in_org(org)
                .on("service_account", target)
                .from_address(self.ip.map(|i| i.to_string()))
                .with(details),
        }
    }
}

/// A refresh token: its whole family, if the caller may.
async fn revoke_refresh(ctx: &Context, call: &Call, token: &str) -> Result<(), OAuthError> {
    let Some(g) = ctx.refresh.open(token).filter(|g| g.exp > call.now) else {
        return Ok(());
    };
    let allowed = match &call.caller {
        Caller::Account(a) => a.id == g.account_id,
        Caller::Resource(r) => crate::domain::audience::same_resource(&r.audience, &g.aud),
    };
    if !allowed {
        return Err(OAuthError::AccessDenied(NOT_YOURS));
    }
    let details = json!({"family": g.family});
    let ev = call.event("refresh_token.revoked", &g.account_id, &g.org, details);
    ctx.db
        .revoke_refresh_family(&g.family, &g.account_id, call.now, &ev)
        .await?;
    Ok(())
}

/// An access token, until it would have expired anyway, if the caller may.
async fn revoke_access(ctx: &Context, call: &Call, token: &str) -> Result<(), OAuthError> {
    let keys = ctx.keys.current();
    let Some(claims) = ctx.verified.verify(&keys, token, &ctx.issuer, call.now) else {
        return Ok(());
    };
    let allowed = match &call.caller {
        Caller::Account(a) => a.client_id.as_deref() == Some(claims.client_id.as_str()),
        Caller::Resource(r) => claims.aud.names(&r.audience),
    };
    if !allowed {
        return Err(OAuthError::AccessDenied(NOT_YOURS));
    }
    let Some(target) = ctx.db.account_by_client_id(&claims.client_id).await? else {
        return Ok(());
    };
    let details = json!({"jti": claims.jti});
    let ev = call.event("access_token.revoked", &target.id, &claims.org, details);
    ctx.db
        .revoke_access_token(&claims.jti, &claims.client_id, claims.exp, call.now, &ev)
        .await?;
    Ok(())
}
