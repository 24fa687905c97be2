//! Other parties' JWTs: a client's assertion signed with its registered
//! key (`private_key_jwt`, RFC 7523 §2.2) and an external issuer's token
//! (federation, RFC 7523 §2.1 and RFC 8693). Public JWKs (RFC 7517) are
//! parsed and checked once, into keys ready to verify; compact JWS
//! (RFC 7515) are split, their header checked, and verified against such
//! a key.
//!
//! Only asymmetric algorithms: ES256, ES384, RS256, PS256, EdDSA. `none`
//! and every HMAC are refused before any key is looked at (a key can never
//! be confused for a shared secret), a key signs only with the algorithms
//! of its type (and only its own `alg` when it names one), a header's
//! `jku`/`x5u`/`jwk`/`x5c` are never followed, and `crit` is refused.
use aws_lc_rs::signature::ParsedPublicKey;
use data_encoding::BASE64URL_NOPAD;
use serde::Deserialize;
use serde_json::{Map, Value};

mod kty;
use kty::{ec, okp, rsa};

/// A JWS signing algorithm warden accepts from others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAlg {
    ES256,
    ES384,
    RS256,
    PS256,
    EdDSA,
}

/// Every accepted algorithm, as the metadata lists them.
pub const ACCEPTED_ALGS: [JwsAlg; 5] = [
    JwsAlg::ES256,
    JwsAlg::ES384,
    JwsAlg::PS256,
    JwsAlg::RS256,
    JwsAlg::EdDSA,
];

impl JwsAlg {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ES256" => Some(Self::ES256),
            "ES384" => Some(Self::ES384),
            "RS256" => Some(Self::RS256),
            "PS256" => Some(Self::PS256),
            "EdDSA" => Some(Self::EdDSA),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::EdDSA => "EdDSA",
        }
    }
}

/// Why a JWK is refused (the admin API says so, naming the member).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    #[error("a JWK is a JSON object")]
    NotAnObject,
    #[error("`{0}` is missing or not a string")]
    Missing(&'static str),
    #[error("this is a private key (it has `{0}`); register only the public key")]
    Private(&'static str),
    #[error("unsupported key: {0}")]
    Unsupported(String),
    #[error("`{0}` is not valid base64url")]
    Encoding(&'static str),
    #[error("the key is not valid: {0}")]
    Invalid(&'static str),
}

/// The members that only a private or symmetric key has.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// The smallest and largest RSA modulus accepted, in bytes.
const RSA_MODULUS_BYTES: std::ops::RangeInclusive<usize> = 256..=1024;

/// A public key, checked and ready to verify with.
pub struct PublicJwk {
    /// Its `kid`, if it has one.
    pub kid: Option<String>,
    /// The public members only, as registered (`kty` and the key's own).
    members: Map<String, Value>,
    /// The one algorithm it is restricted to (`alg`), if any.
    alg: Option<JwsAlg>,
    /// Verifiers by algorithm (an RSA key has two).
    verifiers: Vec<(JwsAlg, ParsedPublicKey)>,
}

impl std::fmt::Debug for PublicJwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicJwk")
            .field("kid", &self.kid)
            .field("members", &self.members)
            .finish()
    }
}

fn text<'a>(m: &'a Map<String, Value>, k: &'static str) -> Result<&'a str, JwkError> {
    m.get(k).and_then(Value::as_str).ok_or(JwkError::Missing(k))
}

fn bytes(m: &Map<String, Value>, k: &'static str) -> Result<Vec<u8>, JwkError> {
    BASE64URL_NOPAD
        .decode(text(m, k)?.as_bytes())
        .map_err(|_| JwkError::Encoding(k))
}

impl PublicJwk {
    /// Parses and checks a public JWK: `kty` `EC` (P-256, P-384), `RSA`
    /// (2048 to 8192 bits) or `OKP` (Ed25519); no private member; `use`,
    /// when given, `sig`; `alg`, when given, one warden accepts for that
    /// key type.
    pub fn parse(v: &Value) -> Result<Self, JwkError> {
        let m = v.as_object().ok_or(JwkError::NotAnObject)?;
        if let Some(p) = PRIVATE_MEMBERS.iter().find(|p| m.contains_key(**p)) {
            return Err(JwkError::Private(p));
        }
        if m.get("use").is_some_and(|u| u != "sig") {
            return Err(JwkError::Unsupported("`use` must be `sig`".into()));
        }
        let kid = match m.get("kid") {
            None => None,
            Some(Value::String(k)) if !k.is_empty() && k.len() <= 256 => Some(k.clone()),
            Some(_) => return Err(JwkError::Invalid("`kid` must be a string of 1 to 256")),
        };
        let alg = match m.get("alg") {
            None => None,
            Some(a) => Some(a.as_str().and_then(JwsAlg::parse).ok_or_else(|| {
                let shown: String = a.to_string().chars().take(32).collect();
                JwkError::Unsupported(format!(
                    "`alg` {shown}: one of ES256, ES384, RS256, PS256, EdDSA"
                ))
            })?),
        };
        let kty = text(m, "kty")?;
        let (members, verifiers) = match kty {
            "EC" => ec(m)?,
            "RSA" => rsa(m)?,
            "OKP" => okp(m)?,
            other => {
                return Err(JwkError::Unsupported(format!(
                    "`kty` `{}`: EC, RSA or OKP (HMAC keys are never accepted)",
                    other.chars().take(16).collect::<String>()
                )));
            }
        };
        if let Some(a) = alg
            && !verifiers.iter().any(|(va, _)| *va == a)
        {
            return Err(JwkError::Unsupported(format!(
                "`alg` {} does not go with `kty` {kty}",
                a.as_str()
            )));
        }
        let mut members = members;
        if let Some(k) = &kid {
            members.insert("kid".into(), k.clone().into());
        }
        if let Some(a) = alg {
            members.insert("alg".into(), a.as_str().into());
        }
        Ok(Self {
            kid,
            members,
            alg,
            verifiers,
        })
    }

    /// The public JWK as stored and shown: its public members, `kid` and
    /// `alg` when it has them.
    pub fn to_json(&self) -> Value {
        Value::Object(self.members.clone())
    }

    /// Whether it may verify a signature made with `alg`.
    pub fn allows(&self, alg: JwsAlg) -> bool {
        self.alg.is_none_or(|a| a == alg) && self.verifiers.iter().any(|(a, _)| *a == alg)
    }

    fn verify(&self, alg: JwsAlg, message: &[u8], sig: &[u8]) -> bool {
        self.allows(alg)
            && self
                .verifiers
                .iter()
                .find(|(a, _)| *a == alg)
                .is_some_and(|(_, k)| k.verify_sig(message, sig).is_ok())
    }
}

/// Registered keys parsed once: by their stored JSON (which a change to
/// the key changes), so the hot path verifies without re-parsing.
#[derive(Default)]
pub struct JwkCache {
    map: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<PublicJwk>>>,
}

/// Entries kept before the cache starts over.
const JWK_CACHE_MAX: usize = 10_000;

impl JwkCache {
    /// The parsed key for a stored JWK, or `None` if it no longer parses.
    pub fn get(&self, stored: &str) -> Option<std::sync::Arc<PublicJwk>> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = map.get(stored) {
            return Some(k.clone());
        }
        let key = std::sync::Arc::new(PublicJwk::parse(&serde_json::from_str(stored).ok()?).ok()?);
        if map.len() >= JWK_CACHE_MAX {
            map.clear();
        }
        map.insert(stored.to_owned(), key.clone());
        Some(key)
    }
}

