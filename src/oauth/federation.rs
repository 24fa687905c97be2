//! The federated grants: a workload presents a JWT from an external issuer
//! (its CI platform, its Kubernetes cluster, its SPIFFE trust domain,
//! another warden), as `assertion` (RFC 7523 §2.1, jwt-bearer) or
//! `subject_token` (RFC 8693, token exchange), and gets a warden access
//! token for the account one federated credential names. No secret is
//! stored anywhere.
//!
//! The token selects the credential by its `iss` and `sub` (one indexed
//! read, with the account), then is verified with the issuer's keys
//! (`issuers`: cached, fetched only for an issuer a credential names),
//! then its `aud` and the credential's exact-match claims must select
//! exactly one credential. Every failure is counted for the throttle like
//! a wrong secret: against the address alone until the signature has
//! verified (a stranger can write any `iss` and `sub` into an unsigned
//! token, and must not spend a real workload's budget with it), and
//! against the verified issuer and subject after.
//!
//! The request must name the account (`client_id`) unless the operator
//! allows id-less matching (`WARDEN_FEDERATION_CLIENT_ID=optional`, for a
//! single-tenant deployment): otherwise another org's copy of the same
//! trust could make the exchange ambiguous, or, once the first org's
//! trust lapses, hand the workload a token of an account in an org it
//! never chose.
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::client_auth::{client_failed, count_address_failure, limiter_ip, throttle};
use super::issuers::{KeySource, MAX_VERIFY_ATTEMPTS};
use super::{Context, OAuthError};
use crate::crypto::jose::Unverified;
use crate::crypto::verify::LEEWAY_SECS;
use crate::db::federation::{FederatedCandidate, MAX_CANDIDATES};
use crate::db::hot::Audience;
use crate::domain::account::ServiceAccount;
use crate::domain::federation::claims_match;

pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The `subject_token_type` accepted: a JWT (RFC 8693 §3).
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// The `issued_token_type` of the answer.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The oldest external token accepted: issued (`iat`) at most an hour
/// ago, or without `iat`, expiring (`exp`) at most an hour ahead. A
/// Kubernetes projected token of the default hour is refreshed by the
/// kubelet at 80% of its life, so it is never older.
pub const MAX_TOKEN_AGE_SECS: i64 = 3600;

/// The account a federated token was exchanged for.
pub struct Federated {
    pub account: ServiceAccount,
    /// The requested audience, read with the account.
    pub requested: Audience,
    /// What the audit event says of the exchange: the credential, and the
    /// external token's issuer, subject and `jti`.
    pub details: Value,
}

/// How the grant says "this token is refused": `invalid_grant` for
/// jwt-bearer (RFC 7523 §3.1), `invalid_request` for token exchange
/// (RFC 8693 §2.2.2).
pub type Refuse = fn(&'static str) -> OAuthError;

/// The federated token's presenter, as the request gave it.
pub struct Presented<'a> {
    pub token: &'a str,
    /// The form's `client_id`, if sent: the account must be that client.
    pub client_id: Option<&'a str>,
    pub source_ip: Option<IpAddr>,
    pub now: i64,
    /// The audience key to read with the account (as `account_for_token`).
    pub audience: Option<&'a str>,
}

