//! Stored roles: an org's custom roles and the operator's global roles
//! (`org` `None`), held like the built-in ones. Creating, editing and
//! deleting one is a way of granting, so the actor must hold every
//! permission the role grants, before and after. A role any live account
//! holds is not deleted (409): take it from them first, so no account
//! quietly loses permissions and no role id is left dangling.
use serde_json::json;

use super::{Actor, ManageError, invalid, rfc3339};
use crate::db::roles::{RoleWrite, StoredRole};
use crate::db::write::{ChangeOutcome, OrgSnapshot};
use crate::db::{Db, DbError};
use crate::domain::roles::{
    BUILTIN_ROLES, builtin_permissions, is_permission, permissions_of, role_grants, valid_role_id,
};
use crate::domain::text::validate_description;

/// The permissions a role is to grant: at least one, each one that
/// exists (built in, declared by a live resource server or a role
/// catalog), without
/// repeats, sorted.
async fn known_permissions(db: &Db, permissions: &[String]) -> Result<Vec<String>, ManageError> {
    if permissions.is_empty() {
        return Err(invalid(
            "permissions",
            "at least one permission is required",
        ));
    }
    let declared = db.declared_permissions().await?;
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
    perms.sort();
    Ok(perms)
}

/// The change a role write makes, for its audit event.
struct Change<'a> {
    action: &'static str,
    write: RoleWrite,
    details: serde_json::Value,
    /// Whether the write could take `org:manage` from someone.
    org_wide: bool,
    role: &'a StoredRole,
    /// The permissions the role granted when the checks read it (updates
    /// and deletions): the write happens only if it still does.
    read: Option<&'a str>,
}

/// Runs one role write with its audit event, under the actor's guard
/// (a global role's write checks the caller alone: it is in no one org).
async fn write(db: &Db, actor: &Actor, c: Change<'_>, now: i64) -> Result<(), ManageError> {
    let org = c.role.org_id.as_deref();
    let mut ev = actor
        .record(c.action, ("role", &c.role.id), now)
        .with(c.details);
    if let Some(org) = org {
        ev = ev.in_org(org);
    }
    // A role change may change the caller's own account: its lockout is
    // "would lock you out".
    let me = actor.own_account();
    let check = |s: &OrgSnapshot| actor.check_in_write(me, c.org_wide && org.is_some(), s);
    let guard = actor.guard(org.unwrap_or(""), c.org_wide && org.is_some(), &check);
    let outcome = db
        .write_role(c.role, c.write, c.read, &ev, guard.as_ref())
        .await
        .map_err(|e| match e {
            DbError::Conflict(m) => ManageError::Conflict(m),
            other => ManageError::Db(other),
        })?;
    match outcome {
        ChangeOutcome::Done => Ok(()),
        ChangeOutcome::Refused(why) => Err(ManageError::Conflict(why)),
        // Another scope took the id, an account came to name the role, or
        // the role itself changed, between the checks below and the write.
        ChangeOutcome::Stale => Err(ManageError::Conflict(format!(
            "role `{}` changed while this request was in flight; try again",
            c.role.id
        ))),
    }
}

fn scope_name(org: Option<&str>) -> String {
    match org {
        Some(org) => format!("organization `{org}`"),
        None => "any organization".into(),
    }
}

