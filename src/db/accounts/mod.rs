//! Service accounts: the stored row, and the reads and writes of the
//! management plane (the hot-path reads are in `hot.rs`).
mod row;

use super::role_names::check_roles_exist;
use super::rows::Param;
use super::write::{ChangeOutcome, OrgGuard, audited_write};
use super::{AuditEvent, Db, DbResult};
use crate::domain::account::{ServiceAccount, Status};
use crate::domain::credentials::PreviousSecret;
use crate::domain::ip::IpAllowlist;
pub(crate) use row::{ACCOUNT_COLUMNS, AccountRow, convert};

/// The column list, as a macro so queries stay `&'static str` literals.
macro_rules! columns {
    () => {
        "id, org_id, kind, name, description, client_id, secret_hash, credential_epoch, \
         integration, roles, allowed_ips, expires_at, status, created_at, created_by, last_used_at, deleted_at, \
         secret_prefix, secret_created_at, previous_secrets, version, last_used_ip, allowed_resources"
    };
}

pub(crate) use columns;

/// What an account read carries besides its own columns (`$t` names the
/// accounts table or its alias): its org's status and allowlist (`active`
/// and none for an account whose org row is missing), and the definitions
/// of the stored roles it holds, its org's custom ones and global ones, and
/// what a catalog added to the built-in ones it holds, as
/// `id=perm perm;id=perm` (`decode_stored_roles`). Read in the same query,
/// so the hot paths stay one round trip and a role edited through any
/// replica holds at the next request. Role ids are lowercase letters,
/// digits and `-`, so `LIKE` matches them exactly.
macro_rules! context_columns {
    ($t:literal) => {
        concat!(
            ", COALESCE((SELECT o.status FROM orgs o WHERE o.id = ",
            $t,
            ".org_id), 'active'), ",
            "COALESCE((SELECT o.allowed_ips FROM orgs o WHERE o.id = ",
            $t,
            ".org_id), ''), ",
            "COALESCE((SELECT string_agg(cr.id || '=' || cr.permissions, ';') FROM roles cr \
              WHERE cr.org_id = ",
            $t,
            ".org_id AND (' ' || ",
            $t,
            ".roles || ' ') LIKE ('% ' || cr.id || ' %')), '') || ';' || \
             COALESCE((SELECT string_agg(gr.id || '=' || gr.permissions, ';') FROM global_roles gr \
              WHERE (' ' || ",
            $t,
            ".roles || ' ') LIKE ('% ' || gr.id || ' %')), '') || ';' || \
             COALESCE((SELECT string_agg(ra.role || '=' || ra.permissions, ';') FROM role_additions ra \
              WHERE (' ' || ",
            $t,
            ".roles || ' ') LIKE ('% ' || ra.role || ' %')), '')"
        )
    };
}
pub(crate) use context_columns;

/// One change to an account (`Db::change_account`).
pub enum AccountChange<'a> {
    /// The editable fields, all written (computed from the version read).
    Fields {
        name: &'a str,
        description: &'a str,
        roles: &'a [String],
        allowed_ips: &'a IpAllowlist,
        expires_at: Option<i64>,
        allowed_resources: &'a [String],
    },
    Status(Status),
    Delete {
        at: i64,
    },
    /// The current secret and the rotated-out ones still in grace. A new
    /// epoch kills every refresh token issued before (reset). Whether the
    /// account's status allows it is the caller's rule, checked on the
    /// version the write is conditional on.
    Secrets {
        hash: &'a str,
        prefix: &'a str,
        created_at: Option<i64>,
        previous: &'a [PreviousSecret],
        new_epoch: bool,
    },
}

pub(super) fn encode_previous(p: &[PreviousSecret]) -> String {
    if p.is_empty() {
        String::new()
    } else {
        serde_json::to_string(p).unwrap_or_default()
    }
}

