//! The people of an org (those who sign in to the console): listed, their
//! roles changed, removed. Changing a person is bound by the rules for
//! acting on an account (you must hold what they hold, and be an admin to
//! touch an admin) and for granting (you cannot hand out what you do not
//! hold); and by seed 004's last-admin rule: no change may leave an org
//! that has a person able to manage it without one.
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::accounts::ATTEMPTS;
use super::console::check_roles_exist;
use super::{ManageError, Scope};
use crate::db::Db;
use crate::db::members::{Member, MemberTarget};
use crate::db::write::{ChangeOutcome, OrgSnapshot};
use crate::domain::roles::permissions_of;

/// A person of the org, as the API shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// `link:<name>` for a sign-in link's person, else the SSO provider's
    /// subject.
    pub subject: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    /// RFC 3339.
    #[schema(value_type = String)]
    pub created_at: serde_json::Value,
    /// RFC 3339, or null.
    #[schema(value_type = Option<String>)]
    pub last_seen_at: serde_json::Value,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        Self {
            created_at: super::rfc3339(Some(m.created_at)),
            last_seen_at: super::rfc3339(m.last_seen_at),
            subject: m.subject,
            email: m.email,
            roles: m.roles,
        }
    }
}

pub async fn list(db: &Db, org: &str) -> Result<Vec<MemberView>, ManageError> {
    Ok(db
        .list_members(org)
        .await?
        .into_iter()
        .map(MemberView::from)
        .collect())
}

async fn find(db: &Db, org: &str, subject: &str) -> Result<Member, ManageError> {
    db.list_members(org)
        .await?
        .into_iter()
        .find(|m| m.subject == subject)
        .ok_or(ManageError::MemberNotFound)
}

/// Sets a person's roles (the whole set).
pub async fn set_roles(
    scope: Scope<'_>,
    subject: &str,
    roles: Vec<String>,
) -> Result<MemberView, ManageError> {
    let org = scope.org.ok_or(ManageError::MemberNotFound)?;
    for _ in 0..ATTEMPTS {
        let before = find(scope.db, org, subject).await?;
        check_roles_exist(scope.db, org, &roles).await?;
        let mut all = before.roles.clone();
        all.extend(roles.iter().cloned());
        let custom = scope.db.stored_role_permissions(org, &all).await?;
        let held = permissions_of(&before.roles, &custom);
        scope
            .actor
            .check_may_act_on_holder(&before.roles, &held, "this person")?;
        for r in roles.iter().filter(|r| !before.roles.contains(r)) {
            let perms: Vec<String> = permissions_of(std::slice::from_ref(r), &custom)
                .into_iter()
                .collect();
            scope.actor.check_may_grant(r, &perms)?;
        }
        let audit = scope
            .actor
            .record("member.updated", ("user", subject), scope.now)
            .in_org(org)
            .with(json!({"roles": {"from": before.roles, "to": roles}}));
        if change(&scope, org, &before, &held, Some(&roles), &audit).await? {
            let mut after = before;
            after.roles = roles;
            return Ok(after.into());
        }
    }
    Err(changed_concurrently())
}

/// Removes a person and ends their sessions.
pub async fn remove(scope: Scope<'_>, subject: &str) -> Result<(), ManageError> {
    let org = scope.org.ok_or(ManageError::MemberNotFound)?;
    for _ in 0..ATTEMPTS {
        let before = find(scope.db, org, subject).await?;
        let custom = scope.db.stored_role_permissions(org, &before.roles).await?;
        let held = permissions_of(&before.roles, &custom);
        scope
            .actor
            .check_may_act_on_holder(&before.roles, &held, "this person")?;
        let audit = scope
            .actor
            .record("member.removed", ("user", subject), scope.now)
            .in_org(org)
            .with(json!({"roles": before.roles}));
        if change(&scope, org, &before, &held, None, &audit).await? {
            return Ok(());
        }
    }
    Err(changed_concurrently())
}

fn changed_concurrently() -> ManageError {
    ManageError::Conflict("the person's roles changed concurrently; retry".into())
}

/// The write, judged inside its transaction: it happens only while the
/// person still holds what the checks read (`Ok(false)`: they changed,
/// judge again), the caller may still write (its guard), and the org keeps
/// a person able to manage it if it had one (`Db::change_member`'s rule,
/// under the locks every such change takes).
async fn change(
    scope: &Scope<'_>,
    org: &str,
    before: &Member,
    held: &std::collections::BTreeSet<String>,
    roles: Option<&[String]>,
    audit: &crate::db::AuditEvent,
) -> Result<bool, ManageError> {
    let check = |s: &OrgSnapshot| scope.actor.check_in_write(None, false, s);
    let guard = scope.actor.guard(org, false, &check);
    let target = MemberTarget {
        org,
        subject: &before.subject,
        read: &before.roles,
        read_permissions: held,
    };
    match scope
        .db
        .change_member(target, roles, audit, guard.as_ref())
        .await?
    {
        None => Err(ManageError::MemberNotFound),
        Some(ChangeOutcome::Refused(why)) => Err(ManageError::Conflict(why)),
        Some(ChangeOutcome::Stale) => Ok(false),
        Some(ChangeOutcome::Done) => Ok(true),
    }
}