/// Exchanges an external token for the account of the one federated
/// credential it matches.
pub async fn authenticate(
    ctx: &Context,
    p: &Presented<'_>,
    refuse: Refuse,
) -> Result<Federated, OAuthError> {
    let ip = limiter_ip(p.source_ip);
    ctx.client_limiter.check_address(ip).map_err(|wait| {
        metrics::counter!("warden_auth_throttled_total", "endpoint" => "token").increment(1);
        OAuthError::TooManyAttempts(wait.as_secs_f64().ceil().max(1.0) as u64)
    })?;
    if p.client_id.is_none() && !ctx.federation_client_id_optional {
        count_address_failure(ctx, &ctx.client_limiter, ip, p.now);
        return Err(refuse(
            "name the service account with client_id: a federated token is exchanged only for \
             the account it names",
        ));
    }
    let jws = Unverified::decode(p.token);
    let named = jws
        .as_ref()
        .and_then(|j| j.unverified_claims::<Map<String, Value>>())
        .and_then(|c| Some((text(&c, "iss")?, text(&c, "sub")?)));
    let outcome = match (jws, named) {
        (Some(jws), Some((iss, sub))) => select(ctx, p, &jws, &iss, &sub).await?,
        _ => Err(Refusal::Unverified(
            "the token is not a JWT signed with an algorithm warden accepts, with iss and sub",
        )),
    };
    match outcome {
        Ok((c, account, details)) => {
            ctx.bookkeeper
                .credential_used(&c.credential_id, p.now, p.source_ip);
            Ok(Federated {
                account,
                requested: c.requested,
                details,
            })
        }
        Err(Refusal::Unverified(why)) => {
            count_address_failure(ctx, &ctx.client_limiter, ip, p.now);
            Err(refuse(why))
        }
        Err(Refusal::Verified(key, why)) => {
            client_failed(ctx, &key, None, p.source_ip, p.now);
            Err(refuse(why))
        }
    }
}

