//! Verifying warden's own access tokens (introspection, revocation, the
//! admin API's bearer check). Only the published keys, only ES256, EdDSA
//! and RS256 (each only with a key of that type), only `typ: at+jwt`; the header's `jku`/`x5u`/`jwk` are never
//! followed and a `crit` header is refused.
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey,
};
use data_encoding::BASE64URL_NOPAD;
use serde::Deserialize;

use super::keys::{Alg, KeySet};

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
    /// (`domain::audience`)?
    pub fn names(&self, aud: &str) -> bool {
        let same = crate::domain::audience::same_resource;
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

impl AccessClaims {
    /// What a revocation check needs: the `jti` and the grant's family.
    pub fn token_ref(&self) -> crate::domain::credentials::TokenRef<'_> {
        crate::domain::credentials::TokenRef {
            jti: &self.jti,
            family: self.sid.as_deref(),
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// Verifies signature, header and time claims. `None` for anything that is
/// not a currently valid token of this issuer.
pub fn verify_access_token(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    now: i64,
) -> Option<AccessClaims> {
    verify_with_kid(keys, token, issuer, now).map(|(_, claims)| claims)
}

/// As `verify_access_token`, also returning the id of the key that signed.
fn verify_with_kid(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    now: i64,
) -> Option<(String, AccessClaims)> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let mut parts = token.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || h.len() > 1024 {
        return None;
    }
    let header: Header =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(h.as_bytes()).ok()?).ok()?;
    let alg = match header.alg.as_str() {
        "ES256" => Alg::ES256,
        "EdDSA" => Alg::EdDSA,
        "RS256" => Alg::RS256,
        _ => return None,
    };
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok || header.crit.is_some() {
        return None;
    }
    let kid = header.kid?;
    let key = keys
        .keys
        .iter()
        .find(|k| k.meta.kid == kid && k.meta.alg == alg)?;
    let sig = BASE64URL_NOPAD.decode(s.as_bytes()).ok()?;
    let signed = &token.as_bytes()[..h.len() + 1 + c.len()];
    let verifier = match alg {
        Alg::ES256 => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &key.public),
        Alg::EdDSA => UnparsedPublicKey::new(&ED25519, &key.public),
        Alg::RS256 => UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &key.public),
    };
    verifier.verify(signed, &sig).ok()?;
    let claims: AccessClaims =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(c.as_bytes()).ok()?).ok()?;
    let timely =
        claims.exp > now && claims.nbf <= now + LEEWAY_SECS && claims.iat <= now + LEEWAY_SECS;
    (timely && claims.iss == issuer).then_some((kid, claims))
}

/// Tokens whose signature was already verified, keyed by SHA-256 of the
/// whole token (so a signature cannot be replayed onto other claims).
/// An entry is used only while its key is still published and its token
/// unexpired; the live account checks run on every call regardless.
pub struct VerifiedTokens {
    map: std::sync::Mutex<std::collections::HashMap<[u8; 32], Verified>>,
}

/// The key id that signed a token and its verified claims.
type Verified = std::sync::Arc<(String, AccessClaims)>;

const VERIFIED_MAX: usize = 100_000;

impl Default for VerifiedTokens {
    fn default() -> Self {
        Self {
            map: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}

impl VerifiedTokens {
    pub fn verify(
        &self,
        keys: &KeySet,
        token: &str,
        issuer: &str,
        now: i64,
    ) -> Option<AccessClaims> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref(),
        );
        let hit = self.map.lock().ok().and_then(|m| m.get(&id).cloned());
        if let Some(entry) = hit {
            let (kid, claims) = &*entry;
            let timely = claims.exp > now && claims.nbf <= now + LEEWAY_SECS;
            if timely && claims.iss == issuer && keys.keys.iter().any(|k| &k.meta.kid == kid) {
                return Some(claims.clone());
            }
            return None;
        }
        let (kid, claims) = verify_with_kid(keys, token, issuer, now)?;
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= VERIFIED_MAX {
                m.retain(|_, e| e.1.exp > now);
                if m.len() >= VERIFIED_MAX {
                    m.clear();
                }
            }
            m.insert(id, std::sync::Arc::new((kid, claims.clone())));
        }
        Some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::{KeyStore, create_key};

    fn token(keys: &KeySet, now: i64, exp: i64) -> String {
        let claims = serde_json::json!({
            "iss": "https://i", "sub": "s", "client_id": "s", "aud": "a", "exp": exp, "iat": now, "nbf": now,
            "jti": "j", "scope": "", "roles": [], "org": "o",
        });
        keys.signing
            .sign_jwt(claims.to_string().as_bytes())
            .unwrap_or_default()
    }

    #[test]
    fn cache_honours_expiry_key_set_and_exact_token() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let now = 1_000_000;
        let store = KeyStore::open(dir.path(), now).unwrap_or_else(|e| unreachable!("{e}"));
        let keys = store.current();
        let cache = VerifiedTokens::default();
        let t = token(&keys, now, now + 900);
        assert!(cache.verify(&keys, &t, "https://i", now).is_some());
        assert!(
            cache.verify(&keys, &t, "https://i", now).is_some(),
            "cached"
        );
        assert!(
            cache.verify(&keys, &t, "https://other", now).is_none(),
            "issuer still checked"
        );
        assert!(
            cache.verify(&keys, &t, "https://i", now + 900).is_none(),
            "expiry still checked, from exp on, with no leeway"
        );
        assert!(cache.verify(&keys, &t, "https://i", now + 899).is_some());
        // A cached signature does not vouch for other claims.
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        parts[1] = BASE64URL_NOPAD.encode(br#"{"iss":"https://i","sub":"x","client_id":"x","aud":"a","exp":9999999999,"iat":1,"nbf":1,"jti":"j","scope":"","roles":["admin"],"org":"o"}"#);
        assert!(
            cache
                .verify(&keys, &parts.join("."), "https://i", now)
                .is_none()
        );
        // Once the key is no longer published (pruned), the cached entry is dead.
        let other = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        create_key(other.path(), Alg::ES256, now, now).unwrap_or_else(|e| unreachable!("{e}"));
        let other_keys = KeyStore::open(other.path(), now)
            .unwrap_or_else(|e| unreachable!("{e}"))
            .current();
        assert!(cache.verify(&other_keys, &t, "https://i", now).is_none());
    }
}
