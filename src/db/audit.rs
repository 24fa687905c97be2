//! The audit log. Admin changes are written in the same transaction as the
//! change (`insert!`); credential events arrive batched from bookkeeping.
use serde_json::Value;

use super::{Db, DbResult, on_db, on_db_write};

/// One audit record. `details` holds changed fields, never a secret.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub org_id: Option<String>,
    pub at: i64,
    pub actor_type: String,
    pub actor_id: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub source_ip: Option<String>,
    pub details: Value,
}

/// The principal the CLI acts as.
pub const OPERATOR_TYPE: &str = "operator";
pub const OPERATOR_ID: &str = "local-operator";

impl AuditEvent {
    pub fn by_operator(
        org: &str,
        action: &str,
        target_type: &str,
        target_id: &str,
        at: i64,
        details: Value,
    ) -> Self {
        Self {
            org_id: Some(org.to_owned()),
            at,
            actor_type: OPERATOR_TYPE.into(),
            actor_id: OPERATOR_ID.into(),
            action: action.into(),
            target_type: Some(target_type.into()),
            target_id: Some(target_id.into()),
            source_ip: None,
            details,
        }
    }
}

pub(crate) const INSERT_SQL: &str = "INSERT INTO audit_events \
    (org_id, at, actor_type, actor_id, action, target_type, target_id, source_ip, details) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Binds an `AuditEvent` to `INSERT_SQL` and runs it on `$exec`.
macro_rules! insert_audit {
    ($exec:expr, $ev:expr) => {{
        let ev: &$crate::db::AuditEvent = $ev;
        sqlx::query($crate::db::audit::INSERT_SQL)
            .bind(&ev.org_id)
            .bind(ev.at)
            .bind(&ev.actor_type)
            .bind(&ev.actor_id)
            .bind(&ev.action)
            .bind(&ev.target_type)
            .bind(&ev.target_id)
            .bind(&ev.source_ip)
            .bind(ev.details.to_string())
            .execute($exec)
            .await
    }};
}
pub(crate) use insert_audit;

/// A stored event, as read back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub org_id: Option<String>,
    pub at: i64,
    pub actor_type: String,
    pub actor_id: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub source_ip: Option<String>,
    pub details: String,
}

impl Db {
    /// Writes bookkeeping in one transaction: `last used` times (only ever
    /// moved forward) and queued credential events.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "flush_bookkeeping")
    )]
    pub async fn flush_bookkeeping(
        &self,
        last_used: &[(String, i64)],
        events: &[AuditEvent],
    ) -> DbResult<()> {
        on_db_write!(self, p => {
            let mut tx = p.begin().await?;
            for (id, at) in last_used {
                sqlx::query(
                    "UPDATE service_accounts SET last_used_at = $2 \
                     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
                )
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            // Multi-row inserts: one statement per 500 events rather than
            // one per event keeps the (single) writer free for token use.
            for chunk in events.chunks(500) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO audit_events \
                     (org_id, at, actor_type, actor_id, action, target_type, target_id, source_ip, details) ",
                );
                qb.push_values(chunk, |mut b, ev| {
                    b.push_bind(&ev.org_id)
                        .push_bind(ev.at)
                        .push_bind(&ev.actor_type)
                        .push_bind(&ev.actor_id)
                        .push_bind(&ev.action)
                        .push_bind(&ev.target_type)
                        .push_bind(&ev.target_id)
                        .push_bind(&ev.source_ip)
                        .push_bind(ev.details.to_string());
                });
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Events about one target, oldest first (used by the CLI and tests).
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "audit_for_target")
    )]
    pub async fn audit_for_target(&self, target_id: &str) -> DbResult<Vec<AuditRow>> {
        let sql = "SELECT id, org_id, at, actor_type, actor_id, action, target_type, target_id, source_ip, details \
                   FROM audit_events WHERE target_id = $1 ORDER BY id";
        Ok(
            on_db!(self, p => sqlx::query_as::<_, AuditRow>(sql).bind(target_id).fetch_all(p).await?),
        )
    }
}

/// Filters and page of the audit log, newest first.
#[derive(Debug, Default)]
pub struct AuditQuery {
    pub org: String,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub action: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Return events with ids strictly below this one.
    pub before: Option<i64>,
    pub limit: i64,
}

impl Db {
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "query_audit"))]
    pub async fn query_audit(&self, q: &AuditQuery) -> DbResult<Vec<AuditRow>> {
        let sql = "SELECT id, org_id, at, actor_type, actor_id, action, target_type, target_id, source_ip, details \
                   FROM audit_events WHERE org_id = $1 AND ($2 IS NULL OR actor_id = $2) \
                   AND ($3 IS NULL OR target_id = $3) AND ($4 IS NULL OR action = $4) \
                   AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at <= $6) AND ($7 IS NULL OR id < $7) \
                   ORDER BY id DESC LIMIT $8";
        Ok(on_db!(self, p => sqlx::query_as::<_, AuditRow>(sql)
            .bind(&q.org)
            .bind(&q.actor)
            .bind(&q.target)
            .bind(&q.action)
            .bind(q.since)
            .bind(q.until)
            .bind(q.before)
            .bind(q.limit)
            .fetch_all(p)
            .await?))
    }
}
