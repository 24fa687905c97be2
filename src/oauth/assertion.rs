//! The claims of a client assertion (`private_key_jwt`, RFC 7523 §2.2 and
//! §3, OIDC Core §9), checked once its signature is: who it names, whom it
//! is for, how long it lives, and that it can be spent only once (its
//! `jti`, recorded by the caller until `exp`).
use serde::Deserialize;

use crate::crypto::verify::{Audience, LEEWAY_SECS};

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
    pub exp: i64,
    pub nbf: Option<i64>,
    pub iat: Option<i64>,
    pub jti: Option<String>,
}

/// Why an assertion's claims are refused (the `error_description` of the
/// `invalid_client` answer: none of them says anything about the account).
pub type Refusal = &'static str;

/// Checks a verified assertion's claims for `client_id` (the form's, when
/// sent; else the assertion's `sub`), presented to one of `audiences` (the
/// issuer, the token endpoint's URL, or the endpoint called), at `now`.
/// Returns the `jti` to record until `exp`.
pub fn check_claims<'c>(
    c: &'c AssertionClaims,
    client_id: Option<&str>,
    audiences: &[&str],
    now: i64,
) -> Result<&'c str, Refusal> {
    if c.iss != c.sub {
        return Err("the client assertion's iss and sub must both be the client id");
    }
    if client_id.is_some_and(|id| id != c.sub) {
        return Err("the client assertion's sub is not the client_id sent");
    }
    if !audiences.iter().any(|a| c.aud.contains(a)) {
        return Err("the client assertion's aud must be this server's issuer or the endpoint URL");
    }
    if c.exp + LEEWAY_SECS <= now {
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
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const ISS: &str = "https://warden.example";
    const NOW: i64 = 1_800_000_000;

    fn claims(patch: Value) -> AssertionClaims {
        let mut base = json!({"iss": "arm_sa_x", "sub": "arm_sa_x", "aud": ISS,
                              "exp": NOW + 300, "iat": NOW, "jti": "j1"});
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        serde_json::from_value(base).unwrap()
    }

    fn check(patch: Value, client_id: Option<&str>) -> Result<String, Refusal> {
        let token_endpoint = format!("{ISS}/oauth/token");
        let c = claims(patch);
        check_claims(&c, client_id, &[ISS, &token_endpoint], NOW).map(str::to_owned)
    }

    #[test]
    fn a_good_assertion_passes_with_its_jti() {
        assert_eq!(check(json!({}), None).unwrap(), "j1");
        assert_eq!(check(json!({}), Some("arm_sa_x")).unwrap(), "j1");
        let list = json!({"aud": ["https://other", format!("{ISS}/oauth/token")]});
        assert!(check(list, None).is_ok());
        // authlib's hour, and the leeway on either side.
        assert!(check(json!({"exp": NOW + 3600}), None).is_ok());
        assert!(check(json!({"exp": NOW - 10, "iat": NOW + 10}), None).is_ok());
    }

    #[test]
    fn each_rule_refuses() {
        for (patch, client_id) in [
            (json!({"iss": "arm_sa_y"}), None),
            (json!({}), Some("arm_sa_y")),
            (json!({"aud": "https://other"}), None),
            (json!({"aud": format!("{ISS}/oauth/introspect")}), None),
            (json!({"exp": NOW - 31}), None),
            (json!({"exp": NOW + 3600 + 31}), None),
            (json!({"nbf": NOW + 31}), None),
            (json!({"iat": NOW + 31}), None),
            (json!({"jti": null}), None),
            (json!({"jti": ""}), None),
            (json!({"jti": "j".repeat(257)}), None),
        ] {
            assert!(
                check(patch.clone(), client_id).is_err(),
                "{patch} {client_id:?}"
            );
        }
    }

    #[test]
    fn exp_is_required() {
        let v = json!({"iss": "a", "sub": "a", "aud": ISS, "jti": "j"});
        assert!(serde_json::from_value::<AssertionClaims>(v).is_err());
    }
}