pub(super) fn split_permissions(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

impl AccountChange<'_> {
    /// The statement that applies this change, conditional on the version
    /// read (`$1` id, `$2` version, then the change's own values).
    fn sql(&self) -> &'static str {
        match self {
            Self::Fields { .. } => {
                "UPDATE service_accounts SET name = $3, description = $4, roles = $5, \
             allowed_ips = $6, expires_at = $7, allowed_resources = $8, version = version + 1 \
             WHERE id = $1 AND version = $2 AND deleted_at IS NULL"
            }
            Self::Status(_) => {
                "UPDATE service_accounts SET status = $3, version = version + 1 \
             WHERE id = $1 AND version = $2 AND deleted_at IS NULL"
            }
            Self::Delete { .. } => {
                "UPDATE service_accounts SET deleted_at = $3, version = version + 1 \
             WHERE id = $1 AND version = $2 AND deleted_at IS NULL"
            }
            Self::Secrets { .. } => {
                "UPDATE service_accounts SET secret_hash = $3, secret_prefix = $4, \
             secret_created_at = $5, previous_secrets = $6, \
             credential_epoch = credential_epoch + $7, version = version + 1 \
             WHERE id = $1 AND version = $2 AND deleted_at IS NULL AND kind = 'credential'"
            }
        }
    }
}

impl Db {
    /// The account behind a client id, tombstones included (the caller
    /// treats a deleted account like an unknown one).
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "account_by_client_id")
    )]
    pub async fn account_by_client_id(&self, client_id: &str) -> DbResult<Option<ServiceAccount>> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            context_columns!("service_accounts"),
            " FROM service_accounts WHERE client_id = $1"
        );
        let row: Option<AccountRow> = self.read_one(sql, &[Param::Text(client_id)]).await?;
        row.map(ServiceAccount::try_from).transpose()
    }

    /// By id or client id, optionally within one org.
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "find_account"))]
    pub async fn find_account(
        &self,
        org: Option<&str>,
        key: &str,
    ) -> DbResult<Option<ServiceAccount>> {
        // PostgreSQL refuses NUL in text; no id holds one anyway.
        if key.contains('\0') {
            return Ok(None);
        }
        let sql = concat!(
            "SELECT ",
            columns!(),
            context_columns!("service_accounts"),
            " FROM service_accounts WHERE (id = $1 OR client_id = $1) AND ($2 IS NULL OR org_id = $2)"
        );
        let row: Option<AccountRow> = self
            .read_one(sql, &[Param::Text(key), Param::OptText(org)])
            .await?;
        row.map(ServiceAccount::try_from).transpose()
    }

    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "list_accounts"))]
    pub async fn list_accounts(
        &self,
        org: Option<&str>,
        include_deleted: bool,
    ) -> DbResult<Vec<ServiceAccount>> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            context_columns!("service_accounts"),
            " FROM service_accounts WHERE ($1 IS NULL OR org_id = $1) \
             AND ($2 OR deleted_at IS NULL) ORDER BY org_id, created_at, id"
        );
        let rows: Vec<AccountRow> = self
            .read_all(sql, &[Param::OptText(org), Param::Bool(include_deleted)])
            .await?;
        convert(rows)
    }

    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "insert_account"))]
    pub async fn insert_account(
        &self,
        a: &ServiceAccount,
        audit: &AuditEvent,
        guard: Option<&OrgGuard<'_>>,
    ) -> DbResult<ChangeOutcome> {
        let sql = concat!(
            "INSERT INTO service_accounts (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21, $22, $23)"
        );
        Ok(audited_write!(self, audit, guard, |tx| {
            check_roles_exist!(tx, &a.org_id, "$1", a.roles)?;
            sqlx::query(sql)
                .bind(&a.id)
                .bind(&a.org_id)
                .bind(a.kind.as_str())
                .bind(&a.name)
                .bind(&a.description)
                .bind(&a.client_id)
                .bind(&a.secret_hash)
                .bind(a.credential_epoch)
                .bind(&a.integration)
                .bind(a.roles.join(" "))
                .bind(a.allowed_ips.to_stored())
                .bind(a.expires_at)
                .bind(a.status.as_str())
                .bind(a.created_at)
                .bind(&a.created_by)
                .bind(a.last_used_at)
                .bind(a.deleted_at)
                .bind(&a.secret_prefix)
                .bind(a.secret_created_at)
                .bind(encode_previous(&a.previous_secrets))
                .bind(a.version)
                .bind(&a.last_used_ip)
                .bind(a.allowed_resources.join(" "))
                .execute(&mut *tx)
                .await?
                .rows_affected()
        }))
    }

    /// Applies one change to a live account, with its audit record, in one
    /// transaction, if the account is still at `version` (what the caller
    /// read and checked its rules against); the version moves on.
    ///
    /// With a `guard`, the org's row is locked first (so guarded changes in
    /// one org run one at a time, on every replica), and the guard sees the
    /// org's usable accounts as they would be after the change; if it
    /// refuses, nothing is written.
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "change_account"))]
    pub async fn change_account(
        &self,
        id: &str,
        version: i64,
        change: &AccountChange<'_>,
        audit: &AuditEvent,
        guard: Option<&OrgGuard<'_>>,
    ) -> DbResult<ChangeOutcome> {
        let sql = change.sql();
        Ok(audited_write!(self, audit, guard, |tx| {
            if let AccountChange::Fields { roles, .. } = change {
                check_roles_exist!(
                    tx,
                    id,
                    "(SELECT org_id FROM service_accounts WHERE id = $1)",
                    roles
                )?;
            }
            let q = sqlx::query(sql).bind(id).bind(version);
            let q = match change {
                AccountChange::Fields {
                    name,
                    description,
                    roles,
                    allowed_ips,
                    expires_at,
                    allowed_resources,
                } => q
                    .bind(*name)
                    .bind(*description)
                    .bind(roles.join(" "))
                    .bind(allowed_ips.to_stored())
                    .bind(*expires_at)
                    .bind(allowed_resources.join(" ")),
                AccountChange::Status(s) => q.bind(s.as_str()),
                AccountChange::Delete { at } => q.bind(*at),
                AccountChange::Secrets {
                    hash,
                    prefix,
                    created_at,
                    previous,
                    new_epoch,
                } => q
                    .bind(*hash)
                    .bind(*prefix)
                    .bind(*created_at)
                    .bind(encode_previous(previous))
                    .bind(i64::from(*new_epoch)),
            };
            q.execute(&mut *tx).await?.rows_affected()
        }))
    }
}

