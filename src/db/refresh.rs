//! Refresh-token use and revocation: single-use spending, family
//! revocation (by reuse or RFC 7009), revoked access tokens, and what
//! introspection asks about a refresh token's chain.
use std::collections::HashSet;

use sqlx::{QueryBuilder, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::write::{audited_write, insert_audits};
use super::{AuditEvent, Db, DbError, DbResult, on_db, on_db_write};

const INSERT_SPENT: &str = "INSERT INTO refresh_tokens_spent \
    (jti, family_id, account_id, expires_at, spent_at) \
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (jti) DO NOTHING";

/// One spend on `$pool`: `Ok(true)` when this insert created the row (the
/// token was unspent). `$r` is a `SpendRequest` or a `SpentRow`.
macro_rules! insert_spent {
    ($pool:expr, $r:expr) => {
        sqlx::query(INSERT_SPENT)
            .bind(&$r.jti)
            .bind(&$r.family)
            .bind(&$r.account_id)
            .bind($r.expires_at)
            .bind($r.now)
            .execute($pool)
            .await
            .map(|d| d.rows_affected() == 1)
    };
}

/// Until when a family revoked at `now` stays revoked: as long as any of
/// its tokens could still be presented. A token of the family may have
/// been issued a moment ago under the longest refresh TTL warden accepts
/// (the TTL in force then is not known now, and may have been longer than
/// today's), so the row is kept that long after the revocation. Lowering
/// the TTL therefore never lets a revoked family come back. Revocations
/// are rare (reuse, explicit revoke), so the rows stay few.
pub(crate) fn revoked_until(now: i64) -> i64 {
    now + crate::config::MAX_REFRESH_TOKEN_TTL_SECS
}

/// How an attempt to spend a refresh token ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Spend {
    /// This request consumed the token.
    Won,
    /// The token was spent before: reuse. The family is now revoked.
    Reused,
    /// The family had been revoked already.
    FamilyRevoked,
}

pub struct SpendRequest<'a> {
    pub jti: &'a str,
    pub family: &'a str,
    pub account_id: &'a str,
    /// When the presented token expires; its spent row is prunable after.
    pub expires_at: i64,
    pub now: i64,
}

impl Db {
    /// Spends a refresh token. The primary key on `jti` decides races, on
    /// one node or many: exactly one concurrent caller wins. A loser's
    /// attempt is reuse, and revokes the family (with `reuse_audit`
    /// recorded in the same transaction).
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "spend_refresh_token")
    )]
    pub async fn spend_refresh_token(
        &self,
        r: &SpendRequest<'_>,
        reuse_audit: &AuditEvent,
    ) -> DbResult<Spend> {
        // A read, on the read pool: a family revoked between this check and
        // the insert below leaves one more token in a dead chain, refused at
        // its first use.
        let revoked = self.family_revoked(r.family).await?;
        if revoked {
            return Ok(Spend::FamilyRevoked);
        }
        // The common case is one insert. On SQLite, concurrent spends are
        // gathered into one statement on the single writer (group commit);
        // PostgreSQL has a connection per request and takes them directly.
        let won = match self {
            Db::Sqlite(p) => p.spends.spend(SpentRow::from(r)).await?,
            Db::Postgres(p) => insert_spent!(p, r)?,
        };
        if won {
            return Ok(Spend::Won);
        }
        on_db_write!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO refresh_families_revoked (family_id, account_id, reason, expires_at, revoked_at) \
                 VALUES ($1, $2, 'reuse', $3, $4) ON CONFLICT (family_id) DO NOTHING",
            )
            .bind(r.family)
            .bind(r.account_id)
            .bind(revoked_until(r.now))
            .bind(r.now)
            .execute(&mut *tx)
            .await?;
            insert_audits!(&mut *tx, std::slice::from_ref(reuse_audit))?;
            tx.commit().await?;
        });
        Ok(Spend::Reused)
    }

    /// Drops bookkeeping rows that can no longer matter: a spent token or a
    /// revoked family past its expiry cannot be presented successfully.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "prune_refresh_state")
    )]
    pub async fn prune_refresh_state(&self, now: i64) -> DbResult<u64> {
        on_db_write!(self, p => {
            let a = sqlx::query("DELETE FROM refresh_tokens_spent WHERE expires_at < $1")
                .bind(now).execute(p).await?.rows_affected();
            let b = sqlx::query("DELETE FROM refresh_families_revoked WHERE expires_at < $1")
                .bind(now).execute(p).await?.rows_affected();
            // Kept past expiry for the verification leeway.
            let c = sqlx::query("DELETE FROM revoked_access_tokens WHERE expires_at < $1")
                .bind(now - 300).execute(p).await?.rows_affected();
            // Past its expiry (and the leeway) an assertion is refused anyway.
            let d = sqlx::query("DELETE FROM spent_assertions WHERE expires_at < $1")
                .bind(now - 300).execute(p).await?.rows_affected();
            Ok(a + b + c + d)
        })
    }
}

