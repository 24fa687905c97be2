//! The audit log. Admin changes are written in the same transaction as the
//! change (`insert!`); credential events arrive batched from bookkeeping.
use serde_json::Value;

use super::write::insert_audits;
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
    /// An event by the principal `actor_type`:`actor_id`, at `at`; the
    /// org, target, address and details are added by the methods below.
    pub fn new(actor_type: &str, actor_id: &str, action: &str, at: i64) -> Self {
        Self {
            org_id: None,
            at,
            actor_type: actor_type.to_owned(),
            actor_id: actor_id.to_owned(),
            action: action.to_owned(),
            target_type: None,
            target_id: None,
            source_ip: None,
            details: Value::Object(Default::default()),
        }
    }

    pub fn in_org(mut self, org: &str) -> Self {
        self.org_id = Some(org.to_owned());
        self
    }

    pub fn on(mut self, target_type: &str, target_id: &str) -> Self {
        self.target_type = Some(target_type.to_owned());
        self.target_id = Some(target_id.to_owned());
        self
    }

    pub fn from_address(mut self, ip: Option<String>) -> Self {
        self.source_ip = ip;
        self
    }

    /// Changed fields and context; never a secret or token.
    pub fn with(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

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
    /// Writes bookkeeping in one transaction: `last used` times and
    /// addresses (only ever moved forward), hourly usage counts (added to
    /// what other replicas wrote) and queued credential events.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "flush_bookkeeping")
    )]
    pub async fn flush_bookkeeping(&self, batch: &crate::bookkeeping::Batch) -> DbResult<()> {
        on_db_write!(self, p => {
            let mut tx = p.begin().await?;
            for (id, at, ip) in &batch.last_used {
                sqlx::query(
                    "UPDATE service_accounts SET last_used_at = $2, last_used_ip = $3 \
                     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $2)",
                )
                .bind(id)
                .bind(at)
                .bind(ip)
                .execute(&mut *tx)
                .await?;
            }
            for chunk in batch.usage.chunks(500) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO account_usage (account_id, hour, issued, refreshed, failed) ",
                );
                qb.push_values(chunk, |mut b, (id, hour, c)| {
                    b.push_bind(id)
                        .push_bind(*hour)
                        .push_bind(c[0])
                        .push_bind(c[1])
                        .push_bind(c[2]);
                });
                qb.push(
                    " ON CONFLICT (account_id, hour) DO UPDATE SET \
                     issued = account_usage.issued + excluded.issued, \
                     refreshed = account_usage.refreshed + excluded.refreshed, \
                     failed = account_usage.failed + excluded.failed",
                );
                qb.build().execute(&mut *tx).await?;
            }
            // Multi-row inserts: one statement per 500 events rather than
            // one per event keeps the (single) writer free for token use.
            for chunk in batch.events.chunks(500) {
                insert_audits!(&mut *tx, chunk)?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deletes audit events and usage counts older than `cutoff`, a batch
    /// at a time with a pause between batches, so the writer (SQLite's
    /// only one) is never held for long and requests go on meanwhile.
    /// Returns the rows deleted.
    ///
    /// Events are taken oldest id first: ids follow write order, which
    /// follows event time within the few seconds bookkeeping batches
    /// wait, so the old events are the first ids and no index on time is
    /// needed (one would cost every audited token a B-tree insert). A batch
    /// deletes those of the oldest `BATCH` ids that are past the cutoff;
    /// pruning stops at the first batch with none.
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "prune_audit"))]
    pub async fn prune_audit(&self, cutoff: i64, pause: std::time::Duration) -> DbResult<u64> {
        const BATCH: i64 = 2_000;
        let mut total = 0;
        for sql in [
            "DELETE FROM audit_events WHERE at < $1 AND id IN \
             (SELECT id FROM audit_events ORDER BY id LIMIT $2)",
            "DELETE FROM account_usage WHERE (account_id, hour) IN \
             (SELECT account_id, hour FROM account_usage WHERE hour < $1 ORDER BY hour LIMIT $2)",
        ] {
            loop {
                let n = on_db_write!(self, p => sqlx::query(sql)
                    .bind(cutoff)
                    .bind(BATCH)
                    .execute(p)
                    .await?
                    .rows_affected());
                total += n;
                if n == 0 {
                    break;
                }
                tokio::time::sleep(pause).await;
            }
        }
        Ok(total)
    }

    /// An account's hourly usage since `since` (hour starts), oldest first.
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "account_usage"))]
    pub async fn account_usage(
        &self,
        account_id: &str,
        since: i64,
    ) -> DbResult<Vec<(i64, i64, i64, i64)>> {
        Ok(on_db!(self, p => sqlx::query_as(
            "SELECT hour, issued, refreshed, failed FROM account_usage \
             WHERE account_id = $1 AND hour >= $2 ORDER BY hour",
        )
        .bind(account_id)
        .bind(since)
        .fetch_all(p)
        .await?))
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
