//! Resource servers: the APIs that accept warden's tokens.
use crate::domain::account::{InvalidField, Status};
use crate::domain::credentials::random_bytes;

pub const RS_CLIENT_ID_PREFIX: &str = "arm_rs_";

#[derive(Debug, Clone)]
pub struct ResourceServer {
    pub id: String,
    pub name: String,
    /// The `aud` value tokens for this server carry.
    pub audience: String,
    pub client_id: String,
    pub secret_hash: String,
    pub status: Status,
    pub created_at: i64,
    pub created_by: String,
    pub deleted_at: Option<i64>,
}

impl ResourceServer {
    /// May it authenticate and receive tokens now?
    pub fn is_live(&self) -> bool {
        self.deleted_at.is_none() && self.status == Status::Active
    }
}

pub fn generate_client_id() -> String {
    let id = data_encoding::BASE32_NOPAD
        .encode(&random_bytes::<16>())
        .to_ascii_lowercase();
    format!("{RS_CLIENT_ID_PREFIX}{id}")
}

/// An audience is an absolute URI (RFC 8707 §2): a scheme, no fragment,
/// no whitespace, at most 512 characters.
/// Whether `audience` names warden's own issuer (the admin API), with or
/// without a trailing slash. A resource server with that audience could
/// introspect and revoke every org's admin tokens, so none may have it.
pub fn is_issuer(audience: &str, issuer: &str) -> bool {
    audience.trim_end_matches('/') == issuer.trim_end_matches('/')
}

pub fn validate_audience(s: &str) -> Result<String, InvalidField> {
    let scheme_ok = s.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if s.len() > 512
        || !scheme_ok
        || s.contains('#')
        || s.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(InvalidField {
            field: "audience",
            reason: "must be an absolute URI without a fragment".into(),
        });
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_are_absolute_uris() {
        assert!(validate_audience("https://api.example.com").is_ok());
        assert!(validate_audience("urn:example:api").is_ok());
        for bad in ["api", "https://x#frag", "://x", "https://a b", ""] {
            assert!(validate_audience(bad).is_err(), "{bad}");
        }
    }
}
