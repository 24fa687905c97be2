//! Client ids, client secrets and refresh tokens: how they are generated,
//! recognised and kept out of logs.
//!
//! Values come from a CSPRNG seeded by the OS (`random_bytes`) and are encoded in
//! lowercase base32 so they survive shells, URLs and double-click selection.
//!
//! Secrets and refresh tokens end in a 7-character checksum: CRC-32
//! (ISO-HDLC) of everything before it, big-endian, in the same lowercase
//! base32. A secret scanner can tell a real warden secret from a look-alike
//! without calling us, and warden rejects a mistyped or invented value
//! before any database lookup or Argon2 work. The checksum is public
//! information about public bytes; it adds nothing to an attacker's odds.
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
/// Characters of checksum at the end of a secret or refresh token.
pub const CHECKSUM_LEN: usize = 7;
/// Base32 characters of a secret's random part (256 bits).
const SECRET_BODY_LEN: usize = 52;
/// Total length of an `arm_sk_` secret.
pub const CLIENT_SECRET_LEN: usize = CLIENT_SECRET_PREFIX.len() + SECRET_BODY_LEN + CHECKSUM_LEN;

/// Slice-by-16 tables: a refresh token is several hundred bytes and its
/// checksum is computed on every issue and every use.
const CRC32: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISO_HDLC);

/// The checksum of `payload`, as it is appended.
/// Encoded into a stack buffer: it runs on every token request.
fn checksum(payload: &str) -> [u8; CHECKSUM_LEN] {
    let mut out = [0u8; CHECKSUM_LEN];
    BASE32_NOPAD.encode_mut(&CRC32.checksum(payload.as_bytes()).to_be_bytes(), &mut out);
    out.make_ascii_lowercase();
    out
}

/// Appends the checksum of everything already in `s`.
pub fn append_checksum(s: &mut String) {
    let c = checksum(s);
    s.extend(c.iter().map(|b| char::from(*b)));
}

/// Splits a checksummed value into its payload if the checksum matches.
pub fn verify_checksum(s: &str) -> Option<&str> {
    let cut = s.len().checked_sub(CHECKSUM_LEN)?;
    let (payload, sum) = (s.get(..cut)?, s.get(cut..)?);
    (checksum(payload) == sum.as_bytes()).then_some(payload)
}

/// Random bytes from AWS-LC's generator: a per-thread CTR-DRBG seeded and
/// reseeded from the operating system (and reset across a fork), the same
/// one that makes the signing keys. Unlike a `getrandom` call per value it
/// costs no system call, which matters on the token path (two ids and a
/// nonce per token).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The generator failing is not recoverable; refusing to mint a weak
    // credential is the only safe answer, and it happens before any state.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(&mut buf).expect("the random generator failed");
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
        let mut value = format!(
            "{CLIENT_SECRET_PREFIX}{}",
            encode(&random_bytes::<SECRET_BYTES>())
        );
        append_checksum(&mut value);
        Self(SecretString::from(value))
    }

    /// Does this have the exact shape of a secret warden issues, with a
    /// matching checksum? Anything else cannot be anyone's secret.
    pub fn is_well_formed(&self) -> bool {
        let s = self.expose();
        s.len() == CLIENT_SECRET_LEN
            && s.starts_with(CLIENT_SECRET_PREFIX)
            && s[CLIENT_SECRET_PREFIX.len()..].bytes().all(is_b32)
            && verify_checksum(s).is_some()
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

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PreviousSecret {
    pub prefix: String,
    pub hash: String,
    pub created_at: Option<i64>,
    pub expires_at: i64,
}

/// How many secrets may work at once: the current one and those still in
/// their grace period. A rotation beyond it is refused (409) until one
/// ends or is revoked.
pub const MAX_LIVE_SECRETS: usize = 5;

/// Characters of a secret shown as its prefix: `arm_sk_` plus five.
pub const SECRET_PREFIX_LEN: usize = 12;

pub fn secret_prefix(secret: &str) -> String {
    secret.chars().take(SECRET_PREFIX_LEN).collect()
}

/// The rotated-out secrets that work after a secret change: none for a
/// reset (`grace` `None`); for a rotation, those still in their grace
/// (`live`), with the current one (prefix, hash, created) in front
/// when it is kept for a `grace` of more than zero. Refused when the new
/// secret would make more than `MAX_LIVE_SECRETS`.
pub fn secrets_after_change(
    live: Vec<PreviousSecret>,
    current: Option<(&str, &str, Option<i64>)>,
    grace: Option<i64>,
    now: i64,
) -> Result<Vec<PreviousSecret>, TooManySecrets> {
    let Some(grace) = grace else {
        return Ok(Vec::new());
    };
    let mut previous = live;
    if let Some((prefix, hash, created_at)) = current.filter(|_| grace > 0) {
        previous.insert(
            0,
            PreviousSecret {
                prefix: prefix.to_owned(),
                hash: hash.to_owned(),
                created_at,
                expires_at: now + grace,
            },
        );
    }
    if previous.len() + 1 > MAX_LIVE_SECRETS {
        return Err(TooManySecrets);
    }
    Ok(previous)
}

/// A rotation would leave more than `MAX_LIVE_SECRETS` working.
#[derive(Debug)]
pub struct TooManySecrets;

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
        assert_eq!(s.expose().len(), CLIENT_SECRET_LEN);
        assert!(!format!("{s:?} {s}").contains(s.expose()));
    }

    #[test]
    fn checksums_catch_typos_and_inventions() {
        let s = ClientSecret::generate();
        assert!(s.is_well_formed());
        let v = s.expose();
        // Every single-character substitution is caught (CRC-32 detects
        // all single-symbol errors in a value this short).
        for i in CLIENT_SECRET_PREFIX.len()..v.len() {
            let mut b = v.as_bytes().to_vec();
            b[i] = if b[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(b).unwrap_or_default();
            assert!(!ClientSecret::presented(&typo).is_well_formed(), "{i}");
        }
        // Two adjacent characters swapped.
        let mut b = v.as_bytes().to_vec();
        let j = CLIENT_SECRET_PREFIX.len() + 3;
        if b[j] != b[j + 1] {
            b.swap(j, j + 1);
            let swapped = String::from_utf8(b).unwrap_or_default();
            assert!(!ClientSecret::presented(&swapped).is_well_formed());
        }
        for bad in [
            "",
            "arm_sk_",
            "arm_sk_wrong",
            &v[..v.len() - 1],
            &format!("{v}a"),
        ] {
            assert!(!ClientSecret::presented(bad).is_well_formed(), "{bad}");
        }
        // Known vector: CRC-32/ISO-HDLC("123456789") = 0xCBF43926.
        assert_eq!(
            checksum("123456789").as_slice(),
            encode(&0xCBF4_3926u32.to_be_bytes()).as_bytes()
        );
        let mut t = "arm_rt_payload".to_owned();
        append_checksum(&mut t);
        assert_eq!(verify_checksum(&t), Some("arm_rt_payload"));
        assert_eq!(verify_checksum("short"), None);
        assert_eq!(verify_checksum("ééééééééé"), None);
    }
}

/// An access token whose revocation a read checks: its `jti`, and the
/// refresh-token family (grant) it was issued with, if any. Either being
/// revoked makes the token revoked.
#[derive(Debug, Clone, Copy)]
pub struct TokenRef<'a> {
    pub jti: &'a str,
    pub family: Option<&'a str>,
}