/// Filters and page of the admin API's account list.
#[derive(Debug, Default)]
pub struct AccountQuery {
    pub org: String,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub include_deleted: bool,
    /// Name contains, or client id starts with, this text.
    pub search: Option<String>,
    /// Return ids strictly after this one (ids are time-ordered UUIDv7).
    pub after: Option<String>,
    pub limit: i64,
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

impl Db {
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "query_accounts"))]
    pub async fn query_accounts(&self, q: &AccountQuery) -> DbResult<Vec<ServiceAccount>> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            context_columns!("service_accounts"),
            " FROM service_accounts WHERE org_id = $1 AND ($2 IS NULL OR kind = $2) \
             AND ($3 IS NULL OR status = $3) AND ($4 OR deleted_at IS NULL) \
             AND ($5 IS NULL OR lower(name) LIKE $5 ESCAPE '\\' OR client_id LIKE $6 ESCAPE '\\') \
             AND ($7 IS NULL OR id > $7) ORDER BY id LIMIT $8"
        );
        let (contains, prefix) = match &q.search {
            Some(s) => (
                Some(format!("%{}%", like_escape(&s.to_lowercase()))),
                Some(format!("{}%", like_escape(s))),
            ),
            None => (None, None),
        };
        let params = [
            Param::Text(&q.org),
            Param::OptText(q.kind.as_deref()),
            Param::OptText(q.status.as_deref()),
            Param::Bool(q.include_deleted),
            Param::OptText(contains.as_deref()),
            Param::OptText(prefix.as_deref()),
            Param::OptText(q.after.as_deref()),
            Param::Int(q.limit),
        ];
        let rows: Vec<AccountRow> = self.read_all(sql, &params).await?;
        convert(rows)
    }
}
