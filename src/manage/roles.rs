//! Custom roles: created per org, usable like the built-in ones.
use serde_json::json;

use super::{Actor, ManageError, invalid, rfc3339};
use crate::db::roles::CustomRole;
use crate::db::write::{ChangeOutcome, OrgSnapshot};
use crate::db::{Db, DbError};
use crate::domain::roles::{BUILTIN_ROLES, builtin_permissions, is_permission, valid_role_id};
use crate::domain::text::validate_description;

/// The permissions a role is to grant: at least one, each one that
/// exists (built in, or declared by a live resource server), without
/// repeats.
fn known_permissions(
    permissions: &[String],
    declared: &[String],
) -> Result<Vec<String>, ManageError> {
    if permissions.is_empty() {
        return Err(invalid(
            "permissions",
            "at least one permission is required",
        ));
    }
    let mut perms: Vec<String> = Vec::new();
    for p in permissions {
        if !is_permission(p) && !declared.contains(p) {
            return Err(invalid(
                "permissions",
                format!(
                    "unknown permission `{}`",
                    p.chars().take(64).collect::<String>()
                ),
            ));
        }
        if !perms.contains(p) {
            perms.push(p.clone());
        }
    }
    Ok(perms)
}

pub async fn create(
    db: &Db,
    org: &str,
    id: &str,
    description: &str,
    permissions: &[String],
    actor: &Actor,
    now: i64,
) -> Result<CustomRole, ManageError> {
    if !valid_role_id(id) {
        return Err(invalid(
            "id",
            "must be 1 to 64 lowercase letters, digits or '-'",
        ));
    }
    if builtin_permissions(id).is_some() {
        return Err(ManageError::Conflict(format!("`{id}` is a built-in role")));
    }
    let description = validate_description(description)?;
    let declared = db.declared_permissions().await?;
    let mut perms = known_permissions(permissions, &declared)?;
    perms.sort();
    // Creating a role is a way of granting: hold what you define.
    actor.check_may_grant(id, &perms)?;
    let role = CustomRole {
        org_id: org.to_owned(),
        id: id.to_owned(),
        description,
        permissions: perms.join(" "),
        created_at: now,
        created_by: format!("{}:{}", actor.kind, actor.id),
    };
    let ev = actor
        .record("role.created", ("role", id), now)
        .in_org(org)
        .with(json!({"permissions": perms}));
    let check = |s: &OrgSnapshot| actor.check_in_write(None, false, s);
    let guard = actor.guard(org, false, &check);
    let outcome = db
        .insert_custom_role(&role, &ev, guard.as_ref())
        .await
        .map_err(|e| match e {
            DbError::Conflict(m) => ManageError::Conflict(m),
            other => ManageError::Db(other),
        })?;
    if let ChangeOutcome::Refused(why) = outcome {
        return Err(ManageError::Conflict(why));
    }
    Ok(role)
}

/// A role as the API and the CLI show it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RoleView {
    pub id: String,
    pub description: String,
    pub permissions: Vec<String>,
    pub builtin: bool,
    /// RFC 3339; custom roles only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Who created it, as `type:id`; custom roles only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

impl From<&CustomRole> for RoleView {
    fn from(r: &CustomRole) -> Self {
        Self {
            id: r.id.clone(),
            description: r.description.clone(),
            permissions: r.permission_list(),
            builtin: false,
            created_at: rfc3339(Some(r.created_at)).as_str().map(str::to_owned),
            created_by: Some(r.created_by.clone()),
        }
    }
}

/// Built-in roles, then the org's custom roles.
pub async fn list(db: &Db, org: &str) -> Result<Vec<RoleView>, ManageError> {
    let mut out: Vec<RoleView> = BUILTIN_ROLES
        .iter()
        .map(|(id, desc, perms)| RoleView {
            id: (*id).to_owned(),
            description: (*desc).to_owned(),
            permissions: perms.iter().map(|p| (*p).to_owned()).collect(),
            builtin: true,
            created_at: None,
            created_by: None,
        })
        .collect();
    out.extend(db.list_custom_roles(org).await?.iter().map(RoleView::from));
    Ok(out)
}
