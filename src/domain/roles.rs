//! Roles, permissions and scope: the built-in catalog and how a token's
//! grant is derived from an account's roles and a requested `scope`.
use std::collections::{BTreeSet, HashMap};

/// Every built-in permission: the admin plane's own. `org:manage` is what
/// the admin API needs to change an org; `platform:manage` what the
/// platform endpoints need. A product's own permissions come from its APIs
/// or a role catalog (`domain::catalog`).
pub const PERMISSIONS: &[&str] = &["org:manage", "org:read", "audit:read", PLATFORM_MANAGE];

/// The operator's permission: orgs, resource servers, global roles.
pub const PLATFORM_MANAGE: &str = "platform:manage";

/// The built-in roles and their permission sets (a catalog may add to
/// them: `role_grants`).
pub const BUILTIN_ROLES: &[(&str, &str, &[&str])] = &[
    (
        "admin",
        "Full control, including Manage Organization",
        &["org:manage", "org:read", "audit:read"],
    ),
    ("viewer", "Read-only access", &["org:read"]),
    (
        "operator",
        "Runs warden for every org: every permission, platform:manage included",
        PERMISSIONS,
    ),
];

/// Whether holding `role` holds `p` beyond the role's listed permissions:
/// `operator` holds every permission, `admin` every one but the
/// platform's, those your APIs declare included.
pub fn role_covers(role: &str, p: &str) -> bool {
    match role {
        "operator" => true,
        "admin" => !p.starts_with("platform:"),
        _ => false,
    }
}

pub fn builtin_permissions(role: &str) -> Option<&'static [&'static str]> {
    BUILTIN_ROLES
        .iter()
        .find(|(id, _, _)| *id == role)
        .map(|(_, _, p)| *p)
}

/// The admin API's permission to change an org's accounts and roles.
pub const ORG_MANAGE: &str = "org:manage";
/// Reads an org's accounts and roles.
pub const ORG_READ: &str = "org:read";
/// Reads an org's audit log.
pub const AUDIT_READ: &str = "audit:read";

/// What one role grants, given what is stored under its id (`stored`, as
/// `Db::stored_role_permissions` and the account reads give it): a
/// built-in role its own permissions and what a catalog added to it, a
/// stored role its definition; `None` for a role that does not exist.
pub fn role_grants(role: &str, stored: Option<&Vec<String>>) -> Option<Vec<String>> {
    match builtin_permissions(role) {
        Some(own) => {
            let mut all: BTreeSet<String> = own.iter().map(|s| (*s).to_owned()).collect();
            all.extend(stored.into_iter().flatten().cloned());
            Some(all.into_iter().collect())
        }
        None => stored.cloned(),
    }
}

/// Every permission the roles grant (`role_grants`); unknown roles grant
/// nothing.
pub fn permissions_of(roles: &[String], stored: &HashMap<String, Vec<String>>) -> BTreeSet<String> {
    roles
        .iter()
        .filter_map(|r| role_grants(r, stored.get(r)))
        .flatten()
        .collect()
}

/// A built-in permission (resource servers declare the others).
pub fn is_permission(s: &str) -> bool {
    PERMISSIONS.contains(&s)
}

/// The admin API's own permissions (`org:*`, `audit:*`, `platform:*`):
/// what a token for the issuer may carry, and what no resource server may
/// declare.
pub fn is_admin_api_permission(p: &str) -> bool {
    ["org:", "audit:", "platform:"]
        .iter()
        .any(|prefix| p.starts_with(prefix))
}

/// A permission an API (resource server) declares. Unknown fields are
/// refused: a misspelt `descripton` would otherwise vanish in silence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiPermission {
    /// 1 to 64 of `a-z 0-9 : . _ -`, starting with a letter or digit,
    /// e.g. `billing:read`.
    pub name: String,
    /// What it allows, for people choosing roles.
    #[serde(default)]
    pub description: String,
}

