//! The access token's contract (RFC 9068, as warden issues it): its
//! claims, strictly typed, and the limits every verifier applies.
use serde::Deserialize;

use crate::jose::{PublicJwk, Unverified};

/// Larger tokens are refused before any decoding.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Allowed clock skew between replicas and resource servers, in seconds:
/// for others' tokens (assertions, federated JWTs) and for `nbf`/`iat` of
/// warden's own. Never for `exp` of warden's own tokens: warden judges
/// them on its own clock, and RFC 7662 §2.2 makes an expired token
/// inactive from `exp` on.
pub const LEEWAY_SECS: i64 = 30;

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Self::One(a) => a == aud,
            Self::Many(v) => v.iter().any(|a| a == aud),
        }
    }
    /// Does it name the resource `aud`, in any spelling of it
    /// (`crate::audience`)?
    pub fn names(&self, aud: &str) -> bool {
        let same = crate::audience::same_resource;
        match self {
            Self::One(a) => same(a, aud),
            Self::Many(v) => v.iter().any(|a| same(a, aud)),
        }
    }
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::One(a) => a.clone().into(),
            Self::Many(v) => v.clone().into(),
        }
    }
}

/// The claims warden puts in an access token, strictly typed: a string
/// `exp` or a missing claim fails deserialization.
#[derive(Debug, Clone, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub client_id: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub scope: String,
    pub roles: Vec<String>,
    pub org: String,
    /// The refresh-token family the token was issued with, if any.
    #[serde(default)]
    pub sid: Option<String>,
}

/// Verifies one of warden's access tokens: at most `MAX_TOKEN_LEN`, a
/// compact JWS whose header is `typ: at+jwt` with a `kid` and an accepted
/// asymmetric `alg` (never `none` or HMAC, no `crit`, header keys never
/// followed), signed by the key `key_for` finds for that `kid` (which
/// verifies only its own algorithm), issued by `issuer`, unexpired at `now`
/// (no leeway on `exp`: RFC 7662 §2.2) and not used before its `nbf`/`iat`
/// (with `LEEWAY_SECS`). The key id and the claims, or `None`.
pub fn verify_access_token<'k>(
    token: &str,
    issuer: &str,
    now: i64,
    key_for: impl FnOnce(&str) -> Option<&'k PublicJwk>,
) -> Option<(String, AccessClaims)> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let jws = Unverified::decode(token)?;
    let typ_ok = jws.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return None;
    }
    let kid = jws.kid.clone()?;
    let claims: AccessClaims = jws.verify(key_for(&kid)?)?;
    let timely =
        claims.exp > now && claims.nbf <= now + LEEWAY_SECS && claims.iat <= now + LEEWAY_SECS;
    (timely && claims.iss == issuer).then_some((kid, claims))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn claims(extra: &str) -> String {
        format!(
            r#"{{"iss":"https://w.example","sub":"arm_sa_x","client_id":"arm_sa_x",
               "aud":"https://api.example.com","exp":2,"iat":1,"nbf":1,"jti":"j",
               "scope":"a:read","roles":["r"],"org":"default"{extra}}}"#
        )
    }

    #[test]
    fn claims_are_strictly_typed() {
        let c: AccessClaims = serde_json::from_str(&claims("")).unwrap();
        assert_eq!((c.exp, c.sid), (2, None));
        let c: AccessClaims = serde_json::from_str(&claims(r#","sid":"f""#)).unwrap();
        assert_eq!(c.sid.as_deref(), Some("f"));
        // A string `exp` or a missing claim is no access token.
        let bad = claims("").replace(r#""exp":2"#, r#""exp":"2""#);
        assert!(serde_json::from_str::<AccessClaims>(&bad).is_err());
        let bad = claims("").replace(r#""jti":"j","#, "");
        assert!(serde_json::from_str::<AccessClaims>(&bad).is_err());
    }

    #[test]
    fn an_audience_names_a_resource_in_any_spelling() {
        let one = Audience::One("https://api.example.com".into());
        assert!(one.names("HTTPS://API.example.com:443/"));
        assert!(
            !one.contains("https://api.example.com/"),
            "contains is exact"
        );
        assert!(!one.names("https://api.example.com/v2"));
        let many = Audience::Many(vec!["urn:a".into(), "https://b.example".into()]);
        assert!(many.names("https://b.example/") && many.contains("urn:a"));
        assert_eq!(
            many.to_json(),
            serde_json::json!(["urn:a", "https://b.example"])
        );
    }
}
