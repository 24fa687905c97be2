//! The claims of a client assertion (`private_key_jwt`, RFC 7523 §2.2 and
//! §3, OIDC Core §9), checked once its signature is: who it names, whom it
//! is for, how long it lives, and that it can be spent only once (its
//! `jti`, recorded by the caller until `exp`).
use std::net::IpAddr;

use serde::Deserialize;

use super::client_auth::{ClientAssertion, client_failed, limiter_ip, throttle};
use super::issuers::{KeySource, MAX_VERIFY_ATTEMPTS};
use super::{Context, OAuthError};
use crate::crypto::jose::{PublicJwk, Unverified};
use crate::crypto::verify::{Audience, LEEWAY_SECS};
use crate::db::hot::{AccountKey, Audience as Probed};
use crate::domain::account::ServiceAccount;
use crate::domain::credentials::ClientId;

/// The `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER_CLIENT_ASSERTION: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The client an assertion claims to be: the form's `client_id`, else its
/// (unverified) `sub`, else empty. Only a lookup key: the signature and
/// the claims are checked against that client's keys.
/// Worked out once, when the request is read (`ClientAssertion::new`).
pub fn claimed_client(client_id: Option<&str>, assertion: &str) -> String {
    #[derive(Deserialize)]
    struct Sub {
        sub: String,
    }
    client_id.map(str::to_owned).unwrap_or_else(|| {
        Unverified::decode(assertion)
            .and_then(|j| j.unverified_claims::<Sub>())
            .map(|s| s.sub)
            .unwrap_or_default()
    })
}

/// Authenticates a client by its assertion presented at `endpoint` (the
/// path of the token endpoint or of revocation: an assertion may name it
/// in `aud`), in the token endpoint's one
/// read (the account, the audience and the account's unexpired keys), then
/// spends the assertion's `jti` (one write: an assertion works once, on
/// any replica). Every failure is the same `invalid_client`, counted for
/// the throttle like a wrong secret.
pub async fn authenticate(
    ctx: &Context,
    a: &ClientAssertion,
    source_ip: Option<IpAddr>,
    now: i64,
    audience: Option<&str>,
    endpoint: &str,
) -> Result<(ServiceAccount, Probed), OAuthError> {
    let fail = OAuthError::InvalidClient { basic: false };
    let client_id = a.claimed.clone();
    throttle(
        &ctx.client_limiter,
        &client_id,
        limiter_ip(source_ip),
        "token",
    )?;
    let jws = Unverified::decode(&a.assertion);
    let found = match (ClientId::parse(&client_id), &jws) {
        (Some(id), Some(_)) => {
            ctx.db
                .account_for_token(id.as_str(), audience, Some(now))
                .await?
        }
        _ => None,
    };
    let found = found.filter(|t| !t.account.is_deleted());
    let token_endpoint = format!("{}/oauth/token", ctx.issuer);
    let called = format!("{}{endpoint}", ctx.issuer);
    let endpoints = [token_endpoint.as_str(), called.as_str()];
    let audiences = AssertionAudience::new(ctx, &endpoints);
    let verified = match (&found, &jws) {
        (Some(t), Some(j)) if typ_allowed(j.typ.as_deref()) => {
            verified_claims(ctx, j, &t.keys).await
        }
        _ => None,
    };
    let spent = match &verified {
        Some((c, _)) => match check_claims(c, Some(&client_id), &audiences, now) {
            Ok(jti) => ctx.db.spend_assertion(&client_id, jti, c.exp).await?,
            Err(_) => false,
        },
        None => false,
    };
    match found {
        Some(t) if spent => {
            if let Some((_, key)) = &verified {
                ctx.bookkeeper.credential_used(key, now, source_ip);
            }
            Ok((t.account, t.audience))
        }
        other => {
            client_failed(
                ctx,
                &client_id,
                other.as_ref().map(|t| &t.account),
                source_ip,
                now,
            );
            Err(fail)
        }
    }
}

/// The claims of `jws` and the id of the credential whose key verifies
/// it (the one its `kid` names, when it names one). Registered JWKs are
/// tried first; keys published at a `jwks_uri` come from their cache
/// (fetched only for a `kid` not seen yet, as an issuer's are).
async fn verified_claims(
    ctx: &Context,
    jws: &Unverified<'_>,
    keys: &[AccountKey],
) -> Option<(AssertionClaims, String)> {
    // Each verification costs: an assertion is tried against at most
    // `MAX_VERIFY_ATTEMPTS` keys in all (one that names its `kid` needs one).
    let mut budget = MAX_VERIFY_ATTEMPTS;
    let names_it = |k: &PublicJwk| jws.kid.is_none() || k.kid.is_none() || k.kid == jws.kid;
    for k in keys.iter().filter(|k| k.jwks_uri().is_none()) {
        let Some(key) = ctx.jwks.get(&k.jwk).filter(|key| names_it(key)) else {
            continue;
        };
        if budget == 0 {
            return None;
        }
        budget -= 1;
        if let Some(c) = jws.verify::<AssertionClaims>(&key) {
            return Some((c, k.id.clone()));
        }
    }
    for k in keys {
        let Some(uri) = k.jwks_uri() else { continue };
        let published = ctx
            .issuers
            .keys(KeySource::Jwks(uri), jws.kid.as_deref())
            .await;
        for p in published {
            if budget == 0 {
                return None;
            }
            budget -= 1;
            if let Some(c) = jws.verify::<AssertionClaims>(&p) {
                return Some((c, k.id.clone()));
            }
        }
    }
    None
}

