//! The audit log. Admin changes are written in the same transaction as the
//! change (`insert!`); credential events arrive batched from bookkeeping.
use serde_json::Value;

use super::rows::{Cols, Decode, Param};
use super::write::insert_audits;
use super::{Db, DbResult, on_db, on_db_write};

/// One audit record. `details` holds changed fields, never a secret. As
/// the API shows it: `at` in RFC 3339, the org implied by the caller's.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEvent {
    #[serde(skip)]
    pub org_id: Option<String>,
    /// RFC 3339.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String)]
    pub at: i64,
    /// `service_account`, `resource_server`, `operator`, `user` (a person
    /// in the console) or `anonymous` (a throttled address).
    pub actor_type: String,
    /// The acting account's or resource server's id, a person's subject,
    /// `local-operator`, or the throttled address.
    pub actor_id: String,
    /// What happened, e.g. `service_account.disabled`, `token.issued`.
    pub action: String,
    /// `service_account`, `role`, `org` or `resource_server`.
    pub target_type: Option<String>,
    /// The target's id.
    pub target_id: Option<String>,
    /// The address the action came from, when known.
    pub source_ip: Option<String>,
    /// The person an operator's call was made for (its
    /// `Warden-On-Behalf-Of` header), as the caller named them.
    pub on_behalf_of: Option<String>,
    /// A person's email, when the actor is a person signed in to the
    /// console (`actor_type` `user`) and their sign-in gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_email: Option<String>,
    /// Changed fields and context; never a secret or token.
    #[schema(value_type = Object)]
    pub details: Value,
}

fn rfc3339<S: serde::Serializer>(at: &i64, s: S) -> Result<S::Ok, S::Error> {
    match crate::domain::rfc3339(*at) {
        Some(t) => s.serialize_str(&t),
        None => s.serialize_none(),
    }
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
            on_behalf_of: None,
            actor_email: None,
            details: Value::Object(Default::default()),
        }
    }

    /// Who the action was done for, when an operator named them.
    pub fn for_person(mut self, person: Option<String>) -> Self {
        self.on_behalf_of = person;
        self
    }

    /// The acting person's email (console sign-ins).
    pub fn by_email(mut self, email: Option<String>) -> Self {
        self.actor_email = email;
        self
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

/// A stored event, as read back: its id (the log's order) and the event.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: i64,
    pub event: AuditEvent,
}

/// `SELECT` of the columns `AuditRow` decodes, in order, then `$tail`.
macro_rules! select_events {
    ($tail:literal) => {
        concat!(
            "SELECT id, org_id, at, actor_type, actor_id, action, target_type, target_id, \
             source_ip, details, on_behalf_of, actor_email FROM audit_events ",
            $tail
        )
    };
}

/// A row reads as its event (`row.action`, `row.at`).
impl std::ops::Deref for AuditRow {
    type Target = AuditEvent;
    fn deref(&self) -> &AuditEvent {
        &self.event
    }
}

impl Decode for AuditRow {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        Ok(Self {
            id: r.int(0)?,
            event: AuditEvent {
                org_id: r.opt_text(1)?,
                at: r.int(2)?,
                actor_type: r.text(3)?,
                actor_id: r.text(4)?,
                action: r.text(5)?,
                target_type: r.opt_text(6)?,
                target_id: r.opt_text(7)?,
                source_ip: r.opt_text(8)?,
                details: serde_json::from_str(&r.text(9)?).unwrap_or_default(),
                on_behalf_of: r.opt_text(10)?,
                actor_email: r.opt_text(11)?,
            },
        })
    }
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
            // An account's last use, and a key's: only ever moved forward.
            let uses = [
                ("UPDATE service_accounts SET last_used_at = $2, last_used_ip = $3 \
                  WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $2)", &batch.last_used),
                ("UPDATE credentials SET last_used_at = $2, last_used_ip = $3 \
                  WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $2)",
                 &batch.credential_used),
            ];
            for (sql, rows) in uses {
                for (id, at, ip) in rows {
                    sqlx::query(sql)
                        .bind(id)
                        .bind(at)
                        .bind(ip)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for (key, at, ip) in &batch.secret_used {
                let Some((account, prefix)) = key.split_once(' ') else {
                    continue;
                };
                sqlx::query(
                    "INSERT INTO secret_uses (account_id, prefix, last_used_at, last_used_ip) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, prefix) DO UPDATE SET \
                     last_used_at = excluded.last_used_at, last_used_ip = excluded.last_used_ip \
                     WHERE secret_uses.last_used_at <= excluded.last_used_at",
                )
                .bind(account)
                .bind(prefix)
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
        let sql = select_events!("WHERE target_id = $1 ORDER BY id");
        self.read_all(sql, &[Param::Text(target_id)]).await
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
        let sql = select_events!(
            "WHERE org_id = $1 AND ($2 IS NULL OR actor_id = $2) \
             AND ($3 IS NULL OR target_id = $3) AND ($4 IS NULL OR action = $4) \
             AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at <= $6) AND ($7 IS NULL OR id < $7) \
             ORDER BY id DESC LIMIT $8"
        );
        let params = [
            Param::Text(&q.org),
            Param::OptText(q.actor.as_deref()),
            Param::OptText(q.target.as_deref()),
            Param::OptText(q.action.as_deref()),
            Param::OptInt(q.since),
            Param::OptInt(q.until),
            Param::OptInt(q.before),
            Param::Int(q.limit),
        ];
        self.read_all(sql, &params).await
    }
}
