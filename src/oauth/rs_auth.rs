//! Resource servers authenticating to introspection and revocation: with
//! their secret (`client_auth::rs_precheck`, `rs_verify`) or with a client
//! assertion signed by one of their registered keys (`private_key_jwt`),
//! checked as an account's assertion is (`assertion::check_claims`; its
//! `jti` spent once, on every replica). Every failure is the same
//! `invalid_client`, throttled like a wrong secret.
use std::net::IpAddr;

use super::assertion::{AssertionAudience, AssertionClaims, check_claims, typ_allowed};
use super::client_auth::{
    ClientAssertion, ClientAuth, count_failure, limiter_ip, resource_server_id_shape, rs_precheck,
    rs_verify, throttle,
};
use super::{Context, OAuthError};
use crate::crypto::jose::Unverified;
use crate::domain::credentials::CLIENT_ID_PREFIX;
use crate::domain::resource_server::{ResourceServer, is_issuer};

/// The resource server a request names, and whether it may exist (`false`:
/// refuse without a lookup). Throttled callers, and service accounts (they
/// may not introspect), are refused here.
pub fn precheck(
    ctx: &Context,
    auth: &ClientAuth,
    peer_ip: Option<IpAddr>,
) -> Result<(String, bool), OAuthError> {
    match auth {
        ClientAuth::Secret(c) => Ok((c.client_id.clone(), rs_precheck(ctx, c, peer_ip)?)),
        ClientAuth::Assertion(a) => {
            let id = a.claimed.clone();
            throttle(&ctx.rs_limiter, &id, limiter_ip(peer_ip), "introspect")?;
            if id.starts_with(CLIENT_ID_PREFIX) {
                return Err(OAuthError::NotAResourceServer);
            }
            let decodes = Unverified::decode(&a.assertion).is_some();
            Ok((id.clone(), decodes && resource_server_id_shape(&id)))
        }
    }
}

/// Authenticates the caller against the row looked up for it (`None`: no
/// such server); `endpoint` is the path called, which an assertion may
/// name as its audience.
pub async fn verify(
    ctx: &Context,
    auth: &ClientAuth,
    id: &str,
    peer_ip: Option<IpAddr>,
    now: i64,
    row: Option<ResourceServer>,
    endpoint: &str,
) -> Result<ResourceServer, OAuthError> {
    match auth {
        ClientAuth::Secret(c) => rs_verify(ctx, c, peer_ip, now, row).await,
        ClientAuth::Assertion(a) => by_assertion(ctx, a, id, peer_ip, now, row, endpoint).await,
    }
}

/// Looks the caller up alone, then authenticates it.
pub async fn authenticate(
    ctx: &Context,
    auth: &ClientAuth,
    peer_ip: Option<IpAddr>,
    now: i64,
    endpoint: &str,
) -> Result<ResourceServer, OAuthError> {
    let (id, lookup) = precheck(ctx, auth, peer_ip)?;
    let row = if lookup {
        ctx.db.resource_server_by_client_id(&id).await?
    } else {
        None
    };
    verify(ctx, auth, &id, peer_ip, now, row, endpoint).await
}

async fn by_assertion(
    ctx: &Context,
    a: &ClientAssertion,
    id: &str,
    peer_ip: Option<IpAddr>,
    now: i64,
    row: Option<ResourceServer>,
    endpoint: &str,
) -> Result<ResourceServer, OAuthError> {
    let endpoint_url = format!("{}{endpoint}", ctx.issuer);
    let token_endpoint = format!("{}/oauth/token", ctx.issuer);
    let endpoints = [token_endpoint.as_str(), endpoint_url.as_str()];
    let audiences = AssertionAudience::new(ctx, &endpoints);
    let live = row.filter(|r| r.is_live() && !is_issuer(&r.audience, &ctx.issuer));
    let claims = match (&live, Unverified::decode(&a.assertion)) {
        (Some(r), Some(jws)) if typ_allowed(jws.typ.as_deref()) => r
            .keys
            .iter()
            .filter_map(|k| ctx.jwks.get(k))
            .filter(|k| jws.kid.is_none() || k.kid.is_none() || k.kid == jws.kid)
            .find_map(|k| jws.verify::<AssertionClaims>(&k)),
        _ => None,
    };
    let spent = match &claims {
        Some(c) => match check_claims(c, Some(id), &audiences, now) {
            Ok(jti) => ctx.db.spend_assertion(id, jti, c.exp).await?,
            Err(_) => false,
        },
        None => false,
    };
    match live {
        Some(r) if spent => Ok(r),
        other => {
            count_failure(
                ctx,
                &ctx.rs_limiter,
                id,
                limiter_ip(peer_ip),
                now,
                other.map(|r| ("resource_server", r.id, None)),
            );
            Err(OAuthError::InvalidClient { basic: false })
        }
    }
}
