//! Client ids, client secrets and refresh tokens: how they are generated,
//! recognised and kept out of logs.
//!
//! Values come from the OS random generator (`getrandom`) and are encoded in
//! lowercase base32 so they survive shells, URLs and double-click selection.
use std::fmt;

use data_encoding::BASE32_NOPAD;
use secrecy::{ExposeSecret, SecretString};

pub const CLIENT_ID_PREFIX: &str = "arm_sa_";
pub const CLIENT_SECRET_PREFIX: &str = "arm_sk_";
pub const REFRESH_TOKEN_PREFIX: &str = "arm_rt_";

/// Bytes of entropy in a client id (128 bits) and a secret (256 bits).
const CLIENT_ID_BYTES: usize = 16;
const SECRET_BYTES: usize = 32;
/// Upper bound on any credential we are willing to look at; anything longer
/// is rejected before hashing or a database lookup.
pub const MAX_CREDENTIAL_LEN: usize = 512;

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS generator failing is not recoverable; refusing to mint a weak
    // credential is the only safe answer, and it happens before any state.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("the operating system random generator failed");
    buf
}

fn encode(bytes: &[u8]) -> String {
    BASE32_NOPAD.encode(bytes).to_ascii_lowercase()
}

/// `arm_sa_…`: the public identifier of a credential service account.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub fn generate() -> Self {
        Self(format!(
            "{CLIENT_ID_PREFIX}{}",
            encode(&random_bytes::<CLIENT_ID_BYTES>())
        ))
    }

    /// Accepts only the shape warden issues; anything else cannot exist in
    /// the database, so callers may reject it without a lookup.
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix(CLIENT_ID_PREFIX)?;
        (rest.len() == 26 && rest.bytes().all(is_b32)).then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({})", self.0)
    }
}

fn is_b32(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'2'..=b'7')
}

/// `arm_sk_…`: a client secret. `Debug` and `Display` print a redaction, so
/// a secret cannot reach a log line through formatting.
#[derive(Clone)]
pub struct ClientSecret(SecretString);

impl ClientSecret {
    pub fn generate() -> Self {
        let value = format!(
            "{CLIENT_SECRET_PREFIX}{}",
            encode(&random_bytes::<SECRET_BYTES>())
        );
        Self(SecretString::from(value))
    }

    /// Wraps whatever the client presented; verification decides if it is good.
    pub fn presented(s: &str) -> Self {
        Self(SecretString::from(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

impl fmt::Display for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A fresh random identifier for a refresh-token (`jti`) or family.
pub fn random_token_id() -> String {
    encode(&random_bytes::<16>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_differ() {
        let a = ClientId::generate();
        let b = ClientId::generate();
        assert_ne!(a, b);
        assert!(ClientId::parse(a.as_str()).is_some());
        assert!(ClientId::parse("arm_sa_short").is_none());
        assert!(ClientId::parse("arm_sk_aaaaaaaaaaaaaaaaaaaaaaaaaa").is_none());
    }

    #[test]
    fn secret_formatting_is_redacted() {
        let s = ClientSecret::generate();
        assert!(s.expose().starts_with(CLIENT_SECRET_PREFIX));
        assert_eq!(s.expose().len(), CLIENT_SECRET_PREFIX.len() + 52);
        assert!(!format!("{s:?} {s}").contains(s.expose()));
    }
}