/// What introspection needs to know about a refresh token's chain.
#[derive(Debug, Clone, Copy)]
pub struct RefreshState {
    pub spent: bool,
    pub family_revoked: bool,
}

impl Db {
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "refresh_state"))]
    pub async fn refresh_state(&self, jti: &str, family: &str) -> DbResult<RefreshState> {
        let row: (i64, i64) = on_db!(self, p => sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM refresh_tokens_spent WHERE jti = $1), \
                    (SELECT COUNT(*) FROM refresh_families_revoked WHERE family_id = $2)",
        )
        .bind(jti)
        .bind(family)
        .fetch_one(p)
        .await?);
        Ok(RefreshState {
            spent: row.0 > 0,
            family_revoked: row.1 > 0,
        })
    }

    /// Revokes one access token until it would have expired anyway.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "revoke_access_token")
    )]
    pub async fn revoke_access_token(
        &self,
        jti: &str,
        client_id: &str,
        exp: i64,
        now: i64,
        audit: &AuditEvent,
    ) -> DbResult<()> {
        // Revoked already: nothing changes, nothing is recorded again.
        audited_write!(self, audit, None, |tx| sqlx::query(
            "INSERT INTO revoked_access_tokens (jti, client_id, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(client_id)
        .bind(exp)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Revokes a refresh-token family (every token of the chain).
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "revoke_refresh_family")
    )]
    pub async fn revoke_refresh_family(
        &self,
        family: &str,
        account_id: &str,
        now: i64,
        audit: &AuditEvent,
    ) -> DbResult<()> {
        audited_write!(self, audit, None, |tx| {
            sqlx::query(
            "INSERT INTO refresh_families_revoked (family_id, account_id, reason, expires_at, revoked_at) \
             VALUES ($1, $2, 'revoked', $3, $4) ON CONFLICT (family_id) DO NOTHING",
        )
        .bind(family)
        .bind(account_id)
        .bind(revoked_until(now))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        });
        Ok(())
    }
}

/// An owned spend, as queued for the SQLite group commit.
#[derive(Debug, Clone)]
pub(crate) struct SpentRow {
    jti: String,
    family: String,
    account_id: String,
    expires_at: i64,
    now: i64,
}

impl From<&SpendRequest<'_>> for SpentRow {
    fn from(r: &SpendRequest<'_>) -> Self {
        Self {
            jti: r.jti.to_owned(),
            family: r.family.to_owned(),
            account_id: r.account_id.to_owned(),
            expires_at: r.expires_at,
            now: r.now,
        }
    }
}

/// Most spends written by one statement.
const MAX_BATCH: usize = 256;

type Queued = (SpentRow, oneshot::Sender<DbResult<bool>>);

/// Group commit for refresh-token spends on SQLite.
///
/// Each refresh writes a single-use marker, and SQLite has one writer
/// connection, reached through sqlx's worker thread: one insert per request
/// meant two thread hops and a commit each, and refresh topped out near
/// 4,000/s. Here one task takes whatever spends are queued (at most
/// `MAX_BATCH`) and writes them with one `INSERT … ON CONFLICT DO NOTHING
/// RETURNING jti`; the rows it returns won. No timer is involved: a lone
/// request is written at once, and requests arriving meanwhile form the
/// next batch. Two spends of the same `jti` in one batch: the first
/// queued wins and the other is reuse, as if they had come one after the
/// other. If a batch fails, its rows are retried one by one so each
/// request gets its own answer.
#[derive(Debug)]
pub(crate) struct SpendBatcher {
    queue: mpsc::UnboundedSender<Queued>,
}

