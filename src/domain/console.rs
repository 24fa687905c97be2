//! The admin console's rules: how single sign-on maps a person's claims to
//! an org and roles, and who counts as able to manage an org (the
//! last-admin rule).
use std::collections::HashMap;

use serde_json::{Map, Value};

use super::roles::{ORG_MANAGE, permissions_of, valid_role_id};

/// One mapping rule: when the ID token's `claim` has `value` (equal, or
/// among its values when it is an array), the person signs in to `org`
/// with `roles`. The pseudo-claim `email_domain` is the domain of a
/// verified `email` (`email_verified` true).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingRule {
    pub claim: String,
    pub value: String,
    pub org: String,
    pub roles: Vec<String>,
}

/// Parses `CLAIM=VALUE -> ORG:ROLE[,ROLE…]`, rules separated by `;`, e.g.
/// `groups=acme-admins -> acme:admin; email_domain=acme.com -> acme:viewer`.
pub fn parse_rules(text: &str) -> Result<Vec<MappingRule>, String> {
    let rules: Vec<MappingRule> = text
        .split(';')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(parse_rule)
        .collect::<Result<_, _>>()?;
    if rules.is_empty() {
        return Err("expected at least one rule CLAIM=VALUE -> ORG:ROLE[,ROLE…]".into());
    }
    Ok(rules)
}

fn parse_rule(r: &str) -> Result<MappingRule, String> {
    let bad = || format!("`{r}`: expected CLAIM=VALUE -> ORG:ROLE[,ROLE…]");
    let (when, then) = r.split_once("->").ok_or_else(bad)?;
    let (claim, value) = when.split_once('=').ok_or_else(bad)?;
    let (org, roles) = then.split_once(':').ok_or_else(bad)?;
    let roles: Vec<String> = roles
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect();
    let (claim, value, org) = (claim.trim(), value.trim(), org.trim());
    if claim.is_empty() || value.is_empty() || org.is_empty() || roles.is_empty() {
        return Err(bad());
    }
    if let Some(role) = roles.iter().find(|x| !valid_role_id(x)) {
        return Err(format!("`{r}`: `{role}` is not a role id"));
    }
    if roles.iter().any(|x| x == OPERATOR) {
        return Err(format!("`{r}`: {OPERATOR_REFUSED}"));
    }
    Ok(MappingRule {
        claim: claim.to_owned(),
        value: value.to_owned(),
        org: org.to_owned(),
        roles,
    })
}

impl MappingRule {
    /// Does a person with these (verified) ID token claims match?
    pub fn matches(&self, claims: &Map<String, Value>) -> bool {
        let verified = claims.get("email_verified") == Some(&Value::Bool(true));
        if self.claim == "email" {
            // An unverified address proves nothing.
            return verified
                && claims
                    .get("email")
                    .and_then(Value::as_str)
                    .is_some_and(|e| e.eq_ignore_ascii_case(&self.value));
        }
        if self.claim == "email_domain" {
            let domain = claims
                .get("email")
                .and_then(Value::as_str)
                .and_then(|e| e.rsplit_once('@'))
                .map(|(_, d)| d);
            return verified && domain.is_some_and(|d| d.eq_ignore_ascii_case(&self.value));
        }
        match claims.get(&self.claim) {
            Some(Value::String(s)) => *s == self.value,
            Some(Value::Array(vs)) => vs.iter().any(|v| v.as_str() == Some(&self.value)),
            Some(Value::Bool(b)) => b.to_string() == self.value,
            Some(Value::Number(n)) => n.to_string() == self.value,
            _ => false,
        }
    }
}

/// The first rule the claims match: rules are tried in order.
pub fn first_match<'a>(
    rules: &'a [MappingRule],
    claims: &Map<String, Value>,
) -> Option<&'a MappingRule> {
    rules.iter().find(|r| r.matches(claims))
}

/// Does a person with `roles` manage the org (`org:manage`), with custom
/// roles' permissions from `custom`?
pub fn manages(roles: &[String], custom: &HashMap<String, Vec<String>>) -> bool {
    permissions_of(roles, custom).contains(ORG_MANAGE)
}

/// The platform's role, which the console never gives a person.
pub const OPERATOR: &str = "operator";
pub const OPERATOR_REFUSED: &str = "`operator` is the platform's role, for the platform API's \
     service accounts; the console's people hold an org's roles";

/// The message of seed 004's last-admin rule.
pub const LAST_ADMIN: &str =
    "Cannot remove or deactivate the last admin. Assign the admin role to another member first.";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn rules_parse_and_match_in_order() {
        let rules = parse_rules(
            "groups=acme-admins -> acme:admin; email_domain=Acme.com -> acme:viewer,audit-reader",
        )
        .unwrap_or_default();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1].roles, vec!["viewer", "audit-reader"]);
        let admin = claims(json!({"groups": ["dev", "acme-admins"], "email": "a@acme.com"}));
        assert_eq!(
            first_match(&rules, &admin).map(|r| r.roles[0].as_str()),
            Some("admin")
        );
        let staff = claims(json!({"email": "b@acme.COM", "email_verified": true}));
        assert_eq!(
            first_match(&rules, &staff).map(|r| r.roles[0].as_str()),
            Some("viewer")
        );
        // An unverified email proves nothing about its domain.
        let unverified = claims(json!({"email": "b@acme.com", "email_verified": false}));
        assert!(first_match(&rules, &unverified).is_none());
        let lookalike = claims(json!({"email": "b@evilacme.com", "email_verified": true}));
        assert!(first_match(&rules, &lookalike).is_none());
        // Nor about the address itself.
        let boss = parse_rules("email=boss@acme.com -> acme:admin").unwrap_or_default();
        let typed = claims(json!({"email": "boss@acme.com", "email_verified": false}));
        assert!(first_match(&boss, &typed).is_none());
        let real = claims(json!({"email": "Boss@acme.com", "email_verified": true}));
        assert!(first_match(&boss, &real).is_some());
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            "",
            "groups=x",
            "groups -> acme:admin",
            "groups=x -> acme",
            "groups=x -> acme:",
            "g=x -> o:Not A Role",
            "groups=ops -> acme:operator",
        ] {
            assert!(parse_rules(bad).is_err(), "{bad}");
        }
    }
}
