//! The one shape of a change to an existing account: `target` reads it
//! and checks who may act on it, `write` writes conditionally on the
//! version read (guarded for API callers), and the operations retry a
//! change that lost a race, `ATTEMPTS` times.
use crate::db::accounts::AccountChange;
use crate::db::write::{ChangeOutcome, OrgSnapshot};
use crate::db::{AuditEvent, Db};
use crate::domain::account::{ServiceAccount, Status};
use crate::manage::{Actor, ManageError, Scope};

/// How often a change whose account moved on between read and write is
/// re-read, re-checked and re-applied before the caller is told to retry.
pub(crate) const ATTEMPTS: usize = 5;

/// Reads the live account `key` (in `org` when given) and checks that
/// `actor` may act on it: the one place that rule lives, for every action
/// on an existing account, from the API, the CLI or anything else. A
/// tombstone is found (GET shows it) but refused, saying why (409).
pub(super) async fn target(scope: &Scope<'_>, key: &str) -> Result<ServiceAccount, ManageError> {
    let (db, actor) = (scope.db, scope.actor);
    match db.find_account(scope.org, key).await? {
        Some(a) if a.is_deleted() => Err(ManageError::Conflict(
            "the service account is deleted; a deleted account cannot be enabled, changed or deleted again"
                .into(),
        )),
        Some(a) => {
            actor.check_may_act_on(&a)?;
            Ok(a)
        }
        None => Err(ManageError::NotFound),
    }
}

/// Writes `change` if the account is still at `a.version`, guarded for
/// API callers (`Actor::check_in_write`). `Ok(None)` when the account
/// moved on.
pub(super) async fn write(
    db: &Db,
    a: &ServiceAccount,
    change: &AccountChange<'_>,
    ev: &AuditEvent,
    actor: &Actor,
) -> Result<Option<()>, ManageError> {
    // Only edits, disabling and deleting can take `org:manage` away.
    let org_wide = matches!(
        change,
        AccountChange::Fields { .. }
            | AccountChange::Status(Status::Disabled)
            | AccountChange::Delete { .. }
    );
    let check = |s: &OrgSnapshot| actor.check_in_write(Some(&a.id), org_wide, s);
    let guard = actor.guard(&a.org_id, org_wide, &check);
    match db
        .change_account(&a.id, a.version, change, ev, guard.as_ref())
        .await?
    {
        ChangeOutcome::Done => Ok(Some(())),
        ChangeOutcome::Stale => Ok(None),
        ChangeOutcome::Refused(why) => Err(ManageError::Conflict(why)),
    }
}

pub(super) fn changed_concurrently() -> ManageError {
    ManageError::Conflict("the service account changed concurrently; retry".into())
}

/// The account as it is now, after a change.
pub(super) async fn live(db: &Db, id: &str) -> Result<ServiceAccount, ManageError> {
    db.find_account(None, id)
        .await?
        .ok_or(ManageError::NotFound)
}
