//! The admin console's single sign-on settings: the operator's OpenID
//! Connect provider, warden's client there, and the rule mapping a
//! person's claims to an org and roles. All or nothing: an issuer without
//! a client id or a rule stops start-up.
use secrecy::SecretString;

use super::ConfigError;
use crate::domain::console::{MappingRule, parse_rules};

/// Single sign-on for the console (`WARDEN_CONSOLE_OIDC_*`).
#[derive(Debug, Clone)]
pub struct ConsoleSso {
    /// The provider's issuer; its OpenID discovery document is read from
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// `None`: a public client (PKCE alone).
    pub client_secret: Option<SecretString>,
    /// The scopes asked for (`openid email profile` by default).
    pub scopes: String,
    pub rules: Vec<MappingRule>,
}

pub(super) fn parse(
    get: impl Fn(&str) -> Option<(String, String)>,
) -> Result<Option<ConsoleSso>, ConfigError> {
    let Some((issuer, src)) = get("console_oidc_issuer") else {
        for k in [
            "console_oidc_client_id",
            "console_oidc_client_secret",
            "console_oidc_rules",
        ] {
            if let Some((_, src)) = get(k) {
                return Err(ConfigError(format!(
                    "invalid {src}: set only with console_oidc_issuer"
                )));
            }
        }
        return Ok(None);
    };
    let issuer = super::parse::validate_url(&issuer)
        .map_err(|why| ConfigError(format!("invalid {src}: {why}")))?;
    let required = |k: &str| {
        get(k).filter(|(v, _)| !v.trim().is_empty()).ok_or_else(|| {
            ConfigError(format!(
                "invalid {src}: single sign-on also needs {k} (WARDEN_{})",
                k.to_uppercase()
            ))
        })
    };
    let (client_id, _) = required("console_oidc_client_id")?;
    let (rules, rules_src) = required("console_oidc_rules")?;
    let rules =
        parse_rules(&rules).map_err(|why| ConfigError(format!("invalid {rules_src}: {why}")))?;
    let scopes =
        get("console_oidc_scopes").map_or_else(|| "openid email profile".to_owned(), |(v, _)| v);
    if !scopes.split(' ').any(|s| s == "openid") {
        return Err(ConfigError(
            "invalid WARDEN_CONSOLE_OIDC_SCOPES: must include openid".into(),
        ));
    }
    Ok(Some(ConsoleSso {
        issuer,
        client_id: client_id.trim().to_owned(),
        client_secret: get("console_oidc_client_secret")
            .filter(|(v, _)| !v.is_empty())
            .map(|(v, _)| SecretString::from(v)),
        scopes,
        rules,
    }))
}
