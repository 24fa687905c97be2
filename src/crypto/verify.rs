//! Verifying warden's own access tokens (introspection, revocation, the
//! admin API's bearer check). Only the published keys, only ES256, EdDSA
//! and RS256 (each only with a key of that type), only `typ: at+jwt`; the header's `jku`/`x5u`/`jwk` are never
//! followed and a `crit` header is refused.
use super::keys::KeySet;

pub use warden_token::access::{AccessClaims, Audience, LEEWAY_SECS, MAX_TOKEN_LEN};

/// What a revocation check needs of a token: its `jti` and its grant's
/// refresh-token family.
pub fn token_ref(c: &AccessClaims) -> crate::domain::credentials::TokenRef<'_> {
    crate::domain::credentials::TokenRef {
        jti: &c.jti,
        family: c.sid.as_deref(),
    }
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

/// As `verify_access_token`, also returning the id of the key that signed:
/// the token contract's verifier (`warden_token::access`, the same one the
/// resource-server kit runs) with the published keys.
fn verify_with_kid(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    now: i64,
) -> Option<(String, AccessClaims)> {
    warden_token::access::verify_access_token(token, issuer, now, |kid| {
        keys.keys
            .iter()
            .find(|k| k.meta.kid == kid)
            .map(|k| &*k.verifier)
    })
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
    use crate::crypto::keys::{Alg, KeyStore, create_key};
    use data_encoding::BASE64URL_NOPAD;

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
