//! Organizations.
use super::{AuditEvent, Db, DbError, DbResult, audit::insert_audit, on_db, on_db_write};

impl Db {
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "create_org"))]
    pub async fn create_org(
        &self,
        slug: &str,
        name: &str,
        now: i64,
        audit: &AuditEvent,
    ) -> DbResult<()> {
        on_db_write!(self, p => {
            let mut tx = p.begin().await?;
            let r = sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(slug)
                .bind(name)
                .bind(now)
                .execute(&mut *tx)
                .await;
            match r {
                Err(e) if DbError::is_unique_violation(&e) => {
                    return Err(DbError::Conflict(format!("org `{slug}` already exists")))
                }
                other => other?,
            };
            insert_audit!(&mut *tx, audit)?;
            tx.commit().await?;
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
