//! A role catalog: a product's permissions and roles as a TOML file
//! (`WARDEN_ROLE_CATALOG`, e.g. examples/catalogs/risk-platform.toml).
//! warden's built-in roles hold only the admin plane's permissions; a
//! catalog declares the rest: permissions usable everywhere, global roles
//! every org sees, and permissions added to the built-in roles. This
//! module parses and checks one; `db::catalog` applies it.
use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::roles::{
    ApiPermission, PERMISSIONS, builtin_permissions, is_admin_api_permission, valid_role_id,
    validate_api_permission,
};
use super::text::validate_description;

/// A parsed catalog file. Unknown keys are refused: a misspelt
/// `permisions` would otherwise vanish in silence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// The product's permissions (`name`, `description`).
    #[serde(default)]
    pub permissions: Vec<ApiPermission>,
    /// Global roles, created or updated to exactly this definition.
    #[serde(default)]
    pub roles: Vec<CatalogRole>,
    /// Permissions added to a built-in role (`admin = [...]`).
    #[serde(default)]
    pub additions: BTreeMap<String, Vec<String>>,
}

/// One global role of a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogRole {
    pub id: String,
    #[serde(default)]
    pub description: String,
    pub permissions: Vec<String>,
}

impl Catalog {
    /// Parses a catalog's text; the error is one line.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| match e.span() {
            Some(at) => {
                let line = text[..at.start.min(text.len())].matches('\n').count() + 1;
                format!("line {line}: {}", e.message())
            }
            None => e.message().to_owned(),
        })
    }

    /// Checks it against the permissions that exist besides its own
    /// (`known`: those registered APIs declare and earlier catalogs
    /// stored), and returns it with each role's and addition's
    /// permissions sorted and without repeats. The admin plane's
    /// `platform:*` is the operator role's alone, and what the built-in
    /// roles hold of the admin plane is fixed: a catalog adds only product
    /// permissions to them.
    pub fn checked(mut self, known: &BTreeSet<String>) -> Result<Self, String> {
        let mut names = BTreeSet::new();
        for p in &self.permissions {
            validate_api_permission(p).map_err(|e| format!("permissions: {e}"))?;
            if !names.insert(p.name.clone()) {
                return Err(format!("permissions: `{}` is declared twice", p.name));
            }
        }
        let exists = |p: &str| names.contains(p) || known.contains(p) || PERMISSIONS.contains(&p);
        let unknown = |what: &str, p: &str| {
            let shown: String = p.chars().filter(|c| !c.is_control()).take(64).collect();
            format!("{what}: unknown permission `{shown}` (declare it under [[permissions]])")
        };
        let mut ids = BTreeSet::new();
        for r in &mut self.roles {
            if !valid_role_id(&r.id) {
                return Err(format!(
                    "roles: `{}` is not a role id: 1 to 64 lowercase letters, digits or '-'",
                    r.id.chars()
                        .filter(|c| !c.is_control())
                        .take(64)
                        .collect::<String>()
                ));
            }
            if builtin_permissions(&r.id).is_some() {
                return Err(format!(
                    "roles: `{}` is a built-in role: add permissions to it under [additions]",
                    r.id
                ));
            }
            if !ids.insert(r.id.clone()) {
                return Err(format!("roles: `{}` is defined twice", r.id));
            }
            let what = format!("role `{}`", r.id);
            r.description =
                validate_description(&r.description).map_err(|e| format!("{what}: {e}"))?;
            if r.permissions.is_empty() {
                return Err(format!("{what}: at least one permission is required"));
            }
            for p in &r.permissions {
                if !exists(p) {
                    return Err(unknown(&what, p));
                }
                if p.starts_with("platform:") {
                    return Err(format!("{what}: `{p}` is the operator role's alone"));
                }
            }
            sort_dedup(&mut r.permissions);
        }
        for (role, perms) in &mut self.additions {
            if builtin_permissions(role).is_none() {
                return Err(format!(
                    "additions: `{}` is not a built-in role (admin, viewer, operator); \
                     define it under [[roles]]",
                    role.chars()
                        .filter(|c| !c.is_control())
                        .take(64)
                        .collect::<String>()
                ));
            }
            let what = format!("additions to `{role}`");
            for p in perms.iter() {
                if is_admin_api_permission(p) {
                    return Err(format!(
                        "{what}: `{p}` is the admin plane's; a built-in role's share of it is fixed"
                    ));
                }
                if !exists(p) {
                    return Err(unknown(&what, p));
                }
            }
            sort_dedup(perms);
        }
        Ok(self)
    }
}

fn sort_dedup(v: &mut Vec<String>) {
    v.sort();
    v.dedup();
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    const RISK_PLATFORM: &str = include_str!("../../examples/catalogs/risk-platform.toml");

    fn check(text: &str) -> Result<Catalog, String> {
        Catalog::parse(text)?.checked(&BTreeSet::new())
    }

    #[test]
    fn the_example_catalog_is_valid() {
        let c = check(RISK_PLATFORM).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.permissions.len(), 4);
        assert_eq!(c.roles.len(), 5);
        assert_eq!(
            c.additions.keys().collect::<Vec<_>>(),
            ["admin", "operator", "viewer"]
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (text, want) in [
            ("permisions = []", "unknown field `permisions`"),
            (
                "[[roles]]\nid = \"x\"\npermissions = [\"nope:read\"]",
                "role `x`: unknown permission `nope:read`",
            ),
            (
                "[[roles]]\nid = \"admin\"\npermissions = [\"org:read\"]",
                "`admin` is a built-in role",
            ),
            (
                "[[roles]]\nid = \"x\"\npermissions = [\"platform:manage\"]",
                "operator role's alone",
            ),
            ("[additions]\nviewer = [\"org:manage\"]", "admin plane's"),
            ("[additions]\nowner = []", "`owner` is not a built-in role"),
            (
                "[[permissions]]\nname = \"org:write\"",
                "org:*, audit:* and platform:* are the admin API's own",
            ),
            (
                "[[roles]]\nid = \"x\"\npermissions = []",
                "at least one permission",
            ),
        ] {
            match check(text) {
                Ok(c) => panic!("{text}: accepted as {c:?}"),
                Err(e) => assert!(e.contains(want), "{text}: {e}"),
            }
        }
    }

    #[test]
    fn a_permission_known_elsewhere_may_be_used() {
        let known: BTreeSet<String> = ["billing:read".to_owned()].into();
        let text =
            "[[roles]]\nid = \"billing\"\npermissions = [\"billing:read\", \"billing:read\"]";
        let c = Catalog::parse(text)
            .and_then(|c| c.checked(&known))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.roles[0].permissions, ["billing:read"]);
    }
}