/// Creates a role in `org`, or a global one with `None`.
pub async fn create(
    db: &Db,
    org: Option<&str>,
    id: &str,
    description: &str,
    permissions: &[String],
    actor: &Actor,
    now: i64,
) -> Result<StoredRole, ManageError> {
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
    let perms = known_permissions(db, permissions).await?;
    // Creating a role is a way of granting: hold what you define.
    actor.check_may_grant(id, &perms)?;
    match (db.role_id_taken(id).await?, org) {
        (Some(None), _) => {
            return Err(ManageError::Conflict(format!("`{id}` is a global role")));
        }
        (Some(Some(other)), None) => {
            return Err(ManageError::Conflict(format!(
                "`{id}` is a custom role of organization `{other}`"
            )));
        }
        (Some(Some(other)), Some(org)) if other == org => {
            return Err(ManageError::Conflict(format!("role `{id}` already exists")));
        }
        _ => {}
    }
    if db.role_holders(org, id).await? > 0 {
        return Err(ManageError::Conflict(format!(
            "service accounts in {} still name a role `{id}` that no longer exists; \
             take it from them first",
            scope_name(org)
        )));
    }
    if db.role_holder_people(org, id).await? > 0 {
        return Err(ManageError::Conflict(format!(
            "people in {} still name a role `{id}` that no longer exists; \
             take it from them first (Team)",
            scope_name(org)
        )));
    }
    let role = StoredRole {
        org_id: org.map(str::to_owned),
        id: id.to_owned(),
        description,
        permissions: perms.join(" "),
        created_at: now,
        created_by: format!("{}:{}", actor.kind, actor.id),
    };
    let change = Change {
        action: "role.created",
        write: RoleWrite::Create,
        details: json!({"permissions": perms, "global": org.is_none()}),
        org_wide: false,
        role: &role,
        read: None,
    };
    write(db, actor, change, now).await?;
    Ok(role)
}

/// The stored role `id` of exactly this scope (an org's own, or global);
/// a built-in role or one of the other scope is refused with a reason.
async fn own_role(db: &Db, org: Option<&str>, id: &str) -> Result<StoredRole, ManageError> {
    if builtin_permissions(id).is_some() {
        return Err(ManageError::Conflict(format!(
            "`{id}` is a built-in role and cannot be changed"
        )));
    }
    match db.find_role(org, id).await? {
        Some(r) if r.org_id.as_deref() == org => Ok(r),
        Some(_) => Err(ManageError::Conflict(format!(
            "`{id}` is a global role: only an operator changes it, through \
             /api/v1/global-roles or `warden roles` without --org"
        ))),
        None => Err(ManageError::RoleNotFound),
    }
}

/// The fields an update may set; `None` leaves one as it is.
#[derive(Debug, Default)]
pub struct RoleUpdate {
    pub description: Option<String>,
    /// The whole new set.
    pub permissions: Option<Vec<String>>,
}

/// Changes a stored role. Every account holding it holds the new
/// permissions from its next request on.
pub async fn update(
    db: &Db,
    org: Option<&str>,
    id: &str,
    change: RoleUpdate,
    actor: &Actor,
    now: i64,
) -> Result<StoredRole, ManageError> {
    let old = own_role(db, org, id).await?;
    let description = match change.description {
        Some(d) => validate_description(&d)?,
        None => old.description.clone(),
    };
    let old_perms = old.permission_list();
    let perms = match &change.permissions {
        Some(p) => known_permissions(db, p).await?,
        None => old_perms.clone(),
    };
    // What it granted and what it will grant: the actor must hold both.
    let mut both = old_perms.clone();
    both.extend(perms.iter().cloned());
    actor.check_may_grant(id, &both)?;
    // It changes every holder: the actor must be one who may act on each.
    if actor.authority.is_some() {
        for holder in db.role_holder_accounts(org, id).await? {
            actor.check_may_act_on(&holder).map_err(|_| {
                ManageError::Forbidden(format!(
                    "`{id}` is held by service account `{}`, which holds permissions \
                     you do not hold",
                    holder.name
                ))
            })?;
        }
        if let Some(org) = org {
            for m in db.list_members(org).await? {
                if !m.roles.iter().any(|r| r == id) {
                    continue;
                }
                let custom = db.stored_role_permissions(org, &m.roles).await?;
                let held = permissions_of(&m.roles, &custom);
                actor.check_may_act_on_holder(
                    &m.roles,
                    &held,
                    &format!("`{id}`'s holder `{}`", m.subject),
                )?;
            }
        }
    }
    let new = StoredRole {
        description,
        permissions: perms.join(" "),
        ..old.clone()
    };
    let mut details = serde_json::Map::new();
    if new.description != old.description {
        details.insert("description".into(), json!(new.description));
    }
    if perms != old_perms {
        let added: Vec<&String> = perms.iter().filter(|p| !old_perms.contains(p)).collect();
        let removed: Vec<&String> = old_perms.iter().filter(|p| !perms.contains(p)).collect();
        details.insert("permissions_added".into(), json!(added));
        details.insert("permissions_removed".into(), json!(removed));
    }
    if details.is_empty() {
        return Ok(old);
    }
    let c = Change {
        action: "role.updated",
        write: RoleWrite::Update,
        details: details.into(),
        org_wide: true,
        role: &new,
        read: Some(&old.permissions),
    };
    write(db, actor, c, now).await?;
    Ok(new)
}

