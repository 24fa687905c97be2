//! Text an administrator types: names, descriptions, org slugs,
//! integration names. Each is bounded, and none may hide characters that
//! render as nothing or reorder what follows.
use std::fmt;

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
    visible_text("name", name, 100)
}

/// A name a person is known by (a sign-in link's name, a single sign-on
/// subject): held to the same rules as an account's name, since both are
/// shown in the console and the audit log.
pub fn validate_person_name(
    field: &'static str,
    s: &str,
    max: usize,
) -> Result<String, InvalidField> {
    visible_text(field, s, max)
}

/// 1 to `max` characters once trimmed, none of them a control character
/// or one that hides or reorders text.
fn visible_text(field: &'static str, s: &str, max: usize) -> Result<String, InvalidField> {
    let n = s.trim();
    let len = n.chars().count();
    if len == 0 || len > max {
        return Err(invalid(
            field,
            format!("must be 1 to {max} characters, not only spaces"),
        ));
    }
    if n.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    let mut prev = None;
    let hides = n.chars().any(|c| {
        let hidden = is_hidden_char(c) || hidden_variation_selector(prev, c);
        prev = Some(c);
        hidden
    });
    if hides {
        return Err(invalid(
            field,
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
