//! Why a token is not active where it was presented. The wire never says
//! (RFC 7662 §2.2: `{"active": false}`, whatever the reason); the server's
//! debug log does, without the token, so an operator can tell a caller
//! what went wrong.
use crate::crypto::keys::KeySet;
use crate::crypto::verify::verify_access_token;
use crate::domain::account::Unusable;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inactive {
    /// Signed by one of warden's keys, for this issuer, but past `exp`
    /// (or before `nbf`).
    Expired,
    /// Not a token warden can verify: malformed, another issuer, an
    /// unknown or retired key, a bad signature.
    NotVerified,
    /// For another audience than the one it was presented to.
    Audience,
    /// Issued before this audience was registered (for an earlier
    /// registration of it, deleted since).
    EarlierRegistration,
    /// Its account no longer exists.
    NoAccount,
    /// Revoked (RFC 7009).
    Revoked,
    /// Its subject or org does not match the account's.
    ClaimsMismatch,
    /// The account is deleted, disabled, expired, in a disabled org or
    /// outside its allowlist.
    Account(Unusable),
    /// The account is limited to other APIs (`allowed_resources`).
    OtherApi,
}

impl Inactive {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Expired => "the token has expired",
            Self::NotVerified => {
                "not a token of this server (malformed, another issuer, an unknown key or a bad signature)"
            }
            Self::Audience => "the token is for another audience",
            Self::EarlierRegistration => "the token was issued before this audience was registered",
            Self::NoAccount => "the token's service account no longer exists",
            Self::Revoked => "the token was revoked",
            Self::ClaimsMismatch => "the token's subject or org is not its account's",
            Self::Account(u) => u.reason(),
            Self::OtherApi => "the service account may no longer use this API",
        }
    }

    /// Why `token` failed verification: `Expired` when it verifies at its
    /// own issue time (only its time claims fail now), else `NotVerified`.
    /// One more signature check, so it is asked only when the debug log
    /// will print it.
    pub fn of_unverified(keys: &KeySet, token: &str, issuer: &str) -> Self {
        let iat = unverified_iat(token);
        match iat {
            Some(iat) if verify_access_token(keys, token, issuer, iat).is_some() => Self::Expired,
            _ => Self::NotVerified,
        }
    }
}

/// The `iat` of a JWT's payload, read without checking anything.
fn unverified_iat(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    if payload.len() > 16 * 1024 {
        return None;
    }
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(payload.as_bytes())
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("iat")?.as_i64()
}
