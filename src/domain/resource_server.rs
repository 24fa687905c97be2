//! Resource servers: the APIs that accept warden's tokens.
use crate::domain::account::Status;
use crate::domain::credentials::random_bytes;
use crate::domain::credentials::{PreviousSecret, secret_prefix};
use crate::domain::roles::ApiPermission;
use crate::domain::text::InvalidField;

pub const RS_CLIENT_ID_PREFIX: &str = "arm_rs_";

#[derive(Debug, Clone)]
pub struct ResourceServer {
    pub id: String,
    pub name: String,
    /// The `aud` value tokens for this server carry.
    pub audience: String,
    pub client_id: String,
    pub secret_hash: String,
    /// The current secret's public prefix (`None` for one made before
    /// prefixes were kept).
    pub secret_prefix: Option<String>,
    /// Rotated-out secrets, each accepted until its own grace period ends.
    pub previous_secrets: Vec<PreviousSecret>,
    /// The permissions its tokens may carry; none: every permission the
    /// account holds.
    pub permissions: Vec<ApiPermission>,
    /// Public JWKs (each as JSON) it may sign client assertions with at
    /// introspection and revocation (`private_key_jwt`), besides its
    /// secret.
    pub keys: Vec<String>,
    pub status: Status,
    pub created_at: i64,
    pub created_by: String,
    pub deleted_at: Option<i64>,
    /// When the current secret was made (`None` in rows from before it
    /// was recorded, none of which remain after migration 0017).
    pub secret_created_at: Option<i64>,
}

impl ResourceServer {
    /// May it authenticate and receive tokens now?
    pub fn is_live(&self) -> bool {
        self.deleted_at.is_none() && self.status == Status::Active
    }

    /// The stored hash to check a presented secret against: a rotated-out
    /// secret's while its grace runs and the prefix names it, else the
    /// current one. One Argon2 verification either way.
    pub fn hash_for(&self, presented: &str, now: i64) -> &str {
        if !self.previous_secrets.is_empty() {
            let prefix = secret_prefix(presented);
            if self.secret_prefix.as_deref() != Some(prefix.as_str())
                && let Some(p) = self
                    .previous_secrets
                    .iter()
                    // An empty prefix: a secret from before prefixes were
                    // kept, the only candidate when the prefix is not the
                    // current one.
                    .find(|p| p.expires_at > now && (p.prefix == prefix || p.prefix.is_empty()))
            {
                return &p.hash;
            }
        }
        &self.secret_hash
    }
}

/// The RFC 9728 document an API serves at
/// `/.well-known/oauth-protected-resource` (its path appended): what an MCP
/// client reads to find warden and the scopes to ask for.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ProtectedResourceMetadata {
    /// The audience as registered: what a client sends as `resource`.
    pub resource: String,
    /// warden's issuer.
    pub authorization_servers: Vec<String>,
    /// The permissions it declares; absent when it declares none (its
    /// tokens then carry every permission the account holds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// `["header"]`: tokens only in `Authorization`.
    pub bearer_methods_supported: Vec<String>,
    pub resource_name: String,
}

impl ResourceServer {
    /// Its RFC 9728 protected resource metadata, for `issuer`.
    pub fn protected_resource_metadata(&self, issuer: &str) -> ProtectedResourceMetadata {
        ProtectedResourceMetadata {
            resource: self.audience.clone(),
            authorization_servers: vec![issuer.to_owned()],
            scopes_supported: (!self.permissions.is_empty())
                .then(|| self.permissions.iter().map(|p| p.name.clone()).collect()),
            bearer_methods_supported: vec!["header".to_owned()],
            resource_name: self.name.clone(),
        }
    }
}

pub fn generate_client_id() -> String {
    let id = data_encoding::BASE32_NOPAD
        .encode(&random_bytes::<16>())
        .to_ascii_lowercase();
    format!("{RS_CLIENT_ID_PREFIX}{id}")
}