impl SpendBatcher {
    /// Starts the writing task on the current Tokio runtime.
    pub(crate) fn start(write: SqlitePool) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_batches(write, rx));
        Self { queue }
    }

    pub(crate) async fn spend(&self, row: SpentRow) -> DbResult<bool> {
        let (tx, rx) = oneshot::channel();
        // A closed queue or a dropped reply means the runtime is shutting
        // down: the caller answers "try again" (503), never a wrong result.
        self.queue
            .send((row, tx))
            .map_err(|_| DbError::Sqlx(sqlx::Error::PoolClosed))?;
        rx.await
            .map_err(|_| DbError::Sqlx(sqlx::Error::PoolClosed))?
    }
}

async fn run_batches(pool: SqlitePool, mut rx: mpsc::UnboundedReceiver<Queued>) {
    let mut batch: Vec<Queued> = Vec::new();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match insert_batch(&pool, &batch).await {
            Ok(inserted) => {
                let mut claimed = HashSet::with_capacity(batch.len());
                for (row, reply) in batch.drain(..) {
                    let won = inserted.contains(&row.jti) && claimed.insert(row.jti);
                    let _ = reply.send(Ok(won));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, rows = batch.len(), "batched refresh-token spend failed; retrying one by one");
                for (row, reply) in batch.drain(..) {
                    let one = insert_spent!(&pool, row).map_err(DbError::from);
                    let _ = reply.send(one);
                }
            }
        }
    }
}

async fn insert_batch(pool: &SqlitePool, batch: &[Queued]) -> Result<HashSet<String>, sqlx::Error> {
    let mut q = QueryBuilder::new(
        "INSERT INTO refresh_tokens_spent (jti, family_id, account_id, expires_at, spent_at) ",
    );
    q.push_values(batch, |mut b, (r, _)| {
        b.push_bind(&r.jti)
            .push_bind(&r.family)
            .push_bind(&r.account_id)
            .push_bind(r.expires_at)
            .push_bind(r.now);
    });
    q.push(" ON CONFLICT (jti) DO NOTHING RETURNING jti");
    let rows: Vec<(String,)> = q.build_query_as().fetch_all(pool).await?;
    Ok(rows.into_iter().map(|(j,)| j).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Concurrent spends through the group commit: of many attempts on one
    /// token exactly one wins, however they fall into batches, and distinct
    /// tokens all win.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batched_spends_have_one_winner_per_token() {
        let (_dir, db) = Db::temp_sqlite().await;
        let Db::Sqlite(pools) = &db else {
            unreachable!("a SQLite URL")
        };
        let row = |jti: String| SpentRow {
            jti,
            family: "f".into(),
            account_id: "a".into(),
            expires_at: 100,
            now: 1,
        };
        for round in 0..5 {
            let mut tasks = Vec::new();
            for i in 0..120 {
                let spends = pools.spends.clone();
                // Every third attempt is on the round's shared token.
                let jti = if i % 3 == 0 {
                    format!("shared-{round}")
                } else {
                    format!("own-{round}-{i}")
                };
                tasks.push(tokio::spawn(async move {
                    (jti.clone(), spends.spend(row(jti)).await)
                }));
            }
            let mut shared_wins = 0;
            for t in tasks {
                let (jti, won) = t.await.unwrap();
                let won = won.unwrap();
                if jti.starts_with("shared") {
                    shared_wins += usize::from(won);
                } else {
                    assert!(won, "{jti} lost");
                }
            }
            assert_eq!(shared_wins, 1, "round {round}");
            // Spent once: every later attempt loses.
            assert!(
                !pools
                    .spends
                    .spend(row(format!("shared-{round}")))
                    .await
                    .unwrap()
            );
        }
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM refresh_tokens_spent")
            .fetch_one(&pools.write)
            .await
            .unwrap();
        assert_eq!(n, 5 * 81);
    }
}
