//! Service accounts: their fields, states and the rules on their values.
use std::fmt;

use crate::domain::ip::IpAllowlist;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    Credential,
    Integration,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Credential => "credential",
            Self::Integration => "integration",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "credential" => Some(Self::Credential),
            "integration" => Some(Self::Integration),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Disabled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// A service account as stored. Times are Unix seconds.
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub id: String,
    pub org_id: String,
    pub kind: AccountKind,
    pub name: String,
    pub description: String,
    pub client_id: Option<String>,
    /// Argon2id PHC string; never leaves the server.
    pub secret_hash: Option<String>,
    /// The public first characters of the current secret (`arm_sk_abcde`).
    pub secret_prefix: Option<String>,
    pub secret_created_at: Option<i64>,
    /// Rotated-out secrets, each accepted until its own grace period ends
    /// (expired ones may linger until the next change drops them).
    pub previous_secrets: Vec<PreviousSecret>,
    /// Bumped on every secret reset; refresh tokens carry the epoch they
    /// were issued under and die when it moves on.
    pub credential_epoch: i64,
    pub integration: Option<String>,
    pub roles: Vec<String>,
    pub allowed_ips: IpAllowlist,
    pub expires_at: Option<i64>,
    pub status: Status,
    pub created_at: i64,
    pub created_by: String,
    pub last_used_at: Option<i64>,
    /// The address of that last use, when known.
    pub last_used_ip: Option<String>,
    pub deleted_at: Option<i64>,
    /// Moves on with every change made by an admin or the operator; writes
    /// are conditional on it, and it is the account's ETag.
    pub version: i64,
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

impl ServiceAccount {
    /// The stored hash to check a presented secret against: the previous
    /// secret's while its grace period runs and the prefix names it, else
    /// the current one. One Argon2 verification either way.
    pub fn hash_for(&self, presented: &str, now: i64) -> Option<&str> {
        if !self.previous_secrets.is_empty() {
            let prefix = secret_prefix(presented);
            if self.secret_prefix.as_deref() != Some(prefix.as_str())
                && let Some(prev) = self
                    .previous_secrets
                    .iter()
                    .find(|p| p.expires_at > now && p.prefix == prefix)
            {
                return Some(&prev.hash);
            }
        }
        self.secret_hash.as_deref()
    }

    /// The rotated-out secrets still in their grace period.
    pub fn live_previous_secrets(&self, now: i64) -> impl Iterator<Item = &PreviousSecret> {
        self.previous_secrets
            .iter()
            .filter(move |p| p.expires_at > now)
    }

    /// Whether `prefix` names a secret that works now.
    pub fn has_live_secret_prefix(&self, prefix: &str, now: i64) -> bool {
        self.secret_prefix.as_deref() == Some(prefix)
            || self.live_previous_secrets(now).any(|p| p.prefix == prefix)
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// The live checks, in one place, for every path that lets an account
    /// act (token endpoint, introspection, the admin API): not deleted,
    /// active, unexpired at `now`, allowed from `ip`.
    pub fn check_usable(&self, now: i64, ip: Option<std::net::IpAddr>) -> Result<(), Unusable> {
        if self.is_deleted() {
            Err(Unusable::Deleted)
        } else if self.status == Status::Disabled {
            Err(Unusable::Disabled)
        } else if self.is_expired(now) {
            Err(Unusable::Expired)
        } else if !self.allowed_ips.permits(ip) {
            Err(Unusable::AddressNotAllowed)
        } else {
            Ok(())
        }
    }
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// Why an account may not act right now (`ServiceAccount::check_usable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    Deleted,
    Disabled,
    Expired,
    AddressNotAllowed,
}

impl Unusable {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Deleted => "the service account is deleted",
            Self::Disabled => "the service account is disabled",
            Self::Expired => "the service account has expired",
            Self::AddressNotAllowed => "the service account may not be used from this address",
        }
    }
}

/// The expiry choices an admin has: `30d` … `1y`, or `never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiresIn {
    Days(i64),
    Never,
}

impl ExpiresIn {
    pub const CHOICES: &'static str = "30d, 60d, 90d, 180d, 1y or never";

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "30d" => Self::Days(30),
            "60d" => Self::Days(60),
            "90d" => Self::Days(90),
            "180d" => Self::Days(180),
            "1y" => Self::Days(365),
            "never" => Self::Never,
            _ => return None,
        })
    }

    /// The absolute expiry, counted from `now`.
    pub fn expires_at(self, now: i64) -> Option<i64> {
        match self {
            Self::Days(d) => Some(now + d * 86_400),
            Self::Never => None,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct InvalidField {
    pub field: &'static str,
    pub reason: String,
}

impl fmt::Display for InvalidField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> InvalidField {
    InvalidField {
        field,
        reason: reason.into(),
    }
}

/// Unicode format characters (general category Cf): bidi overrides and
/// isolates, zero-width spaces and joiners, the BOM, invisible operators,
/// tags. They render as nothing, or reorder what follows, so a name that
/// holds one can pass for another (`admin\u{202E}txt.exe`).
pub fn is_format_char(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{0600}'..='\u{0605}'
        | '\u{061C}'
        | '\u{06DD}'
        | '\u{070F}'
        | '\u{0890}'..='\u{0891}'
        | '\u{08E2}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{110BD}'
        | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}'
        | '\u{E0020}'..='\u{E007F}')
}