/// Checks a declared permission: a valid name (a scope token, RFC 6749
/// §3.3, kept to a readable alphabet), not one of the admin API's, and a
/// one-line description of at most 200 characters.
pub fn validate_api_permission(p: &ApiPermission) -> Result<(), String> {
    let n = &p.name;
    let ok = (1..=64).contains(&n.len())
        && n.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b":._-".contains(&b));
    let shown: String = n.chars().filter(|c| !c.is_control()).take(64).collect();
    if !ok {
        return Err(format!(
            "`{shown}` is not a permission name: 1 to 64 of a-z 0-9 : . _ -, starting with a letter or digit"
        ));
    }
    if is_admin_api_permission(n) {
        return Err(format!(
            "`{shown}` is reserved: org:*, audit:* and platform:* are the admin API's own"
        ));
    }
    if p.description.chars().count() > 200 || p.description.chars().any(char::is_control) {
        return Err(format!(
            "the description of `{shown}` must be one line of at most 200 characters"
        ));
    }
    Ok(())
}

/// Which of an account's permissions a token for an audience may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudiencePermissions {
    /// An API that declares no permissions (or the default audience):
    /// every permission the account holds.
    All,
    /// The issuer (the admin API): its own permissions only.
    AdminApi,
    /// An API that declares these.
    Declared(BTreeSet<String>),
}

impl AudiencePermissions {
    /// The set a resource server's stored declaration gives.
    pub fn of_api(declared: &[ApiPermission]) -> Self {
        if declared.is_empty() {
            Self::All
        } else {
            Self::Declared(declared.iter().map(|p| p.name.clone()).collect())
        }
    }

    fn allows(&self, p: &str) -> bool {
        match self {
            Self::All => true,
            Self::AdminApi => is_admin_api_permission(p),
            Self::Declared(set) => set.contains(p),
        }
    }

    /// The roles' permissions a token for this audience may carry; roles
    /// left with none drop out. `admin` and `operator` hold every
    /// permission an API declares (`role_covers`).
    pub fn restrict(&self, held: &RolePermissions) -> RolePermissions {
        held.iter()
            .filter_map(|(role, perms)| {
                let kept: Vec<String> = match self {
                    Self::Declared(set) => {
                        let mut kept: BTreeSet<String> =
                            perms.iter().filter(|p| set.contains(*p)).cloned().collect();
                        kept.extend(set.iter().filter(|p| role_covers(role, p)).cloned());
                        kept.into_iter().collect()
                    }
                    _ => perms.iter().filter(|p| self.allows(p)).cloned().collect(),
                };
                (!kept.is_empty()).then(|| (role.clone(), kept))
            })
            .collect()
    }
}

/// A role id: lowercase letters, digits and `-`, 1–64 chars.
pub fn valid_role_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

/// The permissions of each role an account holds, resolved for one grant.
pub type RolePermissions = HashMap<String, Vec<String>>;

/// What a token carries: the roles it was granted and the permissions
/// (`scope`) it may use. Both sorted, so tokens are deterministic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub roles: Vec<String>,
    pub scope: Vec<String>,
}

