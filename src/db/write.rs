//! Audited writes: the change, its audit event and the rules guarding it,
//! in one transaction. Every admin change goes through `audited_write!`,
//! so none can be written without its event, or its event without it.
use crate::domain::account::ServiceAccount;

/// Binds audit events into one multi-row insert and runs it on `$exec`
/// (bookkeeping writes 500 at a time, a change writes its one).
macro_rules! insert_audits {
    ($exec:expr, $events:expr) => {{
        let events: &[$crate::db::AuditEvent] = $events;
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO audit_events \
             (org_id, at, actor_type, actor_id, action, target_type, target_id, source_ip, details, \
             on_behalf_of, actor_email) ",
        );
        qb.push_values(events, |mut b, ev| {
            b.push_bind(&ev.org_id)
                .push_bind(ev.at)
                .push_bind(&ev.actor_type)
                .push_bind(&ev.actor_id)
                .push_bind(&ev.action)
                .push_bind(&ev.target_type)
                .push_bind(&ev.target_id)
                .push_bind(&ev.source_ip)
                .push_bind(ev.details.to_string())
                .push_bind(&ev.on_behalf_of)
                .push_bind(&ev.actor_email);
        });
        qb.build().execute($exec).await
    }};
}

/// The one shape of an audited write, on the writer: in one transaction,
/// take the guard's lock (when there is a guard), run `$write` (which
/// evaluates to the rows it changed, and may return early with an error),
/// then, only if it changed exactly one row and the guard agrees, insert
/// `$audit` and commit; otherwise roll back. Evaluates to the
/// `ChangeOutcome`.
macro_rules! audited_write {
    ($db:expr, $audit:expr, $guard:expr, |$tx:ident| $write:expr) => {{
        let guard: Option<&$crate::db::write::OrgGuard<'_>> = $guard;
        $crate::db::on_db_write!($db, p => {
            let mut $tx = p.begin().await?;
            $crate::db::write::lock_org!($tx, guard);
            let changed: u64 = $write;
            if changed != 1 {
                $tx.rollback().await?;
                $crate::db::write::ChangeOutcome::Stale
            } else if let Some(why) = $crate::db::write::guard_refusal!($tx, guard) {
                $tx.rollback().await?;
                $crate::db::write::ChangeOutcome::Refused(why)
            } else {
                $crate::db::write::insert_audits!(&mut *$tx, std::slice::from_ref($audit))?;
                $tx.commit().await?;
                $crate::db::write::ChangeOutcome::Done
            }
        })
    }};
}

/// The rows a statement changed, or `Conflict(what())` when it broke a
/// unique constraint (an id or audience already taken).
pub(super) fn unique_or_conflict(
    r: Result<u64, sqlx::Error>,
    what: impl FnOnce() -> String,
) -> super::DbResult<u64> {
    match r {
        Err(e) if super::DbError::is_unique_violation(&e) => Err(super::DbError::Conflict(what())),
        other => Ok(other?),
    }
}

/// What `change_account` did.
#[derive(Debug, PartialEq, Eq)]
pub enum ChangeOutcome {
    Done,
    /// The account is gone or changed since it was read (or, for a secret
    /// change, is not a credential account): nothing written.
    Stale,
    /// The guard refused, saying why: nothing written.
    Refused(String),
}

/// An org's accounts that can act right now (live, active, unexpired), as
/// a change would leave them, each with its roles' definitions as they
/// stand in the transaction.
pub struct OrgSnapshot {
    /// The org the write is in.
    pub org: String,
    /// Its usable accounts (or only the caller's), and the caller's own
    /// account when it lives in another org (an operator's).
    pub usable: Vec<ServiceAccount>,
}

/// A rule checked inside a write's transaction (`change_account`,
/// `insert_account`, `write_role`): the org's row is locked before
/// the write, so guarded writes in one org run one at a time on every
/// replica, and `check` sees the org as the write leaves it.
pub struct OrgGuard<'a> {
    pub org: &'a str,
    pub now: i64,
    /// Read only this account into the snapshot (the caller's, when the
    /// write cannot take `org:manage` from anyone); `None` reads every
    /// usable account of the org.
    pub only: Option<&'a str>,
    /// The caller's account, read wherever it lives (an operator acts in
    /// orgs other than its own).
    pub caller: Option<&'a str>,
    pub check: &'a (dyn Fn(&OrgSnapshot) -> Result<(), String> + Send + Sync),
}

/// Takes the guard's lock on the org's row, first thing in the
/// transaction: a write to it, which is PostgreSQL's row lock and SQLite's
/// write lock.
macro_rules! lock_org {
    ($tx:expr, $guard:expr) => {
        if let Some(g) = $guard {
            sqlx::query("UPDATE orgs SET name = name WHERE id = $1")
                .bind(g.org)
                .execute(&mut *$tx)
                .await?;
        }
    };
}

/// Runs the guard on the org as the transaction now sees it; evaluates to
/// the refusal, if any (the caller then rolls back).
macro_rules! guard_refusal {
    ($tx:expr, $guard:expr) => {
        match $guard {
            None => None,
            Some(g) => {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    $crate::db::accounts::columns!(),
                    $crate::db::accounts::context_columns!("service_accounts"),
                    " FROM service_accounts WHERE deleted_at IS NULL \
                     AND status = 'active' AND (expires_at IS NULL OR expires_at > $2) \
                     AND ((org_id = $1 AND ($3 IS NULL OR id = $3)) OR id = $4)"
                ))
                .bind(g.org)
                .bind(g.now)
                .bind(g.only)
                .bind(g.caller)
                .fetch_all(&mut *$tx)
                .await?
                .iter()
                .map(<$crate::db::accounts::AccountRow as $crate::db::rows::Decode>::decode)
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
                let snapshot = $crate::db::write::OrgSnapshot {
                    org: g.org.to_owned(),
                    usable: $crate::db::accounts::convert(rows)?,
                };
                (g.check)(&snapshot).err()
            }
        }
    };
}
pub(crate) use {audited_write, guard_refusal, insert_audits, lock_org};