/// Characters that show nothing and are not format characters: the
/// combining grapheme joiner, Hangul fillers, Khmer inherent vowels,
/// Mongolian free variation selectors, line and paragraph separators and
/// the blank braille pattern. Variation selectors stay allowed (emoji
/// need them).
fn is_blank_lookalike(c: char) -> bool {
    matches!(c,
        '\u{034F}'
        | '\u{115F}'..='\u{1160}'
        | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{2028}'..='\u{2029}'
        | '\u{2800}'
        | '\u{3164}'
        | '\u{FFA0}')
}

/// A variation selector shows nothing by itself; it only picks a glyph
/// for the symbol before it (emoji). After a letter, a digit, a space or
/// at the start it hides in plain sight (`ro\u{FE0F}ot` reads `root`).
fn hidden_variation_selector(prev: Option<char>, c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
        && prev.is_none_or(|p| p.is_alphanumeric() || p.is_whitespace())
}

/// Characters a name or description may not hold because they hide or
/// reorder text: format characters and blank lookalikes.
pub fn is_hidden_char(c: char) -> bool {
    is_format_char(c) || is_blank_lookalike(c)
}

pub fn validate_name(name: &str) -> Result<String, InvalidField> {
    let n = name.trim();
    let len = n.chars().count();
    if len == 0 || len > 100 {
        return Err(invalid(
            "name",
            "must be 1 to 100 characters, not only spaces",
        ));
    }
    if n.chars().any(char::is_control) {
        return Err(invalid("name", "must not contain control characters"));
    }
    let mut prev = None;
    let hides = n.chars().any(|c| {
        let hidden = is_hidden_char(c) || hidden_variation_selector(prev, c);
        prev = Some(c);
        hidden
    });
    if hides {
        return Err(invalid(
            "name",
            "must not contain invisible characters (bidi controls, zero-width characters, BOM, blank fillers, line separators)",
        ));
    }
    Ok(n.to_owned())
}

pub fn validate_description(d: &str) -> Result<String, InvalidField> {
    if d.chars().count() > 1000 {
        return Err(invalid("description", "must be at most 1000 characters"));
    }
    if d.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(
            "description",
            "must not contain control characters",
        ));
    }
    if d.chars().any(is_hidden_char) {
        return Err(invalid(
            "description",
            "must not contain invisible characters (bidi controls, zero-width characters, BOM, blank fillers, line separators)",
        ));
    }
    Ok(d.to_owned())
}

/// An organization slug: lowercase letters, digits and `-`, 1–63 chars.
pub fn validate_org_slug(s: &str) -> Result<String, InvalidField> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(invalid(
            "org",
            "must be 1 to 63 lowercase letters, digits or '-'",
        ))
    }
}

pub fn validate_integration(s: &str) -> Result<String, InvalidField> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(invalid(
            "integration",
            "must be 1 to 64 lowercase letters, digits, '-' or '_'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_choices() {
        assert_eq!(
            ExpiresIn::parse("1y").map(|e| e.expires_at(0)),
            Some(Some(365 * 86_400))
        );
        assert_eq!(
            ExpiresIn::parse("never").map(|e| e.expires_at(5)),
            Some(None)
        );
        assert_eq!(ExpiresIn::parse("7d"), None);
    }

    #[test]
    fn names_are_bounded() {
        assert!(validate_name("ci").is_ok());
        assert!(validate_name("  ").is_err());
        assert!(validate_name(&"x".repeat(101)).is_err());
        assert!(validate_name(&"é".repeat(100)).is_ok());
        assert!(validate_name("日本語 ci").is_ok());
        assert!(validate_name("deploy 🚀\u{FE0F}").is_ok());
        assert!(validate_name("Jean\u{00A0}Dupont").is_ok());
        for spoof in [
            "admin\u{202E}gpj.exe",
            "ad\u{200B}min",
            "\u{FEFF}admin",
            "\u{2066}x\u{2069}",
            "\u{200D}",
            "\u{3000}\u{3000}",
            "\u{3164}",
            "\u{115F}",
            "\u{2800}",
            "a\u{034F}b",
            "a\u{17B4}b",
            "a\u{1160}b",
            "a\u{2028}b",
            "\u{00A0}",
            "ro\u{180F}ot",
            "ro\u{FE0F}ot",
            "ro\u{E0100}ot",
            "\u{FE0F}",
        ] {
            assert!(validate_name(spoof).is_err(), "{spoof:?}");
        }
        assert!(validate_description("line\nbreak").is_ok());
        assert!(validate_description("a\u{202E}b").is_err());
        assert!(validate_org_slug("acme-1").is_ok());
        assert!(validate_org_slug("Acme").is_err());
    }
}