/// Why a federated token is refused, and whether its signature had
/// verified by then (so its issuer and subject are the credential's, and
/// the failure counts against them).
enum Refusal {
    Unverified(&'static str),
    Verified(String, &'static str),
}

/// The throttle's key for a verified issuer and subject.
fn verified_key(iss: &str, sub: &str) -> String {
    format!("{iss} {sub}").chars().take(256).collect()
}

fn text(c: &Map<String, Value>, k: &str) -> Option<String> {
    c.get(k).and_then(Value::as_str).map(str::to_owned)
}

type Selected = Result<(FederatedCandidate, ServiceAccount, Value), Refusal>;

/// The one credential the verified token matches, or why none does.
async fn select(
    ctx: &Context,
    p: &Presented<'_>,
    jws: &Unverified<'_>,
    iss: &str,
    sub: &str,
) -> Result<Selected, OAuthError> {
    if iss == ctx.issuer {
        // Its own tokens are checked live (revocation, the account's
        // state) where they are presented; exchanging one would skip that.
        return Ok(Err(Refusal::Unverified(
            "warden's own access tokens are not exchanged: the account authenticates with its own credentials",
        )));
    }
    let candidates = ctx
        .db
        .federated_candidates(iss, sub, p.audience, p.client_id, p.now)
        .await?;
    if candidates.is_empty() {
        return Ok(Err(Refusal::Unverified(
            "no federated credential trusts this token's issuer and subject",
        )));
    }
    if candidates.len() > MAX_CANDIDATES {
        return Ok(Err(Refusal::Unverified(
            "too many federated credentials trust this token's issuer and subject: name the account with client_id",
        )));
    }
    // Only now, for an issuer a credential names, are its keys looked up.
    let keys = ctx
        .issuers
        .keys(KeySource::Issuer(iss), jws.kid.as_deref())
        .await;
    if keys.is_empty() {
        return Ok(Err(Refusal::Unverified(
            "the issuer's key for this token could not be found (its discovery or JWKS is unavailable, or the kid is unknown)",
        )));
    }
    let Some(claims) = keys
        .iter()
        .take(MAX_VERIFY_ATTEMPTS)
        .find_map(|k| jws.verify::<Map<String, Value>>(k))
    else {
        return Ok(Err(Refusal::Unverified(
            "the token's signature does not verify with the issuer's keys",
        )));
    };
    // Verified: from here on, failures count against this issuer and
    // subject, and a throttled one is refused before more work.
    let key = verified_key(iss, sub);
    throttle(&ctx.client_limiter, &key, limiter_ip(p.source_ip), "token")?;
    if let Err(why) = check_times(&claims, p.now) {
        return Ok(Err(Refusal::Verified(key, why)));
    }
    let claims = Value::Object(claims);
    let aud = claims.as_object().map(audiences).unwrap_or_default();
    let mut matching = candidates.into_iter().filter(|c| {
        aud.iter().any(|a| *a == c.audience)
            && claims_match(&c.claims, &claims)
            && p.client_id
                .is_none_or(|id| c.account.client_id.as_deref() == Some(id))
    });
    let Some(one) = matching.next() else {
        return Ok(Err(Refusal::Verified(
            key.clone(),
            "the token's audience or claims match no federated credential for its issuer and subject",
        )));
    };
    if matching.next().is_some() {
        return Ok(Err(Refusal::Verified(
            key.clone(),
            "the token matches more than one federated credential: name the account with client_id",
        )));
    }
    let account = one.account.clone();
    let details = serde_json::json!({"credential": one.credential_id, "issuer": iss,
        "subject": sub, "jti": claims.get("jti").and_then(Value::as_str)});
    Ok(Ok((one, account, details)))
}

/// The token's `aud`: a string or an array of strings.
fn audiences(claims: &Map<String, Value>) -> Vec<&str> {
    match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// `exp` required and not passed; `nbf` and `iat` not ahead; and not
/// older than `MAX_TOKEN_AGE_SECS` (by `iat`, else by how far `exp` is).
/// The leeway is the one warden's own tokens get.
pub fn check_times(claims: &Map<String, Value>, now: i64) -> Result<(), &'static str> {
    // NumericDate may have a fraction (RFC 7519 §2): compared as numbers.
    let num = |k: &str| claims.get(k).and_then(Value::as_f64);
    let (now, leeway, max_age) = (now as f64, LEEWAY_SECS as f64, MAX_TOKEN_AGE_SECS as f64);
    let Some(exp) = num("exp") else {
        return Err("the token has no exp");
    };
    // Present but not a number (`"nbf": "later"`) is refused, never read as
    // absent.
    if ["nbf", "iat"]
        .iter()
        .any(|k| claims.get(*k).is_some_and(|v| !v.is_number()))
    {
        return Err("the token's nbf or iat is not a number");
    }
    if exp + leeway <= now {
        return Err("the token has expired");
    }
    if [num("nbf"), num("iat")]
        .iter()
        .flatten()
        .any(|t| *t > now + leeway)
    {
        return Err("the token is not valid yet");
    }
    let too_old = match num("iat") {
        Some(iat) => iat + max_age + leeway < now,
        None => exp > now + max_age + leeway,
    };
    if too_old {
        return Err("the token is too old: it must be issued within the last hour");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn times(v: Value) -> Result<(), &'static str> {
        check_times(v.as_object().unwrap(), NOW)
    }

    #[test]
    fn times_are_checked_with_the_leeway_and_the_age_bound() {
        assert!(times(json!({"exp": NOW + 300, "iat": NOW - 10})).is_ok());
        assert!(times(json!({"exp": NOW - 10, "iat": NOW - 300})).is_ok());
        assert!(times(json!({"exp": NOW + 3600})).is_ok());
        assert!(times(json!({"exp": NOW + 86_400, "iat": NOW - 3600})).is_ok());
        assert!(times(json!({"exp": i64::MAX, "iat": NOW})).is_ok());
        for bad in [
            json!({}),
            json!({"exp": "soon"}),
            json!({"exp": NOW + 300, "nbf": NOW as f64 + 31.5}),
            json!({"exp": NOW + 300, "iat": NOW as f64 + 31.5}),
            json!({"exp": u64::MAX}),
            json!({"exp": NOW - 31}),
            json!({"exp": NOW + 300, "nbf": NOW + 31}),
            json!({"exp": NOW + 300, "iat": NOW + 31}),
            json!({"exp": NOW + 300, "iat": NOW - 3600 - 31}),
            json!({"exp": NOW + 3600 + 31}),
            json!({"exp": NOW + 300, "nbf": "later"}),
            json!({"exp": NOW + 300, "iat": "2026-01-01"}),
            json!({"exp": NOW + 300, "iat": null}),
        ] {
            assert!(times(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn aud_is_a_string_or_a_list() {
        let c = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(audiences(&c(json!({"aud": "a"}))), vec!["a"]);
        assert_eq!(audiences(&c(json!({"aud": ["a", 1, "b"]}))), vec!["a", "b"]);
        assert!(audiences(&c(json!({"aud": 1}))).is_empty());
    }
}
