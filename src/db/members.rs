//! The people of an org, those who sign in to the console
//! (`console_members`), and seed 004's last-admin rule over them: no change
//! to a person or to a stored role may leave an org that had a person able
//! to manage it without one.
use std::collections::{BTreeSet, HashMap};

use super::rows::{Cols, Count, Decode, Param};
use super::write::{ChangeOutcome, OrgGuard, guard_before, guard_refusal, insert_audits};
use super::{AuditEvent, Db, DbResult, on_db_write};
use crate::domain::console::{LAST_ADMIN, manages};

/// A person of an org, as stored.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Member {
    pub subject: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    #[serde(skip)]
    pub created_at: i64,
    #[serde(skip)]
    pub last_seen_at: Option<i64>,
}

impl Decode for Member {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        Ok(Self {
            subject: r.text(0)?,
            email: r.opt_text(1)?,
            roles: split(&r.text(2)?),
            created_at: r.int(3)?,
            last_seen_at: r.opt_int(4)?,
        })
    }
}

/// The person a change is to, and what the caller's checks read of them.
pub struct MemberTarget<'a> {
    pub org: &'a str,
    pub subject: &'a str,
    pub read: &'a [String],
    pub read_permissions: &'a BTreeSet<String>,
}

/// What seed 004's last-admin rule reads: a person's org and roles, or a
/// stored role's org (`None`: global), id and permissions.
pub(super) struct Held {
    org: Option<String>,
    id: String,
    list: String,
}

impl Decode for Held {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        Ok(Self {
            org: r.opt_text(0)?,
            id: r.text(1)?,
            list: r.text(2)?,
        })
    }
}

/// The orgs where some person holds `org:manage`, through built-in roles,
/// global ones or their org's own.
pub(super) fn managing_orgs(people: &[Held], roles: &[Held]) -> BTreeSet<String> {
    people
        .iter()
        .filter(|p| {
            let held = split(&p.list);
            let custom: HashMap<String, Vec<String>> = roles
                .iter()
                .filter(|r| (r.org.is_none() || r.org == p.org) && held.contains(&r.id))
                .map(|r| (r.id.clone(), split(&r.list)))
                .collect();
            manages(&held, &custom)
        })
        .filter_map(|p| p.org.clone())
        .collect()
}

/// The orgs (`$org`, or every org with `None`) where some person of the
/// console manages the org, as the transaction `$tx` sees people and roles
/// now. Every change to a person or to a stored role compares this before
/// and after, under the roles lock (`write_locks`), so no two changes at
/// once can together leave an org that had such a person without one.
macro_rules! people_managing {
    ($tx:expr, $org:expr) => {{
        let org: Option<&str> = $org;
        let people = $crate::db::rows::bound!(
            "SELECT org_id, subject, roles FROM console_members WHERE ($1 IS NULL OR org_id = $1)",
            &[$crate::db::rows::Param::OptText(org)]
        )
        .fetch_all(&mut *$tx)
        .await?
        .iter()
        .map(<$crate::db::members::Held as $crate::db::rows::Decode>::decode)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let roles = $crate::db::rows::bound!(
            "SELECT org_id, id, permissions FROM roles WHERE ($1 IS NULL OR org_id = $1) \
             UNION ALL SELECT CAST(NULL AS TEXT), id, permissions FROM global_roles",
            &[$crate::db::rows::Param::OptText(org)]
        )
        .fetch_all(&mut *$tx)
        .await?
        .iter()
        .map(<$crate::db::members::Held as $crate::db::rows::Decode>::decode)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        $crate::db::members::managing_orgs(&people, &roles)
    }};
}
pub(super) use people_managing;

/// Opens a change to an org's people inside `$tx`: takes the org's row and
/// then the roles lock (the order every write takes them in), and checks
/// that the roles to be set, if any, still exist, returning the refusal
/// from the enclosing function (rolled back) when one does not.
macro_rules! lock_people {
    ($tx:expr, $org:expr, $roles:expr) => {{
        sqlx::query("UPDATE orgs SET name = name WHERE id = $1")
            .bind($org)
            .execute(&mut *$tx)
            .await?;
        sqlx::query("UPDATE write_locks SET name = name WHERE name = 'roles'")
            .execute(&mut *$tx)
            .await?;
        if let Some(r) = $roles {
            // A role deleted while this request was in flight.
            if let Err(e) = $crate::db::role_names::check_roles_exist!($tx, $org, "$1", r) {
                $tx.rollback().await?;
                return Err(e);
            }
        }
    }};
}
pub(super) use lock_people;

/// What `$roles` (a person's, in `$org`) grant as the transaction `$tx`
/// sees the stored roles now: built-in ones, global ones, the org's own.
macro_rules! role_permissions_in {
    ($tx:expr, $org:expr, $roles:expr) => {{
        let roles: &[String] = $roles;
        let defs: std::collections::HashMap<String, Vec<String>> =
            sqlx::query_as::<_, (String, String)>(
                "SELECT id, permissions FROM roles WHERE org_id = $1 \
                 UNION ALL SELECT id, permissions FROM global_roles \
                 UNION ALL SELECT role, permissions FROM role_additions",
            )
            .bind($org)
            .fetch_all(&mut *$tx)
            .await?
            .into_iter()
            .filter(|(id, _)| roles.contains(id))
            .map(|(id, p)| (id, $crate::db::accounts::split_permissions(&p)))
            .collect();
        $crate::domain::roles::permissions_of(roles, &defs)
    }};
}
pub(super) use role_permissions_in;

