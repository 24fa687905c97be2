//! Organizations.
use super::write::{audited_write, unique_or_conflict};
use super::{AuditEvent, Db, DbResult, on_db};

impl Db {
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "create_org"))]
    pub async fn create_org(
        &self,
        slug: &str,
        name: &str,
        now: i64,
        audit: &AuditEvent,
    ) -> DbResult<()> {
        audited_write!(self, audit, None, |tx| {
            let res = sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(slug)
                .bind(name)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected());
            unique_or_conflict(res, || format!("org `{slug}` already exists"))?
        });
        Ok(())
    }

    /// Every organization: (slug, name, created_at), by slug.
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "list_orgs"))]
    pub async fn list_orgs(&self) -> DbResult<Vec<(String, String, i64)>> {
        Ok(
            on_db!(self, p => sqlx::query_as("SELECT id, name, created_at FROM orgs ORDER BY id")
            .fetch_all(p).await?),
        )
    }

    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "org_exists"))]
    pub async fn org_exists(&self, slug: &str) -> DbResult<bool> {
        let n: Option<(String,)> = on_db!(self, p => sqlx::query_as("SELECT id FROM orgs WHERE id = $1")
            .bind(slug).fetch_optional(p).await?);
        Ok(n.is_some())
    }
}
