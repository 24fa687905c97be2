//! Refresh tokens: `arm_rt_` + base64url(nonce ‖ AES-256-GCM-SIV(grant)) +
//! a 7-character checksum (see `domain::credentials`).
//!
//! Issuing a refresh token writes nothing to the database: the grant it
//! carries (account, family, credential epoch, roles, scope, expiry) is
//! sealed under a key from the keys directory, so it is opaque to clients
//! and cannot be forged or altered. State is written only when a token is
//! *used*: its `jti` is recorded as spent in the same statement that decides
//! the race, which is what makes rotation single-use and reuse detectable.
//!
//! GCM-SIV rather than GCM: one long-lived key seals every token with a
//! random 96-bit nonce, and plain GCM's safety ends around 2^32 messages
//! per key (days at peak issuance), after which a repeated nonce would
//! expose the authentication key. GCM-SIV degrades only to revealing that
//! two sealed grants were identical.
use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use data_encoding::BASE64URL_NOPAD;
use serde::{Deserialize, Serialize};

use crate::domain::credentials::{
    MAX_CREDENTIAL_LEN, REFRESH_TOKEN_PREFIX, append_checksum, verify_checksum,
};

/// Name of the refresh-token sealing key inside the keys directory.
pub const REFRESH_KEY_FILE: &str = "refresh-token.secret";

const AAD: &[u8] = b"warden refresh token v2";

/// What a refresh token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshGrant {
    #[serde(rename = "j")]
    pub jti: String,
    /// The chain this token belongs to; revoked as a whole on reuse.
    #[serde(rename = "f")]
    pub family: String,
    #[serde(rename = "a")]
    pub account_id: String,
    #[serde(rename = "o")]
    pub org: String,
    /// The account's credential epoch at issue; a secret reset moves it on.
    #[serde(rename = "e")]
    pub epoch: i64,
    #[serde(rename = "i")]
    pub iat: i64,
    #[serde(rename = "x")]
    pub exp: i64,
    #[serde(rename = "d")]
    pub aud: String,
    #[serde(rename = "r")]
    pub roles: Vec<String>,
    #[serde(rename = "s")]
    pub scope: Vec<String>,
}

pub struct RefreshCodec {
    key: RandomizedNonceKey,
}

#[derive(Debug, thiserror::Error)]
#[error("refresh token sealing failed")]
pub struct SealError;

impl RefreshCodec {
    pub fn new(key: &[u8; 32]) -> Result<Self, SealError> {
        Ok(Self {
            key: RandomizedNonceKey::new(&AES_256_GCM_SIV, key).map_err(|_| SealError)?,
        })
    }

    pub fn seal(&self, grant: &RefreshGrant) -> Result<String, SealError> {
        let mut buf = serde_json::to_vec(grant).map_err(|_| SealError)?;
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(AAD), &mut buf)
            .map_err(|_| SealError)?;
        let mut raw = Vec::with_capacity(NONCE_LEN + buf.len());
        raw.extend_from_slice(nonce.as_ref());
        raw.extend_from_slice(&buf);
        let mut token = format!("{REFRESH_TOKEN_PREFIX}{}", BASE64URL_NOPAD.encode(&raw));
        append_checksum(&mut token);
        Ok(token)
    }

    /// Has this the shape and checksum of a refresh token warden issues?
    /// Checked before any decryption or database work.
    pub fn is_well_formed(token: &str) -> bool {
        Self::body(token).is_some()
    }

    /// The base64url body of a well-formed token (prefix and checksum off).
    fn body(token: &str) -> Option<&str> {
        if token.len() > MAX_CREDENTIAL_LEN * 4 {
            return None;
        }
        verify_checksum(token)?
            .strip_prefix(REFRESH_TOKEN_PREFIX)
            .filter(|b| {
                b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            })
    }

    /// `None` for anything warden did not issue with this key.
    pub fn open(&self, token: &str) -> Option<RefreshGrant> {
        let raw = BASE64URL_NOPAD.decode(Self::body(token)?.as_bytes()).ok()?;
        if raw.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(AAD), &mut sealed)
            .ok()?;
        serde_json::from_slice(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> RefreshGrant {
        RefreshGrant {
            jti: "j".into(),
            family: "f".into(),
            account_id: "a".into(),
            org: "default".into(),
            epoch: 0,
            iat: 1,
            exp: 2,
            aud: "x".into(),
            roles: vec!["viewer".into()],
            scope: vec!["org:read".into()],
        }
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let codec = RefreshCodec::new(&[7; 32]).unwrap_or_else(|_| unreachable!());
        let t = codec.seal(&grant()).unwrap_or_else(|_| unreachable!());
        assert!(t.starts_with("arm_rt_"));
        assert_eq!(codec.open(&t), Some(grant()));
        assert!(RefreshCodec::is_well_formed(&t));
        // A typo fails the checksum; a forged body with a fixed-up checksum
        // still fails authentication.
        let mut bytes = t.clone().into_bytes();
        let i = bytes.len() - 12;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let typo = String::from_utf8(bytes).unwrap_or_default();
        assert!(!RefreshCodec::is_well_formed(&typo));
        let mut forged = verify_checksum(&typo)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                typo[..typo.len() - crate::domain::credentials::CHECKSUM_LEN].to_owned()
            });
        append_checksum(&mut forged);
        assert!(RefreshCodec::is_well_formed(&forged));
        assert_eq!(codec.open(&forged), None);
        let mut bytes = t.clone().into_bytes();
        let i = bytes.len() - 5;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            codec.open(&String::from_utf8(bytes).unwrap_or_default()),
            None
        );
        let other = RefreshCodec::new(&[8; 32]).unwrap_or_else(|_| unreachable!());
        assert_eq!(other.open(&t), None);
        assert_eq!(codec.open("arm_rt_"), None);
        assert_eq!(codec.open("garbage"), None);
    }
}
