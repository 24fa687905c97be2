//! Stored roles: an org's custom roles (`roles`) and the operator's global
//! ones (`global_roles`). Built-in roles are in code, `domain::roles`.
//!
//! A role id names one role wherever it is used: no org's custom role
//! shares an id with a global role. Every role write first takes one lock
//! row (`write_locks`), so two creations racing on two replicas cannot
//! both pass that check.
use std::collections::{BTreeSet, HashMap};

use super::accounts::{AccountRow, columns, context_columns, convert, split_permissions};
use super::members::{last_admin, member_holds_role, people_managing};
use super::rows::{Cols, Count, Decode, Param, bound};
use super::write::{ChangeOutcome, OrgGuard, audited_write, unique_or_conflict};
use super::{AuditEvent, Db, DbError, DbResult};
use crate::domain::account::ServiceAccount;
use crate::domain::roles::ORG_MANAGE;

/// A stored role: an org's (`org_id` set) or global (`None`).
#[derive(Debug, Clone)]
pub struct StoredRole {
    pub org_id: Option<String>,
    pub id: String,
    pub description: String,
    pub permissions: String,
    pub created_at: i64,
    pub created_by: String,
}

impl Decode for StoredRole {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        Ok(Self {
            org_id: r.opt_text(0)?,
            id: r.text(1)?,
            description: r.text(2)?,
            permissions: r.text(3)?,
            created_at: r.int(4)?,
            created_by: r.text(5)?,
        })
    }
}

impl StoredRole {
    /// The permissions, as stored space-separated.
    pub fn permission_list(&self) -> Vec<String> {
        split_permissions(&self.permissions)
    }
}

/// Both kinds visible in org `$1`, global ones first (`NULL` org).
macro_rules! select_roles {
    ($tail:literal) => {
        concat!(
            "SELECT * FROM (\
             SELECT CAST(NULL AS TEXT) AS org_id, id, description, permissions, created_at, \
             created_by FROM global_roles \
             UNION ALL \
             SELECT org_id, id, description, permissions, created_at, created_by \
             FROM roles WHERE org_id = $1) r ",
            $tail
        )
    };
}

/// Does the account row `a` hold the role named by parameter `$p`? (Role
/// ids are lowercase letters, digits and `-`, so `LIKE` matches exactly.)
macro_rules! holds_role {
    ($p:literal) => {
        concat!("(' ' || a.roles || ' ') LIKE ('% ' || ", $p, " || ' %')")
    };
}

/// The orgs where some live account holds role `$id` and an active,
/// unexpired credential account holds `org:manage` (through any role), as
/// the transaction sees them now.
macro_rules! managed_orgs {
    ($tx:expr, $id:expr, $now:expr) => {{
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            context_columns!("service_accounts"),
            " FROM service_accounts WHERE deleted_at IS NULL AND status = 'active' \
             AND kind = 'credential' AND (expires_at IS NULL OR expires_at > $2) \
             AND org_id IN (SELECT a.org_id FROM service_accounts a \
             WHERE a.deleted_at IS NULL AND ",
            holds_role!("$1"),
            ")"
        ))
        .bind($id)
        .bind($now)
        .fetch_all(&mut *$tx)
        .await?
        .iter()
        .map(<AccountRow as Decode>::decode)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let usable = convert(rows)?;
        usable
            .iter()
            .map(|a| a.org_id.as_str())
            .filter(|o| $crate::domain::account::keeps_a_manager(o, &usable))
            .map(str::to_owned)
            .collect::<BTreeSet<String>>()
    }};
}

/// Which write `Db::write_role` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleWrite {
    Create,
    Update,
    Delete,
}

