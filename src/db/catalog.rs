//! What role catalogs stored (`domain::catalog`, migration 0016): the
//! permissions they declared and what they added to the built-in roles.
//! Their global roles are ordinary global roles (`db::roles`).
use std::collections::BTreeMap;

use super::rows::{Cols, Decode};
use super::write::insert_audits;
use super::{AuditEvent, Db, DbResult, on_db_write};
use crate::domain::roles::ApiPermission;

struct NameText(String, String);

impl Decode for NameText {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        Ok(Self(r.text(0)?, r.text(1)?))
    }
}

impl Db {
    /// The permissions catalogs declared, by name.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "catalog_permissions")
    )]
    pub async fn catalog_permissions(&self) -> DbResult<Vec<ApiPermission>> {
        let sql = "SELECT name, description FROM catalog_permissions ORDER BY name";
        let rows: Vec<NameText> = self.read_all(sql, &[]).await?;
        Ok(rows
            .into_iter()
            .map(|NameText(name, description)| ApiPermission { name, description })
            .collect())
    }

    /// What catalogs added to each built-in role.
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "role_additions"))]
    pub async fn role_additions(&self) -> DbResult<BTreeMap<String, Vec<String>>> {
        let sql = "SELECT role, permissions FROM role_additions";
        let rows: Vec<NameText> = self.read_all(sql, &[]).await?;
        Ok(rows
            .into_iter()
            .map(|NameText(role, perms)| (role, super::accounts::split_permissions(&perms)))
            .collect())
    }

    /// Declares (or re-describes) a catalog permission, with its event.
    pub async fn put_catalog_permission(
        &self,
        p: &ApiPermission,
        by: &str,
        audit: &AuditEvent,
    ) -> DbResult<()> {
        self.upsert_catalog_row(
            "INSERT INTO catalog_permissions (name, description, created_at, created_by) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET description = excluded.description",
            [&p.name, &p.description],
            by,
            audit,
        )
        .await
    }

    /// Sets what a catalog adds to built-in role `role` (space-separated
    /// `permissions`), with its event. Held from the next request on, on
    /// every replica: the hot paths read it with the account.
    pub async fn put_role_addition(
        &self,
        role: &str,
        permissions: &str,
        by: &str,
        audit: &AuditEvent,
    ) -> DbResult<()> {
        self.upsert_catalog_row(
            "INSERT INTO role_additions (role, permissions, created_at, created_by) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (role) DO UPDATE SET permissions = excluded.permissions",
            [role, permissions],
            by,
            audit,
        )
        .await
    }

    /// One catalog row (`sql` binds key, value, time, author) and its
    /// audit event, in one transaction.
    async fn upsert_catalog_row(
        &self,
        sql: &'static str,
        [key, value]: [&str; 2],
        by: &str,
        audit: &AuditEvent,
    ) -> DbResult<()> {
        on_db_write!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(sql)
                .bind(key)
                .bind(value)
                .bind(audit.at)
                .bind(by)
                .execute(&mut *tx)
                .await?;
            insert_audits!(&mut *tx, std::slice::from_ref(audit))?;
            tx.commit().await?;
        });
        Ok(())
    }
}
