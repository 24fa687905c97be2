//! Applying a role catalog (`WARDEN_ROLE_CATALOG`): at every start and on
//! `warden migrate`, as the operator. Its permissions are declared, its
//! roles created or brought to the file's definition through the same
//! role writes as the platform API's (so every rule on roles holds), and
//! its additions to the built-in roles set. Nothing is deleted, and a
//! second application changes nothing: each write happens only when the
//! stored value differs, with its audit event.
use std::collections::BTreeSet;
use std::path::Path;

use serde_json::json;

use super::{Actor, ManageError};
use crate::db::Db;
use crate::domain::catalog::Catalog;

/// What one application changed, for the log line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub permissions: usize,
    pub roles: usize,
    pub additions: usize,
    /// Roles left out because an organization already uses the id for a
    /// role of its own (an org admin may make one any time: the rollout
    /// must not hinge on it), each as "role in org".
    pub skipped: Vec<String>,
}

impl Applied {
    pub fn is_empty(&self) -> bool {
        self.permissions == 0 && self.roles == 0 && self.additions == 0
    }
}

/// Reads, checks and applies the catalog at `path`. The error names the
/// file and is one line.
pub async fn apply_file(db: &Db, path: &Path, now: i64) -> Result<Applied, ManageError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ManageError::Conflict(format!("role catalog {shown}: {e}")))?;
    let catalog = Catalog::parse(&text)
        .map_err(|e| ManageError::Conflict(format!("role catalog {shown}: {e}")))?;
    apply(db, catalog, &shown.to_string(), now)
        .await
        .map_err(|e| match e {
            ManageError::Conflict(m) => ManageError::Conflict(format!("role catalog {shown}: {m}")),
            ManageError::Invalid(f) => {
                ManageError::Conflict(format!("role catalog {shown}: {}: {}", f.field, f.reason))
            }
            other => other,
        })
}

/// Applies a parsed catalog; `source` names it in audit events.
pub async fn apply(
    db: &Db,
    catalog: Catalog,
    source: &str,
    now: i64,
) -> Result<Applied, ManageError> {
    let stored = db.catalog_permissions().await?;
    let known: BTreeSet<String> = db.declared_permissions().await?.into_iter().collect();
    let catalog = catalog.checked(&known).map_err(ManageError::Conflict)?;
    // A role id an org already uses for its own role is left out (said
    // in the log), so no tenant can stop a catalog from applying.
    let mut skipped = Vec::new();
    let mut roles = Vec::new();
    for r in catalog.roles {
        match db.role_id_taken(&r.id).await? {
            Some(Some(org)) => skipped.push(format!("`{}` in organization `{org}`", r.id)),
            _ => roles.push(r),
        }
    }
    // Every change is the operator's, named after the file.
    let actor = Actor {
        id: format!("catalog:{source}"),
        ..Actor::operator()
    };
    let by = format!("catalog:{source}");
    let mut applied = Applied {
        skipped,
        ..Applied::default()
    };
    for p in &catalog.permissions {
        if stored.iter().any(|s| s == p) {
            continue;
        }
        let ev = actor
            .record("permission.declared", ("permission", &p.name), now)
            .with(json!({"description": p.description, "catalog": source}));
        db.put_catalog_permission(p, &by, &ev).await?;
        applied.permissions += 1;
    }
    for r in &roles {
        let same = |old: &crate::db::roles::StoredRole| {
            old.description == r.description && old.permission_list() == r.permissions
        };
        let found = db.find_role(None, &r.id).await?;
        match found {
            None => {
                let made = super::roles::create(
                    db,
                    None,
                    &r.id,
                    &r.description,
                    &r.permissions,
                    &actor,
                    now,
                )
                .await;
                match made {
                    Ok(_) => {}
                    // Another replica starting with the same file made it
                    // first: nothing left to do.
                    Err(ManageError::Conflict(_))
                        if db.find_role(None, &r.id).await?.is_some_and(|o| same(&o)) =>
                    {
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            Some(old) if same(&old) => continue,
            Some(_) => {
                let change = super::roles::RoleUpdate {
                    description: Some(r.description.clone()),
                    permissions: Some(r.permissions.clone()),
                };
                match super::roles::update(db, None, &r.id, change, &actor, now).await {
                    Ok(_) => {}
                    Err(ManageError::Conflict(_))
                        if db.find_role(None, &r.id).await?.is_some_and(|o| same(&o)) =>
                    {
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        applied.roles += 1;
    }
    let additions = db.role_additions().await?;
    for (role, perms) in &catalog.additions {
        let before = additions.get(role).cloned().unwrap_or_default();
        if &before == perms {
            continue;
        }
        let added: Vec<&String> = perms.iter().filter(|p| !before.contains(p)).collect();
        let removed: Vec<&String> = before.iter().filter(|p| !perms.contains(p)).collect();
        let ev = actor.record("role.updated", ("role", role), now).with(
            json!({"permissions_added": added, "permissions_removed": removed,
                         "catalog": source}),
        );
        db.put_role_addition(role, &perms.join(" "), &by, &ev)
            .await?;
        applied.additions += 1;
    }
    Ok(applied)
}

/// The scopes the metadata lists (`scopes_supported`): the admin plane's
/// permissions and those role catalogs declared. APIs' own permissions
/// are theirs to publish (RFC 9728 `scopes_supported`).
pub async fn scopes_supported(db: &Db) -> Result<Vec<String>, ManageError> {
    let mut out: Vec<String> = crate::domain::roles::PERMISSIONS
        .iter()
        .map(|p| (*p).to_owned())
        .collect();
    out.extend(db.catalog_permissions().await?.into_iter().map(|p| p.name));
    Ok(out)
}
