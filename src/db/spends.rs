//! Group commit on SQLite for the single-use markers the hot paths write:
//! spent refresh tokens and spent client assertions (`jti`s).
use std::collections::HashSet;

use sqlx::{QueryBuilder, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::refresh::INSERT_SPENT;
use super::{DbError, DbResult};

/// What a marker spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spent {
    RefreshToken,
    /// A client assertion's `jti`, per client (`account_id` holds the
    /// client id).
    Assertion,
}

const INSERT_ASSERTION: &str = "INSERT INTO spent_assertions (client_id, jti, expires_at) \
    VALUES ($1, $2, $3) ON CONFLICT (client_id, jti) DO NOTHING";

/// An owned spend, as queued for the SQLite group commit.
#[derive(Debug, Clone)]
pub(crate) struct SpentRow {
    pub(crate) kind: Spent,
    pub(crate) jti: String,
    /// A refresh token's family (unused for an assertion).
    pub(crate) family: String,
    /// The account (a refresh token's), or the client (an assertion's).
    pub(crate) account_id: String,
    pub(crate) expires_at: i64,
    pub(crate) now: i64,
}

impl SpentRow {
    /// What makes it unique in its table.
    fn key(&self) -> String {
        match self.kind {
            Spent::RefreshToken => self.jti.clone(),
            Spent::Assertion => format!("{} {}", self.account_id, self.jti),
        }
    }
}

/// One spend written alone: `Ok(true)` when it created the row.
async fn insert_one(pool: &SqlitePool, r: &SpentRow) -> Result<bool, sqlx::Error> {
    let q = match r.kind {
        Spent::RefreshToken => sqlx::query(INSERT_SPENT)
            .bind(&r.jti)
            .bind(&r.family)
            .bind(&r.account_id)
            .bind(r.expires_at)
            .bind(r.now),
        Spent::Assertion => sqlx::query(INSERT_ASSERTION)
            .bind(&r.account_id)
            .bind(&r.jti)
            .bind(r.expires_at),
    };
    Ok(q.execute(pool).await?.rows_affected() == 1)
}

/// Most spends written by one statement.
const MAX_BATCH: usize = 256;

type Queued = (SpentRow, oneshot::Sender<DbResult<bool>>);

/// Group commit for refresh-token and client-assertion spends on SQLite.
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
                    let key = row.key();
                    let won = inserted.contains(&key) && claimed.insert(key);
                    let _ = reply.send(Ok(won));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, rows = batch.len(), "batched spend failed; retrying one by one");
                for (row, reply) in batch.drain(..) {
                    let one = insert_one(&pool, &row).await.map_err(DbError::from);
                    let _ = reply.send(one);
                }
            }
        }
    }
}

/// Writes a batch: one statement per kind present, each returning the
/// keys of the rows it created.
async fn insert_batch(pool: &SqlitePool, batch: &[Queued]) -> Result<HashSet<String>, sqlx::Error> {
    let mut won = HashSet::with_capacity(batch.len());
    let refresh: Vec<&SpentRow> = batch
        .iter()
        .map(|(r, _)| r)
        .filter(|r| r.kind == Spent::RefreshToken)
        .collect();
    if !refresh.is_empty() {
        let mut q = QueryBuilder::new(
            "INSERT INTO refresh_tokens_spent (jti, family_id, account_id, expires_at, spent_at) ",
        );
        q.push_values(&refresh, |mut b, r| {
            b.push_bind(&r.jti)
                .push_bind(&r.family)
                .push_bind(&r.account_id)
                .push_bind(r.expires_at)
                .push_bind(r.now);
        });
        q.push(" ON CONFLICT (jti) DO NOTHING RETURNING jti");
        let rows: Vec<(String,)> = q.build_query_as().fetch_all(pool).await?;
        won.extend(rows.into_iter().map(|(k,)| k));
    }
    let assertions: Vec<&SpentRow> = batch
        .iter()
        .map(|(r, _)| r)
        .filter(|r| r.kind == Spent::Assertion)
        .collect();
    if !assertions.is_empty() {
        let mut q = QueryBuilder::new("INSERT INTO spent_assertions (client_id, jti, expires_at) ");
        q.push_values(&assertions, |mut b, r| {
            b.push_bind(&r.account_id)
                .push_bind(&r.jti)
                .push_bind(r.expires_at);
        });
        q.push(" ON CONFLICT (client_id, jti) DO NOTHING RETURNING client_id || ' ' || jti");
        let rows: Vec<(String,)> = q.build_query_as().fetch_all(pool).await?;
        won.extend(rows.into_iter().map(|(k,)| k));
    }
    Ok(won)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::db::Db;

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
            kind: Spent::RefreshToken,
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

    /// Assertions and refresh tokens in the same batches: a `jti` is spent
    /// once per client, the same `jti` of two clients is two spends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn assertion_spends_are_per_client() {
        let (_dir, db) = Db::temp_sqlite().await;
        let Db::Sqlite(pools) = &db else {
            unreachable!("a SQLite URL")
        };
        let row = |kind, client: &str, jti: &str| SpentRow {
            kind,
            jti: jti.into(),
            family: "f".into(),
            account_id: client.into(),
            expires_at: 100,
            now: 1,
        };
        let mut tasks = Vec::new();
        for (kind, client, jti) in [
            (Spent::Assertion, "a", "j"),
            (Spent::Assertion, "a", "j"),
            (Spent::Assertion, "b", "j"),
            (Spent::RefreshToken, "a", "j"),
        ] {
            let spends = pools.spends.clone();
            let r = row(kind, client, jti);
            tasks.push(tokio::spawn(async move { spends.spend(r).await.unwrap() }));
        }
        let mut won = Vec::new();
        for t in tasks {
            won.push(t.await.unwrap());
        }
        assert_eq!(won.iter().filter(|w| **w).count(), 3, "{won:?}");
        assert!(won[2] && won[3], "{won:?}");
        assert!(won[0] != won[1], "{won:?}");
        assert!(
            !pools
                .spends
                .spend(row(Spent::Assertion, "b", "j"))
                .await
                .unwrap()
        );
    }
}
