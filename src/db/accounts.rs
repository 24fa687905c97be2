//! Service accounts and custom roles.
use rusqlite::OptionalExtension;

use super::write::{ChangeOutcome, OrgGuard, audited_write};
use super::{AuditEvent, Db, DbError, DbResult, on_db};
use crate::domain::account::{AccountKind, PreviousSecret, ServiceAccount, Status};
use crate::domain::ip::IpAllowlist;

/// The column list, as a macro so queries stay `&'static str` literals.
macro_rules! columns {
    () => {
        "id, org_id, kind, name, description, client_id, secret_hash, credential_epoch, \
         integration, roles, allowed_ips, expires_at, status, created_at, created_by, last_used_at, deleted_at, \
         secret_prefix, secret_created_at, previous_secrets, version, last_used_ip"
    };
}

pub(crate) use columns;

/// What `introspection_context` found.
pub struct IntrospectionContext {
    pub resource_server: crate::domain::resource_server::ResourceServer,
    /// The account behind the token, and whether the token is revoked.
    pub account: Option<(ServiceAccount, bool)>,
}

/// One change to an account (`Db::change_account`).
pub enum AccountChange<'a> {
    /// The editable fields, all written (computed from the version read).
    Fields {
        name: &'a str,
        description: &'a str,
        roles: &'a [String],
        allowed_ips: &'a IpAllowlist,
        expires_at: Option<i64>,
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

#[derive(sqlx::FromRow)]
pub(super) struct AccountRow {
    id: String,
    org_id: String,
    kind: String,
    name: String,
    description: String,
    client_id: Option<String>,
    secret_hash: Option<String>,
    credential_epoch: i64,
    integration: Option<String>,
    roles: String,
    allowed_ips: String,
    expires_at: Option<i64>,
    status: String,
    created_at: i64,
    created_by: String,
    last_used_at: Option<i64>,
    deleted_at: Option<i64>,
    secret_prefix: Option<String>,
    secret_created_at: Option<i64>,
    previous_secrets: String,
    version: i64,
    last_used_ip: Option<String>,
}

/// The number of columns in `columns!()`.
const ACCOUNT_COLUMNS: usize = 22;

impl AccountRow {
    /// Decodes `columns!()` starting at column `at` of a row read by the
    /// inline SQLite reader (the pools decode by name through `FromRow`).
    fn from_inline(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(at)?,
            org_id: r.get(at + 1)?,
            kind: r.get(at + 2)?,
            name: r.get(at + 3)?,
            description: r.get(at + 4)?,
            client_id: r.get(at + 5)?,
            secret_hash: r.get(at + 6)?,
            credential_epoch: r.get(at + 7)?,
            integration: r.get(at + 8)?,
            roles: r.get(at + 9)?,
            allowed_ips: r.get(at + 10)?,
            expires_at: r.get(at + 11)?,
            status: r.get(at + 12)?,
            created_at: r.get(at + 13)?,
            created_by: r.get(at + 14)?,
            last_used_at: r.get(at + 15)?,
            deleted_at: r.get(at + 16)?,
            secret_prefix: r.get(at + 17)?,
            secret_created_at: r.get(at + 18)?,
            previous_secrets: r.get(at + 19)?,
            version: r.get(at + 20)?,
            last_used_ip: r.get(at + 21)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ProbedRow {
    #[sqlx(flatten)]
    account: AccountRow,
    audience_known: i64,
}

/// A resource server, the account behind a token and the token's
/// revocation, from one query (introspection's hot path).
#[derive(sqlx::FromRow)]
struct IntrospectionRow {
    rs_id: String,
    rs_name: String,
    rs_audience: String,
    rs_client_id: String,
    rs_secret_hash: String,
    rs_status: String,
    rs_created_at: i64,
    rs_created_by: String,
    rs_deleted_at: Option<i64>,
    rs_secret_prefix: Option<String>,
    rs_previous_secrets: String,
    has_account: i64,
    #[sqlx(flatten)]
    account: AccountRow,
    revoked: i64,
}

#[derive(sqlx::FromRow)]
struct RevocableRow {
    #[sqlx(flatten)]
    account: AccountRow,
    revoked: i64,
}

impl TryFrom<AccountRow> for ServiceAccount {
    type Error = DbError;
    fn try_from(r: AccountRow) -> DbResult<Self> {
        let corrupt = |what: &str| {
            DbError::Sqlx(sqlx::Error::Decode(
                format!("service_accounts.{what}").into(),
            ))
        };
        Ok(Self {
            kind: AccountKind::parse(&r.kind).ok_or_else(|| corrupt("kind"))?,
            status: Status::parse(&r.status).ok_or_else(|| corrupt("status"))?,
            roles: r
                .roles
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            allowed_ips: IpAllowlist::parse_stored(&r.allowed_ips),
            previous_secrets: if r.previous_secrets.is_empty() {
                Vec::new()
            } else {
                serde_json::from_str(&r.previous_secrets)
                    .map_err(|_| corrupt("previous_secrets"))?
            },
            version: r.version,
            last_used_ip: r.last_used_ip,
            secret_prefix: r.secret_prefix,
            secret_created_at: r.secret_created_at,
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            description: r.description,
            client_id: r.client_id,
            secret_hash: r.secret_hash,
            credential_epoch: r.credential_epoch,
            integration: r.integration,
            expires_at: r.expires_at,
            created_at: r.created_at,
            created_by: r.created_by,
            last_used_at: r.last_used_at,
            deleted_at: r.deleted_at,
        })
    }
}

pub(super) fn convert(rows: Vec<AccountRow>) -> DbResult<Vec<ServiceAccount>> {
    rows.into_iter().map(ServiceAccount::try_from).collect()
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
            " FROM service_accounts WHERE client_id = $1"
        );
        let row: Option<AccountRow> =
            on_db!(self, p => sqlx::query_as(sql).bind(client_id).fetch_optional(p).await?);
        row.map(ServiceAccount::try_from).transpose()
    }

    /// For introspection, in one round trip: the calling resource server
    /// (by its client id), and the account behind the token's client id with
    /// whether the token's `jti` is revoked. `None` when no such resource
    /// server exists; the account part is `None` when no account matches.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "introspection_context")
    )]
    pub async fn introspection_context(
        &self,
        rs_client_id: &str,
        account_client_id: &str,
        jti: &str,
    ) -> DbResult<Option<IntrospectionContext>> {
        // A LEFT JOIN yields NULLs without an account; NOT NULL columns are
        // coalesced so the row decodes, and `has_account` says which it is.
        let sql = "SELECT rs.id AS rs_id, rs.name AS rs_name, rs.audience AS rs_audience, \
             rs.client_id AS rs_client_id, rs.secret_hash AS rs_secret_hash, rs.status AS rs_status, \
             rs.created_at AS rs_created_at, rs.created_by AS rs_created_by, rs.deleted_at AS rs_deleted_at, \
             rs.secret_prefix AS rs_secret_prefix, rs.previous_secrets AS rs_previous_secrets, \
             CAST(CASE WHEN a.id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_account, \
             COALESCE(a.id, '') AS id, COALESCE(a.org_id, '') AS org_id, COALESCE(a.kind, '') AS kind, \
             COALESCE(a.name, '') AS name, COALESCE(a.description, '') AS description, a.client_id, \
             a.secret_hash, COALESCE(a.credential_epoch, 0) AS credential_epoch, a.integration, \
             COALESCE(a.roles, '') AS roles, COALESCE(a.allowed_ips, '') AS allowed_ips, a.expires_at, \
             COALESCE(a.status, '') AS status, COALESCE(a.created_at, 0) AS created_at, \
             COALESCE(a.created_by, '') AS created_by, a.last_used_at, a.deleted_at, a.secret_prefix, \
             a.secret_created_at, COALESCE(a.previous_secrets, '') AS previous_secrets, \
             COALESCE(a.version, 0) AS version, a.last_used_ip, \
             (SELECT COUNT(*) FROM revoked_access_tokens WHERE jti = $3) AS revoked \
             FROM resource_servers rs LEFT JOIN service_accounts a ON a.client_id = $2 \
             WHERE rs.client_id = $1";
        let inline = self.read_inline(|c| {
            c.prepare_cached(sql)?
                .query_row(
                    rusqlite::named_params! {"$1": rs_client_id, "$2": account_client_id, "$3": jti},
                    |r| {
                        Ok(IntrospectionRow {
                            rs_id: r.get(0)?,
                            rs_name: r.get(1)?,
                            rs_audience: r.get(2)?,
                            rs_client_id: r.get(3)?,
                            rs_secret_hash: r.get(4)?,
                            rs_status: r.get(5)?,
                            rs_created_at: r.get(6)?,
                            rs_created_by: r.get(7)?,
                            rs_deleted_at: r.get(8)?,
                            rs_secret_prefix: r.get(9)?,
                            rs_previous_secrets: r.get(10)?,
                            has_account: r.get(11)?,
                            account: AccountRow::from_inline(r, 12)?,
                            revoked: r.get(12 + ACCOUNT_COLUMNS)?,
                        })
                    },
                )
                .optional()
        });
        let row: Option<IntrospectionRow> = match inline {
            Some(row) => row,
            None => on_db!(self, p => sqlx::query_as(sql)
                .bind(rs_client_id)
                .bind(account_client_id)
                .bind(jti)
                .fetch_optional(p)
                .await?),
        };
        let Some(r) = row else { return Ok(None) };
        let rs = crate::domain::resource_server::ResourceServer::try_from(
            super::resource_servers::RsRow {
                id: r.rs_id,
                name: r.rs_name,
                audience: r.rs_audience,
                client_id: r.rs_client_id,
                secret_hash: r.rs_secret_hash,
                status: r.rs_status,
                created_at: r.rs_created_at,
                created_by: r.rs_created_by,
                deleted_at: r.rs_deleted_at,
                secret_prefix: r.rs_secret_prefix,
                previous_secrets: r.rs_previous_secrets,
            },
        )?;
        let account = if r.has_account > 0 {
            Some((ServiceAccount::try_from(r.account)?, r.revoked > 0))
        } else {
            None
        };
        Ok(Some(IntrospectionContext {
            resource_server: rs,
            account,
        }))
    }

    /// The account behind a client id and whether `audience` is a live
    /// resource server's: the token endpoint's one round trip.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "account_for_token")
    )]
    pub async fn account_for_token(
        &self,
        client_id: &str,
        audience: Option<&str>,
    ) -> DbResult<Option<(ServiceAccount, bool)>> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            ", (SELECT COUNT(*) FROM resource_servers WHERE audience = $2 \
               AND status = 'active' AND deleted_at IS NULL) AS audience_known \
             FROM service_accounts WHERE client_id = $1"
        );
        let inline = self.read_inline(|c| {
            c.prepare_cached(sql)?
                .query_row(
                    rusqlite::named_params! {"$1": client_id, "$2": audience},
                    |r| {
                        Ok(ProbedRow {
                            account: AccountRow::from_inline(r, 0)?,
                            audience_known: r.get(ACCOUNT_COLUMNS)?,
                        })
                    },
                )
                .optional()
        });
        let row: Option<ProbedRow> = match inline {
            Some(row) => row,
            None => {
                on_db!(self, p => sqlx::query_as(sql).bind(client_id).bind(audience).fetch_optional(p).await?)
            }
        };
        match row {
            Some(r) => Ok(Some((
                ServiceAccount::try_from(r.account)?,
                r.audience_known > 0,
            ))),
            None => Ok(None),
        }
    }

    /// The account behind an access token and whether the token's `jti`
    /// is revoked: one round trip, as introspection runs it on every call.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "account_with_revocation")
    )]
    pub async fn account_with_revocation(
        &self,
        client_id: &str,
        jti: &str,
    ) -> DbResult<Option<(ServiceAccount, bool)>> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            ", (SELECT COUNT(*) FROM revoked_access_tokens WHERE jti = $2) AS revoked \
             FROM service_accounts WHERE client_id = $1"
        );
        let row: Option<RevocableRow> = on_db!(self, p => sqlx::query_as(sql).bind(client_id).bind(jti).fetch_optional(p).await?);
        match row {
            Some(r) => Ok(Some((ServiceAccount::try_from(r.account)?, r.revoked > 0))),
            None => Ok(None),
        }
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
            " FROM service_accounts WHERE (id = $1 OR client_id = $1) AND ($2 IS NULL OR org_id = $2)"
        );
        let row: Option<AccountRow> =
            on_db!(self, p => sqlx::query_as(sql).bind(key).bind(org).fetch_optional(p).await?);
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
            " FROM service_accounts WHERE ($1 IS NULL OR org_id = $1) \
             AND ($2 OR deleted_at IS NULL) ORDER BY org_id, created_at, id"
        );
        let rows: Vec<AccountRow> = on_db!(self, p => sqlx::query_as(sql).bind(org).bind(include_deleted).fetch_all(p).await?);
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
             $18, $19, $20, $21, $22)"
        );
        Ok(audited_write!(self, audit, guard, |tx| sqlx::query(sql)
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
            .execute(&mut *tx)
            .await?
            .rows_affected()))
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
        let sql = match change {
            AccountChange::Fields { .. } => {
                "UPDATE service_accounts SET name = $3, description = $4, roles = $5, \
                 allowed_ips = $6, expires_at = $7, version = version + 1 \
                 WHERE id = $1 AND version = $2 AND deleted_at IS NULL"
            }
            AccountChange::Status(_) => {
                "UPDATE service_accounts SET status = $3, version = version + 1 \
                 WHERE id = $1 AND version = $2 AND deleted_at IS NULL"
            }
            AccountChange::Delete { .. } => {
                "UPDATE service_accounts SET deleted_at = $3, version = version + 1 \
                 WHERE id = $1 AND version = $2 AND deleted_at IS NULL"
            }
            AccountChange::Secrets { .. } => {
                "UPDATE service_accounts SET secret_hash = $3, secret_prefix = $4, \
                 secret_created_at = $5, previous_secrets = $6, \
                 credential_epoch = credential_epoch + $7, version = version + 1 \
                 WHERE id = $1 AND version = $2 AND deleted_at IS NULL AND kind = 'credential'"
            }
        };
        Ok(audited_write!(self, audit, guard, |tx| {
            let q = sqlx::query(sql).bind(id).bind(version);
            let q = match change {
                AccountChange::Fields {
                    name,
                    description,
                    roles,
                    allowed_ips,
                    expires_at,
                } => q
                    .bind(*name)
                    .bind(*description)
                    .bind(roles.join(" "))
                    .bind(allowed_ips.to_stored())
                    .bind(*expires_at),
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
        let rows: Vec<AccountRow> = on_db!(self, p => sqlx::query_as(sql)
            .bind(&q.org)
            .bind(&q.kind)
            .bind(&q.status)
            .bind(q.include_deleted)
            .bind(&contains)
            .bind(&prefix)
            .bind(&q.after)
            .bind(q.limit)
            .fetch_all(p)
            .await?);
        convert(rows)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::db::audit::{OPERATOR_ID, OPERATOR_TYPE};

    use crate::db::{AuditEvent, Db};
    use crate::domain::account::AccountKind;
    use crate::manage::Actor;
    use crate::manage::accounts::NewAccount;

    /// The inline SQLite reader and the sqlx pool decode the hot-path rows
    /// identically (every column, NULLs included), and a broken inline
    /// reader falls back to the pool with the same answers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inline_reads_match_the_pool() {
        let (_dir, db) = Db::temp_sqlite().await;
        let ev = AuditEvent::new(OPERATOR_TYPE, OPERATOR_ID, "org.created", 1)
            .in_org("acme")
            .on("org", "acme");
        db.create_org("acme", "Acme", 1, &ev).await.unwrap();
        let actor = Actor::operator();
        let (rs, _) = crate::manage::resource_servers::create(
            &db,
            "api",
            "https://api.test",
            "https://warden.test",
            &actor,
            2,
        )
        .await
        .unwrap();
        let new = |name: &str, ips: Vec<String>, expires: Option<&str>| NewAccount {
            org: "acme".into(),
            kind: AccountKind::Credential,
            name: name.into(),
            description: "d".into(),
            integration: None,
            roles: vec!["viewer".into(), "risk-editor".into()],
            allowed_ips: ips,
            expires_in: expires.map(Into::into),
            expires_at: None,
        };
        let (plain, _) =
            crate::manage::accounts::create(&db, new("plain", vec![], None), &actor, 3)
                .await
                .unwrap();
        let (fenced, _) = crate::manage::accounts::create(
            &db,
            new(
                "fenced",
                vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
                Some("30d"),
            ),
            &actor,
            4,
        )
        .await
        .unwrap();
        let at_5 = crate::manage::Scope {
            db: &db,
            org: None,
            actor: &actor,
            now: 5,
        };
        crate::manage::accounts::rotate_secret(&at_5, &fenced.id, 3600)
            .await
            .unwrap();
        let ev = AuditEvent::new(OPERATOR_TYPE, OPERATOR_ID, "token.revoked", 6)
            .in_org("acme")
            .on("token", "jti-1");
        db.revoke_access_token("jti-1", fenced.client_id.as_deref().unwrap(), 9_999, 6, &ev)
            .await
            .unwrap();

        let pool = db.without_inline();
        let broken = db.with_broken_inline();
        for a in [&plain, &fenced] {
            let id = a.client_id.as_deref().unwrap();
            for aud in [Some("https://api.test"), Some("https://other.test"), None] {
                let want = format!("{:?}", pool.account_for_token(id, aud).await.unwrap());
                assert!(want.starts_with("Some"), "{want}");
                assert_eq!(
                    format!("{:?}", db.account_for_token(id, aud).await.unwrap()),
                    want
                );
                assert_eq!(
                    format!("{:?}", broken.account_for_token(id, aud).await.unwrap()),
                    want
                );
            }
            for (acct, jti) in [(id, "jti-1"), (id, "jti-2"), ("arm_sa_missing", "jti-1")] {
                let ctx = |c: Option<super::IntrospectionContext>| {
                    c.map(|c| format!("{:?} {:?}", c.resource_server, c.account))
                };
                let want = ctx(pool
                    .introspection_context(&rs.client_id, acct, jti)
                    .await
                    .unwrap());
                assert!(want.is_some());
                let got = ctx(db
                    .introspection_context(&rs.client_id, acct, jti)
                    .await
                    .unwrap());
                assert_eq!(got, want);
                let got = ctx(broken
                    .introspection_context(&rs.client_id, acct, jti)
                    .await
                    .unwrap());
                assert_eq!(got, want);
            }
        }
        // Refresh-token families: the revocation check reads inline.
        for (d, fam) in [(&db, "fam-a"), (&broken, "fam-b")] {
            use crate::db::refresh::{Spend, SpendRequest};
            let spend = |jti: &'static str| SpendRequest {
                jti,
                family: fam,
                account_id: &plain.id,
                expires_at: 9_999,
                now: 7,
            };
            let ev = AuditEvent::new(OPERATOR_TYPE, OPERATOR_ID, "refresh.reused", 7)
                .in_org("acme")
                .on("family", fam);
            let jti1 = if fam == "fam-a" { "a1" } else { "b1" };
            let jti2 = if fam == "fam-a" { "a2" } else { "b2" };
            assert_eq!(
                d.spend_refresh_token(&spend(jti1), &ev).await.unwrap(),
                Spend::Won
            );
            assert_eq!(
                d.spend_refresh_token(&spend(jti1), &ev).await.unwrap(),
                Spend::Reused
            );
            assert_eq!(
                d.spend_refresh_token(&spend(jti2), &ev).await.unwrap(),
                Spend::FamilyRevoked
            );
        }
        // The inline reads really ran inline, every one of them, and the
        // broken ones did not.
        let idle = |d: &Db| match d {
            Db::Sqlite(p) => p.inline.as_ref().map(|r| r.idle()),
            Db::Postgres(_) => None,
        };
        let failures = |d: &Db| match d {
            Db::Sqlite(p) => p.inline.as_ref().map(|r| r.failures()),
            Db::Postgres(_) => None,
        };
        assert_eq!(idle(&db), Some(1));
        assert_eq!(
            failures(&db),
            Some(0),
            "an inline read fell back to the pool"
        );
        assert_eq!(idle(&broken), Some(0));
        // 6 token reads, 6 introspection reads, 3 family checks.
        assert_eq!(failures(&broken), Some(15));
        assert!(
            db.account_for_token("arm_sa_missing", None)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            db.introspection_context("arm_sa_nobody", "x", "y")
                .await
                .unwrap()
                .is_none()
        );
    }
}