/// The largest JWS accepted from others, before any decoding.
pub const MAX_JWS_LEN: usize = 16 * 1024;

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<Value>,
}

/// A compact JWS split and its header checked, not yet verified.
pub struct Unverified<'a> {
    pub alg: JwsAlg,
    pub kid: Option<String>,
    pub typ: Option<String>,
    signed: &'a [u8],
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> Unverified<'a> {
    /// Splits `token` and checks its header: an accepted `alg`, no `crit`.
    /// `None` for anything else (too long, not three parts, bad base64,
    /// `none` or HMAC).
    pub fn decode(token: &'a str) -> Option<Self> {
        if token.len() > MAX_JWS_LEN {
            return None;
        }
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || h.len() > 2048 {
            return None;
        }
        let header: Header =
            serde_json::from_slice(&BASE64URL_NOPAD.decode(h.as_bytes()).ok()?).ok()?;
        if header.crit.is_some() {
            return None;
        }
        Some(Self {
            alg: JwsAlg::parse(&header.alg)?,
            kid: header.kid,
            typ: header.typ,
            signed: &token.as_bytes()[..h.len() + 1 + p.len()],
            payload: BASE64URL_NOPAD.decode(p.as_bytes()).ok()?,
            signature: BASE64URL_NOPAD.decode(s.as_bytes()).ok()?,
        })
    }

    /// The claims, if `key` verifies the signature with the header's `alg`.
    pub fn verify<T: serde::de::DeserializeOwned>(&self, key: &PublicJwk) -> Option<T> {
        key.verify(self.alg, self.signed, &self.signature)
            .then(|| serde_json::from_slice(&self.payload).ok())
            .flatten()
    }

    /// The claims before verification: only to find the key to verify
    /// with (`iss`, `sub`), never to decide anything.
    pub fn unverified_claims<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.payload).ok()
    }
}

#[cfg(test)]
mod tests;