/// The last-admin rule's refusal of a change leaving `org` without a
/// person able to manage it.
pub(super) fn last_admin(org: &str) -> String {
    format!("{LAST_ADMIN} (organization `{org}` would have no person holding `org:manage`)")
}

pub(super) fn split(roles: &str) -> Vec<String> {
    roles
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Does the person row `m` hold the role named by parameter `$p`? (Role
/// ids are lowercase letters, digits and `-`, so `LIKE` matches exactly.)
macro_rules! member_holds_role {
    ($p:literal) => {
        concat!("(' ' || m.roles || ' ') LIKE ('% ' || ", $p, " || ' %')")
    };
}
pub(super) use member_holds_role;

impl Db {
    /// An org's people, by subject.
    pub async fn list_members(&self, org: &str) -> DbResult<Vec<Member>> {
        self.read_all(
            "SELECT subject, email, roles, created_at, last_seen_at FROM console_members \
             WHERE org_id = $1 ORDER BY subject",
            &[Param::Text(org)],
        )
        .await
    }

    /// Sets a member's roles (`Some`) or removes the member and their
    /// sessions (`None`), with the audit event, inside one transaction
    /// that first takes the org row and the roles lock (the order every
    /// write takes them in):
    ///
    /// - `Stale` unless the member still holds `read` (the roles the
    ///   caller's checks judged) granting exactly `read_permissions`: a
    ///   target who became stronger meanwhile is judged again, and the
    ///   audit's `from` is what is replaced;
    /// - `Refused` by the caller's guard (`OrgGuard`: the caller may still
    ///   write), or when the org had a person able to manage it and would
    ///   have none (seed 004's last-admin rule), so neither two changes to
    ///   people nor a change to a role at the same time can both pass.
    ///
    /// `Ok(None)`: no such member.
    pub async fn change_member(
        &self,
        target: MemberTarget<'_>,
        roles: Option<&[String]>,
        audit: &AuditEvent,
        guard: Option<&OrgGuard<'_>>,
    ) -> DbResult<Option<ChangeOutcome>> {
        let MemberTarget {
            org,
            subject,
            read,
            read_permissions,
        } = target;
        let joined = roles.map(|r| r.join(" "));
        Ok(on_db_write!(self, p => {
            let mut tx = p.begin().await?;
            lock_people!(tx, org, roles);
            let before = match guard {
                Some(g) => Some(guard_before!(tx, g)),
                None => None,
            };
            let now: Option<(String,)> = sqlx::query_as(
                "SELECT roles FROM console_members WHERE org_id = $1 AND subject = $2",
            )
            .bind(org)
            .bind(subject)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((held,)) = now else {
                tx.rollback().await?;
                return Ok(None);
            };
            let held = split(&held);
            if held != read || role_permissions_in!(tx, org, &held) != *read_permissions {
                tx.rollback().await?;
                return Ok(Some(ChangeOutcome::Stale));
            }
            let had = people_managing!(tx, Some(org)).contains(org);
            let n = match &joined {
                Some(r) => sqlx::query(
                    "UPDATE console_members SET roles = $3 WHERE org_id = $1 AND subject = $2",
                )
                .bind(org)
                .bind(subject)
                .bind(r)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                None => {
                    sqlx::query("DELETE FROM console_sessions WHERE org_id = $1 AND subject = $2")
                        .bind(org)
                        .bind(subject)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM console_members WHERE org_id = $1 AND subject = $2")
                        .bind(org)
                        .bind(subject)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                }
            };
            if n != 1 {
                tx.rollback().await?;
                None
            } else if had && !people_managing!(tx, Some(org)).contains(org) {
                tx.rollback().await?;
                Some(ChangeOutcome::Refused(LAST_ADMIN.to_owned()))
            } else if let Some(why) = guard_refusal!(tx, guard, before) {
                tx.rollback().await?;
                Some(ChangeOutcome::Refused(why))
            } else {
                insert_audits!(&mut *tx, std::slice::from_ref(audit))?;
                tx.commit().await?;
                Some(ChangeOutcome::Done)
            }
        }))
    }

    /// How many people (in `org`, or in any org with `None`) hold the role
    /// `id`.
    pub async fn role_holder_people(&self, org: Option<&str>, id: &str) -> DbResult<i64> {
        let sql = concat!(
            "SELECT COUNT(*) FROM console_members m WHERE ($1 IS NULL OR m.org_id = $1) AND ",
            member_holds_role!("$2")
        );
        let n: Option<Count> = self
            .read_one(sql, &[Param::OptText(org), Param::Text(id)])
            .await?;
        Ok(n.map_or(0, |c| c.0))
    }
}