/// Whether `audience` names warden's own issuer (the admin API), in any
/// spelling of it (`domain::audience`), or with a trailing slash. A
/// resource server with that audience could introspect and revoke every
/// org's admin tokens, so none may have it.
pub fn is_issuer(audience: &str, issuer: &str) -> bool {
    crate::domain::audience::same_resource(audience, issuer)
        || audience.trim_end_matches('/') == issuer.trim_end_matches('/')
}

/// An audience is an absolute URI (RFC 8707 §2) of scheme `https`, `http`
/// or `urn`: no fragment, no whitespace, at most 512 characters.
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
    // Only the schemes an API is named by: `https`, `http` (development)
    // and `urn`. A `javascript:` or `data:` audience would be stored and
    // shown back (the console renders allowed resources), and names no API.
    let known = ["https:", "http:", "urn:"]
        .iter()
        .any(|p| s.len() > p.len() && s[..p.len()].eq_ignore_ascii_case(p));
    let web = ["https:", "http:"]
        .iter()
        .any(|p| s.len() > p.len() && s[..p.len()].eq_ignore_ascii_case(p));
    if s.len() > 512
        || !scheme_ok
        || !known
        || s.contains(['#', '\\'])
        || s.chars().any(|c| c.is_whitespace() || c.is_control())
        || encodes_a_control(s)
        || (web && !web_authority_ok(s))
    {
        return Err(InvalidField {
            field: "audience",
            reason: "must be an absolute https, http or urn URI without a fragment".into(),
        });
    }
    Ok(s.to_owned())
}

/// Does `s` percent-encode a control character (`%00`–`%1F`, `%7F`)?
fn encodes_a_control(s: &str) -> bool {
    s.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && std::str::from_utf8(&w[1..])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .is_some_and(|b| b < 0x20 || b == 0x7f)
    })
}

/// An `http(s)` URI names a host: `//`, no user information, a host (a
/// name, or an IPv6 literal in brackets), and a port, when given, from 1
/// to 65535.
fn web_authority_ok(s: &str) -> bool {
    let Some((_, rest)) = s.split_once(':') else {
        return false;
    };
    let Some(hier) = rest.strip_prefix("//") else {
        return false;
    };
    let authority = &hier[..hier.find(['/', '?']).unwrap_or(hier.len())];
    if authority.contains('@') {
        return false;
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, tail)) if !addr.is_empty() => match tail {
                "" => (addr, None),
                t => match t.strip_prefix(':') {
                    Some(p) => (addr, Some(p)),
                    None => return false,
                },
            },
            _ => return false,
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
    });
    let host_ok = if authority.starts_with('[') {
        host.bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !host.is_empty() && !host.contains(['[', ']', ':'])
    };
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_are_absolute_uris() {
        assert!(validate_audience("https://api.example.com").is_ok());
        assert!(validate_audience("urn:example:api").is_ok());
        for good in [
            "https://api.example.com:8443/mcp?x=1",
            "http://127.0.0.1:3001",
            "http://[::1]:9000/",
            "https://[2001:db8::1]",
            "HTTPS://API.example.com",
            "https://a.example/%2F",
        ] {
            assert!(validate_audience(good).is_ok(), "{good}");
        }
        for bad in [
            "api",
            "https://x#frag",
            "://x",
            "https://a b",
            "",
            "javascript:alert(1)",
            "data:text/html,x",
            "https:",
            // Found by review: URIs that name no host, or odd ones.
            "https://",
            "https://@",
            "https://u@api.example.com",
            "https://a:-1",
            "https://a:0",
            "https://a:65536",
            "https://a:",
            "https://[::1",
            "https://]:",
            "https://[::1]x",
            "https://a%00b",
            "https://a/%7f",
            "http:\\\\127.0.0.1:8080",
            "https:api.example.com",
        ] {
            assert!(validate_audience(bad).is_err(), "{bad}");
        }
    }
}
