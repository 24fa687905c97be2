//! Service accounts and custom roles.
use std::collections::HashMap;

use super::{AuditEvent, Db, DbError, DbResult, audit::insert_audit, on_db};
use crate::domain::account::{AccountKind, ServiceAccount, Status};
use crate::domain::ip::IpAllowlist;

/// The column list, as a macro so queries stay `&'static str` literals.
macro_rules! columns {
    () => {
        "id, org_id, kind, name, description, client_id, secret_hash, credential_epoch, \
         integration, roles, allowed_ips, expires_at, status, created_at, created_by, last_used_at, deleted_at"
    };
}

#[derive(sqlx::FromRow)]
struct AccountRow {
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
}

impl TryFrom<AccountRow> for ServiceAccount {
    type Error = DbError;
    fn try_from(r: AccountRow) -> DbResult<Self> {
        let corrupt = |what: &str| DbError::Sqlx(sqlx::Error::Decode(format!("service_accounts.{what}").into()));
        Ok(Self {
            kind: AccountKind::parse(&r.kind).ok_or_else(|| corrupt("kind"))?,
            status: Status::parse(&r.status).ok_or_else(|| corrupt("status"))?,
            roles: r.roles.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            allowed_ips: IpAllowlist::parse_stored(&r.allowed_ips),
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

fn convert(rows: Vec<AccountRow>) -> DbResult<Vec<ServiceAccount>> {
    rows.into_iter().map(ServiceAccount::try_from).collect()
}

impl Db {
    /// The account behind a client id, tombstones included (the caller
    /// treats a deleted account like an unknown one).
    pub async fn account_by_client_id(&self, client_id: &str) -> DbResult<Option<ServiceAccount>> {
        let sql = concat!("SELECT ", columns!(), " FROM service_accounts WHERE client_id = $1");
        let row: Option<AccountRow> =
            on_db!(self, p => sqlx::query_as(sql).bind(client_id).fetch_optional(p).await?);
        row.map(ServiceAccount::try_from).transpose()
    }

    /// By id or client id, optionally within one org.
    pub async fn find_account(&self, org: Option<&str>, key: &str) -> DbResult<Option<ServiceAccount>> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM service_accounts WHERE (id = $1 OR client_id = $1) AND ($2 IS NULL OR org_id = $2)"
        );
        let row: Option<AccountRow> =
            on_db!(self, p => sqlx::query_as(sql).bind(key).bind(org).fetch_optional(p).await?);
        row.map(ServiceAccount::try_from).transpose()
    }

    pub async fn list_accounts(&self, org: Option<&str>, include_deleted: bool) -> DbResult<Vec<ServiceAccount>> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM service_accounts WHERE ($1 IS NULL OR org_id = $1) \
             AND ($2 OR deleted_at IS NULL) ORDER BY org_id, created_at, id"
        );
        let rows: Vec<AccountRow> =
            on_db!(self, p => sqlx::query_as(sql).bind(org).bind(include_deleted).fetch_all(p).await?);
        convert(rows)
    }

    pub async fn insert_account(&self, a: &ServiceAccount, audit: &AuditEvent) -> DbResult<()> {
        let sql = concat!(
            "INSERT INTO service_accounts (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        );
        on_db!(self, p => {
            let mut tx = p.begin().await?;
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
                .execute(&mut *tx)
                .await?;
            insert_audit!(&mut *tx, audit)?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Sets the status of a live account. `Ok(false)` when there is no such
    /// live account.
    pub async fn set_account_status(&self, id: &str, status: Status, audit: &AuditEvent) -> DbResult<bool> {
        let sql = "UPDATE service_accounts SET status = $2 WHERE id = $1 AND deleted_at IS NULL";
        self.update_with_audit(sql, id, status.as_str().to_owned(), audit).await
    }

    /// Replaces the secret hash and moves the credential epoch on, killing
    /// refresh tokens issued before. Only for an active, live credential
    /// account; `Ok(false)` otherwise (the caller re-reads to say why).
    pub async fn reset_account_secret(&self, id: &str, new_hash: &str, audit: &AuditEvent) -> DbResult<bool> {
        let sql = "UPDATE service_accounts SET secret_hash = $2, credential_epoch = credential_epoch + 1 \
                   WHERE id = $1 AND deleted_at IS NULL AND status = 'active' AND kind = 'credential'";
        self.update_with_audit(sql, id, new_hash.to_owned(), audit).await
    }

    /// Tombstones an account: it stays readable, never authenticates again.
    pub async fn delete_account(&self, id: &str, now: i64, audit: &AuditEvent) -> DbResult<bool> {
        let sql = "UPDATE service_accounts SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL";
        on_db!(self, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query(sql).bind(id).bind(now).execute(&mut *tx).await?.rows_affected();
            if n == 1 {
                insert_audit!(&mut *tx, audit)?;
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    async fn update_with_audit(&self, sql: &'static str, id: &str, value: String, audit: &AuditEvent) -> DbResult<bool> {
        on_db!(self, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query(sql).bind(id).bind(&value).execute(&mut *tx).await?.rows_affected();
            if n == 1 {
                insert_audit!(&mut *tx, audit)?;
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// Permissions of the named custom roles of `org` (built-ins are in code).
    pub async fn custom_role_permissions(&self, org: &str, roles: &[String]) -> DbResult<HashMap<String, Vec<String>>> {
        let mut out = HashMap::new();
        for role in roles {
            let row: Option<(String,)> = on_db!(self, p => sqlx::query_as(
                "SELECT permissions FROM roles WHERE org_id = $1 AND id = $2",
            )
            .bind(org)
            .bind(role)
            .fetch_optional(p)
            .await?);
            if let Some((perms,)) = row {
                out.insert(role.clone(), perms.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect());
            }
        }
        Ok(out)
    }
}