impl Db {
    /// The permissions of those of `roles` that are stored roles visible in
    /// `org` (its custom ones and the global ones), and what a catalog
    /// added to those that are built in (`domain::roles::role_grants`).
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "stored_role_permissions")
    )]
    pub async fn stored_role_permissions(
        &self,
        org: &str,
        roles: &[String],
    ) -> DbResult<HashMap<String, Vec<String>>> {
        if roles.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = "SELECT id, permissions FROM global_roles \
                   WHERE (' ' || $2 || ' ') LIKE ('% ' || id || ' %') \
                   UNION ALL SELECT id, permissions FROM roles \
                   WHERE org_id = $1 AND (' ' || $2 || ' ') LIKE ('% ' || id || ' %') \
                   UNION ALL SELECT role, permissions FROM role_additions \
                   WHERE (' ' || $2 || ' ') LIKE ('% ' || role || ' %')";
        let wanted = roles.join(" ");
        let rows: Vec<IdPerms> = self
            .read_all(sql, &[Param::Text(org), Param::Text(&wanted)])
            .await?;
        Ok(rows
            .into_iter()
            .filter(|r| roles.contains(&r.0))
            .map(|IdPerms(id, perms)| (id, split_permissions(&perms)))
            .collect())
    }

    /// The stored roles visible in `org` (global ones first), or only the
    /// global ones with `None`.
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "list_roles"))]
    pub async fn list_roles(&self, org: Option<&str>) -> DbResult<Vec<StoredRole>> {
        let sql = select_roles!("ORDER BY org_id IS NOT NULL, id");
        self.read_all(sql, &[Param::OptText(org)]).await
    }

    /// One stored role visible in `org` (an org's own, or global), or a
    /// global one with `None`.
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "find_role"))]
    pub async fn find_role(&self, org: Option<&str>, id: &str) -> DbResult<Option<StoredRole>> {
        let sql = select_roles!("WHERE id = $2");
        self.read_one(sql, &[Param::OptText(org), Param::Text(id)])
            .await
    }

    /// Where a role id is taken, for a clear refusal before a write: a
    /// global role, or a custom role in some org (`Some(org)`).
    pub async fn role_id_taken(&self, id: &str) -> DbResult<Option<Option<String>>> {
        let sql = "SELECT CAST(NULL AS TEXT), id, description, permissions, created_at, created_by \
                   FROM global_roles WHERE id = $1 UNION ALL \
                   SELECT org_id, id, description, permissions, created_at, created_by \
                   FROM roles WHERE id = $1";
        let found: Vec<StoredRole> = self.read_all(sql, &[Param::Text(id)]).await?;
        Ok(found.into_iter().next().map(|r| r.org_id))
    }

    /// How many live accounts (in `org`, or in any org with `None`) hold
    /// the role `id`.
    pub async fn role_holders(&self, org: Option<&str>, id: &str) -> DbResult<i64> {
        let sql = concat!(
            "SELECT COUNT(*) FROM service_accounts a WHERE a.deleted_at IS NULL \
             AND ($1 IS NULL OR a.org_id = $1) AND ",
            holds_role!("$2")
        );
        let n: Option<Count> = self
            .read_one(sql, &[Param::OptText(org), Param::Text(id)])
            .await?;
        Ok(n.map_or(0, |c| c.0))
    }

    /// The live accounts (in `org`, or in any org with `None`) that hold
    /// the role `id`.
    pub async fn role_holder_accounts(
        &self,
        org: Option<&str>,
        id: &str,
    ) -> DbResult<Vec<ServiceAccount>> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            context_columns!("a"),
            " FROM service_accounts a WHERE a.deleted_at IS NULL \
             AND ($1 IS NULL OR a.org_id = $1) AND ",
            holds_role!("$2")
        );
        let rows: Vec<AccountRow> = self
            .read_all(sql, &[Param::OptText(org), Param::Text(id)])
            .await?;
        convert(rows)
    }

    /// Creates, updates or deletes a stored role, with its audit event, in
    /// one transaction that first locks the org rows the role could clash
    /// with. A creation whose id another scope took meanwhile, or which
    /// live accounts already name, and a deletion of a role an account
    /// holds, change nothing (`Stale`).
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "write_role"))]
    ///
    /// An update or deletion happens only if the role still grants
    /// `read` (the permissions the caller's checks judged): one that
    /// changed meanwhile is `Stale`, so nothing is judged on a stale read
    /// and the audit's `from` is what was replaced.
    ///
    /// A global role's update is refused (`Conflict`) if it would leave an
    /// org that had an active credential account holding `org:manage` with
    /// none, whoever asks, the CLI too (judged inside the transaction,
    /// before and after the change, by `keeps_a_manager`); so is an org
    /// role's update without a guard (the CLI's), which the org guard
    /// judges otherwise.
    pub async fn write_role(
        &self,
        r: &StoredRole,
        write: RoleWrite,
        read: Option<&str>,
        audit: &AuditEvent,
        guard: Option<&OrgGuard<'_>>,
    ) -> DbResult<ChangeOutcome> {
        // A global role reaches every org; an org's role is judged by the
        // caller's guard, or here when there is none (the CLI).
        let judge = write == RoleWrite::Update && (r.org_id.is_none() || guard.is_none());
        let read = read.unwrap_or_default();
        let now = crate::now_unix();
        let org = r.org_id.as_deref();
        let (sql, params): (&str, Vec<Param<'_>>) = match (write, org) {
            (RoleWrite::Create, Some(org)) => (
                concat!(
                    "INSERT INTO roles (org_id, id, description, permissions, created_at, \
                     created_by) SELECT $1, $2, $3, $4, $5, $6 \
                     WHERE NOT EXISTS (SELECT 1 FROM global_roles WHERE id = $2) \
                     AND NOT EXISTS (SELECT 1 FROM service_accounts a \
                     WHERE a.org_id = $1 AND a.deleted_at IS NULL AND ",
                    holds_role!("$2"),
                    ") AND NOT EXISTS (SELECT 1 FROM console_members m WHERE m.org_id = $1 AND ",
                    member_holds_role!("$2"),
                    ")"
                ),
                vec![
                    Param::Text(org),
                    Param::Text(&r.id),
                    Param::Text(&r.description),
                    Param::Text(&r.permissions),
                    Param::Int(r.created_at),
                    Param::Text(&r.created_by),
                ],
            ),
            (RoleWrite::Create, None) => (
                concat!(
                    "INSERT INTO global_roles (id, description, permissions, created_at, \
                     created_by) SELECT $2, $3, $4, $5, $1 \
                     WHERE NOT EXISTS (SELECT 1 FROM roles WHERE id = $2) \
                     AND NOT EXISTS (SELECT 1 FROM service_accounts a \
                     WHERE a.deleted_at IS NULL AND ",
                    holds_role!("$2"),
                    ") AND NOT EXISTS (SELECT 1 FROM console_members m WHERE ",
                    member_holds_role!("$2"),
                    ")"
                ),
                vec![
                    Param::Text(&r.created_by),
                    Param::Text(&r.id),
                    Param::Text(&r.description),
                    Param::Text(&r.permissions),
                    Param::Int(r.created_at),
                ],
            ),
            (RoleWrite::Update, Some(org)) => (
                "UPDATE roles SET description = $3, permissions = $4 \
                 WHERE org_id = $1 AND id = $2 AND permissions = $5",
                vec![
                    Param::Text(org),
                    Param::Text(&r.id),
                    Param::Text(&r.description),
                    Param::Text(&r.permissions),
                    Param::Text(read),
                ],
            ),
            (RoleWrite::Update, None) => (
                "UPDATE global_roles SET description = $1, permissions = $3 \
                 WHERE id = $2 AND permissions = $4",
                vec![
                    Param::Text(&r.description),
                    Param::Text(&r.id),
                    Param::Text(&r.permissions),
                    Param::Text(read),
                ],
            ),
            (RoleWrite::Delete, Some(org)) => (
                concat!(
                    "DELETE FROM roles WHERE org_id = $1 AND id = $2 AND permissions = $3 \
                     AND NOT EXISTS (SELECT 1 FROM service_accounts a \
                     WHERE a.org_id = $1 AND a.deleted_at IS NULL AND ",
                    holds_role!("$2"),
                    ") AND NOT EXISTS (SELECT 1 FROM console_members m WHERE m.org_id = $1 AND ",
                    member_holds_role!("$2"),
                    ")"
                ),
                vec![Param::Text(org), Param::Text(&r.id), Param::Text(read)],
            ),
            (RoleWrite::Delete, None) => (
                concat!(
                    "DELETE FROM global_roles WHERE id = $1 AND permissions = $2 \
                     AND NOT EXISTS (SELECT 1 FROM service_accounts a \
                     WHERE a.deleted_at IS NULL AND ",
                    holds_role!("$1"),
                    ") AND NOT EXISTS (SELECT 1 FROM console_members m WHERE ",
                    member_holds_role!("$1"),
                    ")"
                ),
                vec![Param::Text(&r.id), Param::Text(read)],
            ),
        };
        Ok(audited_write!(self, audit, guard, |tx| {
            // Role writes run one at a time on every replica (see above).
            sqlx::query("UPDATE write_locks SET name = name WHERE name = 'roles'")
                .execute(&mut *tx)
                .await?;
            let before = if judge {
                managed_orgs!(tx, &r.id, now)
            } else {
                BTreeSet::new()
            };
            // Seed 004's last-admin rule, for people: no role change may
            // leave an org that had a person able to manage it without one.
            let people = write == RoleWrite::Update;
            let people_before = if people {
                people_managing!(tx, org)
            } else {
                BTreeSet::new()
            };
            let res = bound!(sql, &params)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected());
            let changed = unique_or_conflict(res, || format!("role `{}` already exists", r.id))?;
            if judge {
                let after = managed_orgs!(tx, &r.id, now);
                if let Some(org) = before.difference(&after).next() {
                    return Err(DbError::Conflict(format!(
                        "refused: organization `{org}` would have no active service account \
                         holding `{ORG_MANAGE}`"
                    )));
                }
            }
            if people {
                let after = people_managing!(tx, org);
                if let Some(org) = people_before.difference(&after).next() {
                    return Err(DbError::Conflict(last_admin(org)));
                }
            }
            changed
        }))
    }
}

struct IdPerms(String, String);

impl Decode for IdPerms {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        Ok(Self(r.text(0)?, r.text(1)?))
    }
}
