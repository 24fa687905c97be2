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
/// take the guard's lock and read the caller as it stands (when there is a
/// guard), run `$write` (which
/// evaluates to the rows it changed, and may return early with an error),
/// then, only if it changed exactly one row and the guard agrees, insert
/// `$audit` and commit; otherwise roll back. Evaluates to the
/// `ChangeOutcome`.
macro_rules! audited_write {
    ($db:expr, $audit:expr, $guard:expr, |$tx:ident| $write:expr) => {{
        let guard: Option<&$crate::db::write::OrgGuard<'_>> = $guard;
        $crate::db::on_db_write!($db, p => {
            let mut $tx = p.begin().await?;
            let before = $crate::db::write::lock_org!($tx, guard);
            let changed: u64 = $write;
            if changed != 1 {
                $tx.rollback().await?;
                $crate::db::write::ChangeOutcome::Stale
            } else if let Some(why) = $crate::db::write::guard_refusal!($tx, guard, before) {
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
/// stand in the transaction; and the caller as it stands there too.
pub struct OrgSnapshot {
    /// The org the write is in.
    pub org: String,
    /// Its usable accounts (or only the caller's), and the caller's own
    /// account when it lives in another org (an operator's).
    pub usable: Vec<ServiceAccount>,
    /// The org the calling account lives in, as it stands now (`None`: no
    /// calling account, or it is gone).
    pub caller_org: Option<OrgState>,
    /// The calling person, when a person calls: `None` inside means their
    /// session is over (signed out, expired, removed from the org).
    pub person: Option<Option<PersonNow>>,
    /// Whether, before the write, an active credential account of the org
    /// held `org:manage` (read for org-wide guards only; otherwise true).
    /// The rule that an org keeps a manager binds an org that had one.
    pub had_manager: bool,
}

/// What a guard reads before the write: the caller as it stood when the
/// transaction took the org's lock (its org; a person's session, roles and
/// org), and whether the org had a manager. The caller is judged as it was
/// then, so a person's own change to themselves (stepping down while
/// another admin remains) is judged by seed 004's rule, not as a lockout.
pub struct Before {
    pub caller_org: Option<OrgState>,
    pub person: Option<Option<PersonNow>>,
    pub had_manager: bool,
}

/// An org's status and allowlist, as the transaction sees them.
pub struct OrgState {
    pub active: bool,
    pub allowed_ips: crate::domain::ip::IpAllowlist,
}

/// A console person as the transaction sees them: their roles, what those
/// grant now (never the platform's powers), and their org's state.
pub struct PersonNow {
    pub roles: Vec<String>,
    pub permissions: std::collections::BTreeSet<String>,
    pub org: OrgState,
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
    /// The calling person's console session (the SHA-256 of its cookie).
    pub person: Option<&'a str>,
    pub check: &'a (dyn Fn(&OrgSnapshot) -> Result<(), String> + Send + Sync),
}

/// Takes the guard's lock on the org's row, first thing in the
/// transaction: a write to it, which is PostgreSQL's row lock and SQLite's
/// write lock.
macro_rules! lock_org {
    ($tx:expr, $guard:expr) => {
        match $guard {
            None => None,
            Some(g) => {
                sqlx::query("UPDATE orgs SET name = name WHERE id = $1")
                    .bind(g.org)
                    .execute(&mut *$tx)
                    .await?;
                Some($crate::db::write::guard_before!($tx, g))
            }
        }
    };
}

/// The org's usable accounts as `$tx` sees them (the guard's `only` and
/// `caller`), decoded.
macro_rules! usable_accounts {
    ($tx:expr, $g:expr) => {{
        let g: &$crate::db::write::OrgGuard<'_> = $g;
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
        $crate::db::accounts::convert(rows)?
    }};
}

/// The guard's `Before`, read in `$tx` (after the org's lock is taken).
macro_rules! guard_before {
    ($tx:expr, $g:expr) => {{
        let g: &$crate::db::write::OrgGuard<'_> = $g;
        let had_manager = if g.only.is_none() {
            let usable = $crate::db::write::usable_accounts!($tx, g);
            $crate::domain::account::keeps_a_manager(g.org, &usable)
        } else {
            true
        };
        let (caller_org, person) = $crate::db::write::caller_state!($tx, g);
        $crate::db::write::Before {
            caller_org,
            person,
            had_manager,
        }
    }};
}

/// The caller's own state inside the transaction: its account's org (for
/// an account) or its session, membership, roles and org (for a person).
/// Evaluates to `(caller_org, person)` for `OrgSnapshot`.
macro_rules! caller_state {
    ($tx:expr, $g:expr) => {{
        let g: &$crate::db::write::OrgGuard<'_> = $g;
        let org_state = |status: &str, ips: &str| $crate::db::write::OrgState {
            active: status == "active",
            allowed_ips: $crate::domain::ip::IpAllowlist::parse_stored(ips),
        };
        let caller_org = match g.caller {
            None => None,
            Some(id) => sqlx::query_as::<_, (String, String)>(
                "SELECT o.status, o.allowed_ips FROM orgs o \
                 JOIN service_accounts a ON a.org_id = o.id WHERE a.id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *$tx)
            .await?
            .map(|(st, ips)| org_state(&st, &ips)),
        };
        let person = match g.person {
            None => None,
            Some(session) => {
                let row = sqlx::query_as::<_, (String, String, String, String)>(
                    "SELECT s.org_id, m.roles, o.status, o.allowed_ips FROM console_sessions s \
                     JOIN orgs o ON o.id = s.org_id \
                     JOIN console_members m ON m.org_id = s.org_id AND m.subject = s.subject \
                     WHERE s.id = $1 AND s.expires_at > $2",
                )
                .bind(session)
                .bind(g.now)
                .fetch_optional(&mut *$tx)
                .await?;
                match row {
                    None => Some(None),
                    Some((org, roles, st, ips)) => {
                        let roles = $crate::db::members::split(&roles);
                        let permissions =
                            $crate::db::members::role_permissions_in!($tx, &org, &roles)
                                .into_iter()
                                .filter(|p| p != $crate::domain::roles::PLATFORM_MANAGE)
                                .collect();
                        Some(Some($crate::db::write::PersonNow {
                            roles,
                            permissions,
                            org: org_state(&st, &ips),
                        }))
                    }
                }
            }
        };
        (caller_org, person)
    }};
}

/// Runs the guard on the org as the transaction now sees it; evaluates to
/// the refusal, if any (the caller then rolls back).
macro_rules! guard_refusal {
    ($tx:expr, $guard:expr, $before:expr) => {
        match ($guard, $before) {
            (Some(g), Some(before)) => {
                let before: $crate::db::write::Before = before;
                let snapshot = $crate::db::write::OrgSnapshot {
                    org: g.org.to_owned(),
                    usable: $crate::db::write::usable_accounts!($tx, g),
                    caller_org: before.caller_org,
                    person: before.person,
                    had_manager: before.had_manager,
                };
                (g.check)(&snapshot).err()
            }
            _ => None,
        }
    };
}
pub(crate) use {
    audited_write, caller_state, guard_before, guard_refusal, insert_audits, lock_org,
    usable_accounts,
};