/// The furthest ahead an assertion's `exp` may be: an hour (authlib signs
/// its assertions for one hour), plus the usual leeway.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600;

/// The longest `jti` kept for replay detection.
pub const MAX_JTI_LEN: usize = 256;

/// The claims warden reads from a client assertion; others are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct AssertionClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    #[serde(deserialize_with = "numeric_date")]
    pub exp: i64,
    #[serde(default, deserialize_with = "opt_numeric_date")]
    pub nbf: Option<i64>,
    #[serde(default, deserialize_with = "opt_numeric_date")]
    pub iat: Option<i64>,
    pub jti: Option<String>,
}

/// A NumericDate (RFC 7519 §2): an integer, or a number with a fraction,
/// taken to its whole second.
fn numeric_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = f64::deserialize(d)?;
    if !v.is_finite() {
        return Err(serde::de::Error::custom("not a NumericDate"));
    }
    // `as` saturates: a date past i64 is the largest one.
    Ok(v.floor() as i64)
}

fn opt_numeric_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    numeric_date(d).map(Some)
}

/// Why an assertion's claims are refused (the `error_description` of the
/// `invalid_client` answer: none of them says anything about the account).
pub type Refusal = &'static str;

/// Whom a client assertion may be for (draft-ietf-oauth-rfc7523bis): warden's
/// issuer (what the MCP SDKs and rfc7523bis send) or one of warden's
/// endpoint URLs the caller may present it to, alone or several together,
/// but never beside a value naming anyone else: an assertion minted for
/// two audiences could be replayed by the other one (the 2025
/// audience-injection attack). `strict` (`WARDEN_CLIENT_ASSERTION_AUDIENCE
/// =strict`): the issuer as the sole value.
pub struct AssertionAudience<'a> {
    pub issuer: &'a str,
    pub endpoints: &'a [&'a str],
    pub strict: bool,
}

impl<'a> AssertionAudience<'a> {
    pub fn new(ctx: &'a Context, endpoints: &'a [&'a str]) -> Self {
        Self {
            issuer: &ctx.issuer,
            endpoints,
            strict: ctx.client_assertion_audience_strict,
        }
    }

    fn accepts(&self, aud: &Audience) -> bool {
        let values: &[String] = match aud {
            Audience::One(a) => std::slice::from_ref(a),
            Audience::Many(v) => v,
        };
        if self.strict {
            return matches!(values, [only] if only == self.issuer);
        }
        !values.is_empty()
            && values
                .iter()
                .all(|v| v == self.issuer || self.endpoints.contains(&v.as_str()))
    }
}

/// A client assertion's `typ` header: none, `JWT`, or rfc7523bis's
/// `client-authentication+jwt` (RFC 7515 §4.1.9: case-insensitive, an
/// `application/` prefix optional). Anything else is another kind of JWT,
/// above all `at+jwt`, one of warden's own access tokens: never a client
/// assertion.
pub fn typ_allowed(typ: Option<&str>) -> bool {
    let Some(t) = typ else { return true };
    let t = t.to_ascii_lowercase();
    let t = t.strip_prefix("application/").unwrap_or(&t);
    t == "jwt" || t == "client-authentication+jwt"
}

/// Checks a verified assertion's claims for `client_id` (the form's, when
/// sent; else the assertion's `sub`), presented to `audiences`, at `now`.
/// Returns the `jti` to record until `exp`.
pub fn check_claims<'c>(
    c: &'c AssertionClaims,
    client_id: Option<&str>,
    audiences: &AssertionAudience<'_>,
    now: i64,
) -> Result<&'c str, Refusal> {
    if c.iss != c.sub {
        return Err("the client assertion's iss and sub must both be the client id");
    }
    if client_id.is_some_and(|id| id != c.sub) {
        return Err("the client assertion's sub is not the client_id sent");
    }
    if !audiences.accepts(&c.aud) {
        return Err(
            "the client assertion's aud must be this server's issuer (or the endpoint URL), and nothing else",
        );
    }
    if c.exp.saturating_add(LEEWAY_SECS) <= now {
        return Err("the client assertion has expired");
    }
    if c.exp > now + MAX_ASSERTION_LIFETIME_SECS + LEEWAY_SECS {
        return Err("the client assertion's exp is more than an hour ahead");
    }
    let future = |t: Option<i64>| t.is_some_and(|t| t > now + LEEWAY_SECS);
    if future(c.nbf) || future(c.iat) {
        return Err("the client assertion is not valid yet");
    }
    match c.jti.as_deref() {
        Some(j) if !j.is_empty() && j.len() <= MAX_JTI_LEN => Ok(j),
        _ => Err("the client assertion needs a jti (at most 256 characters), used once"),
    }
}

#[cfg(test)]
#[path = "assertion_tests.rs"]
mod tests;