/// Deletes a stored role no live account holds.
pub async fn delete(
    db: &Db,
    org: Option<&str>,
    id: &str,
    actor: &Actor,
    now: i64,
) -> Result<StoredRole, ManageError> {
    let role = own_role(db, org, id).await?;
    actor.check_may_grant(id, &role.permission_list())?;
    let holders = db.role_holders(org, id).await?;
    if holders > 0 {
        return Err(ManageError::Conflict(format!(
            "{holders} service account(s) in {} hold `{id}`; take it from them first",
            scope_name(org)
        )));
    }
    let people = db.role_holder_people(org, id).await?;
    if people > 0 {
        return Err(ManageError::Conflict(format!(
            "{people} person(s) in {} hold `{id}`; take it from them first (Team)",
            scope_name(org)
        )));
    }
    let c = Change {
        action: "role.deleted",
        write: RoleWrite::Delete,
        details: json!({"permissions": role.permission_list()}),
        org_wide: false,
        role: &role,
        read: Some(&role.permissions),
    };
    write(db, actor, c, now).await?;
    Ok(role)
}

/// A role as the API and the CLI show it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RoleView {
    pub id: String,
    pub description: String,
    pub permissions: Vec<String>,
    /// Compiled in; never changes.
    pub builtin: bool,
    /// Defined by the operator for every organization.
    pub global: bool,
    /// RFC 3339; stored roles only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Who created it, as `type:id`; stored roles only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

impl From<&StoredRole> for RoleView {
    fn from(r: &StoredRole) -> Self {
        Self {
            id: r.id.clone(),
            description: r.description.clone(),
            permissions: r.permission_list(),
            builtin: false,
            global: r.org_id.is_none(),
            created_at: rfc3339(Some(r.created_at)).as_str().map(str::to_owned),
            created_by: Some(r.created_by.clone()),
        }
    }
}

/// The built-in roles, with what role catalogs added to them.
async fn builtin_views(db: &Db) -> Result<Vec<RoleView>, ManageError> {
    let additions = db.role_additions().await?;
    Ok(BUILTIN_ROLES
        .iter()
        .map(|(id, desc, _)| RoleView {
            id: (*id).to_owned(),
            description: (*desc).to_owned(),
            permissions: role_grants(id, additions.get(*id)).unwrap_or_default(),
            builtin: true,
            global: false,
            created_at: None,
            created_by: None,
        })
        .collect())
}

/// The roles usable in `org`: built-in, then global, then the org's own;
/// with `None`, the global roles alone.
pub async fn list(db: &Db, org: Option<&str>) -> Result<Vec<RoleView>, ManageError> {
    let stored = db.list_roles(org).await?;
    let stored = stored.iter().map(RoleView::from);
    Ok(match org {
        Some(_) => builtin_views(db).await?.into_iter().chain(stored).collect(),
        None => stored.collect(),
    })
}

/// One role usable in `org` (built-in, global or the org's own), or one
/// global role with `None`.
pub async fn show(db: &Db, org: Option<&str>, id: &str) -> Result<RoleView, ManageError> {
    if org.is_some()
        && builtin_permissions(id).is_some()
        && let Some(v) = builtin_views(db).await?.into_iter().find(|v| v.id == id)
    {
        return Ok(v);
    }
    db.find_role(org, id)
        .await?
        .filter(|r| org.is_some() || r.org_id.is_none())
        .map(|r| RoleView::from(&r))
        .ok_or(ManageError::RoleNotFound)
}