impl Grant {
    /// The grant an access token carries: its `roles` and its `scope`.
    pub fn from_token(roles: &[String], scope: &str) -> Self {
        Self {
            roles: roles.to_vec(),
            scope: scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    pub fn scope_string(&self) -> String {
        self.scope.join(" ")
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum ScopeError {
    /// A requested value is neither a held role nor a held permission.
    NotHeld(String),
    /// A requested value is not a valid scope token (RFC 6749 §3.3).
    Malformed,
}

/// RFC 6749 §3.3 scope-token characters.
fn valid_scope_token(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// Derives a grant from the roles available (`held`, with their permissions)
/// and the requested scope. With no request, everything held is granted.
/// A request may name held roles (granting all their permissions) or
/// permissions; the grant's roles are those that contribute to it.
pub fn derive_grant(held: &RolePermissions, requested: Option<&str>) -> Result<Grant, ScopeError> {
    let Some(requested) = requested.filter(|r| !r.trim().is_empty()) else {
        let roles: BTreeSet<&String> = held.keys().collect();
        let scope: BTreeSet<&String> = held.values().flatten().collect();
        return Ok(Grant {
            roles: roles.into_iter().cloned().collect(),
            scope: scope.into_iter().cloned().collect(),
        });
    };
    let mut roles = BTreeSet::new();
    let mut scope = BTreeSet::new();
    for item in requested.split(' ').filter(|t| !t.is_empty()) {
        if !valid_scope_token(item) {
            return Err(ScopeError::Malformed);
        }
        if let Some(perms) = held.get(item) {
            roles.insert(item.to_owned());
            scope.extend(perms.iter().cloned());
            continue;
        }
        let mut found = false;
        for (role, perms) in held {
            if perms.iter().any(|p| p == item) {
                roles.insert(role.clone());
                found = true;
            }
        }
        if !found {
            return Err(ScopeError::NotHeld(item.to_owned()));
        }
        scope.insert(item.to_owned());
    }
    Ok(Grant {
        roles: roles.into_iter().collect(),
        scope: scope.into_iter().collect(),
    })
}

/// Narrows an earlier grant to what is still held now: roles removed from
/// the account drop out, and with them the permissions only they provided.
pub fn narrow_to_live(previous: &Grant, live: &RolePermissions) -> Grant {
    let roles: Vec<String> = previous
        .roles
        .iter()
        .filter(|r| live.contains_key(*r))
        .cloned()
        .collect();
    let allowed: BTreeSet<&String> = roles.iter().filter_map(|r| live.get(r)).flatten().collect();
    let scope = previous
        .scope
        .iter()
        .filter(|p| allowed.contains(p))
        .cloned()
        .collect();
    Grant { roles, scope }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Roles of a product's catalog (examples/catalogs/risk-platform.toml)
    /// and the built-in `admin`.
    fn held(roles: &[&str]) -> RolePermissions {
        let defs: &[(&str, &[&str])] = &[
            ("risk-viewer", &["risks:read"]),
            ("risk-editor", &["risks:read", "risks:write"]),
            ("incident-viewer", &["incidents:read"]),
        ];
        roles
            .iter()
            .map(|r| {
                let perms = defs
                    .iter()
                    .find(|(id, _)| id == r)
                    .map(|(_, p)| *p)
                    .or_else(|| builtin_permissions(r))
                    .unwrap_or_default();
                (r.to_string(), perms.iter().map(|p| p.to_string()).collect())
            })
            .collect()
    }

    #[test]
    fn no_scope_grants_everything_held() {
        let g = derive_grant(&held(&["risk-editor", "incident-viewer"]), None)
            .unwrap_or_else(|_| unreachable!());
        assert_eq!(g.roles, vec!["incident-viewer", "risk-editor"]);
        assert_eq!(g.scope, vec!["incidents:read", "risks:read", "risks:write"]);
    }

    #[test]
    fn scope_narrows_roles_and_permissions() {
        let h = held(&["risk-editor", "incident-viewer"]);
        let g = derive_grant(&h, Some("risks:read")).unwrap_or_else(|_| unreachable!());
        assert_eq!(g.roles, vec!["risk-editor"]);
        assert_eq!(g.scope, vec!["risks:read"]);
        let g = derive_grant(&h, Some("incident-viewer")).unwrap_or_else(|_| unreachable!());
        assert_eq!(g.scope, vec!["incidents:read"]);
    }

    #[test]
    fn scope_beyond_roles_is_refused() {
        let h = held(&["risk-viewer"]);
        assert_eq!(
            derive_grant(&h, Some("risks:write")),
            Err(ScopeError::NotHeld("risks:write".into()))
        );
        assert_eq!(
            derive_grant(&h, Some("admin")),
            Err(ScopeError::NotHeld("admin".into()))
        );
        assert_eq!(derive_grant(&h, Some("a\"b")), Err(ScopeError::Malformed));
    }

    #[test]
    fn narrowing_drops_removed_roles() {
        let g = derive_grant(&held(&["risk-editor", "incident-viewer"]), None)
            .unwrap_or_else(|_| unreachable!());
        let n = narrow_to_live(&g, &held(&["incident-viewer", "admin"]));
        assert_eq!(n.roles, vec!["incident-viewer"]);
        assert_eq!(n.scope, vec!["incidents:read"]);
    }
}
