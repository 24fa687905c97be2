//! Storage: the only module that holds SQL.
//!
//! `Db` is chosen once at start-up from `WARDEN_DATABASE_URL`. Each query is
//! written once (`$1` placeholders and `ON CONFLICT` work on both engines)
//! and run through `on_db!`, which expands the same code for each pool.
//! Why not `sqlx::AnyPool`: it decodes every row through an intermediate
//! value type and cannot set SQLite pragmas (WAL, busy timeout) per
//! connection; the enum keeps native drivers at the cost of one macro.
//! Times are integer Unix seconds and ids are text, which both engines
//! store natively; each engine has its own `migrations/` folder.
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub mod accounts;
mod audience_keys;
pub mod audit;
mod catalog;
pub mod console;
pub mod credentials;
pub mod federation;
pub mod hot;
mod inline;
pub mod members;
mod open;
pub mod orgs;
pub mod refresh;
pub mod resource_servers;
mod role_names;
pub mod roles;
pub(crate) mod rows;
mod spends;
pub mod write;

pub use audit::AuditEvent;

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePools),
    Postgres(PgPool),
}

/// SQLite admits one writer at a time; writers on several connections
/// contend and back off in SQLite's sleeping busy handler (tens of
/// milliseconds). All writes therefore go through one connection and
/// queue in-process, while reads use a pool whose connections are
/// `query_only`, so no write can take effect there.
#[derive(Clone, Debug)]
pub struct SqlitePools {
    pub read: SqlitePool,
    pub write: SqlitePool,
    /// The token, introspection and refresh-family reads, run without a thread hop
    /// (`inline.rs`); `None` for an in-memory database.
    inline: Option<std::sync::Arc<inline::InlineReader>>,
    /// Refresh-token and client-assertion spends, written in batches on
    /// the writer.
    spends: std::sync::Arc<spends::SpendBatcher>,
}

/// Runs `$body` with `$pool` bound to the pool for reads.
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(pools) => {
                let $pool = &pools.read;
                $body
            }
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db;

/// Runs `$body` with `$pool` bound to the pool for writes.
macro_rules! on_db_write {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(pools) => {
                let $pool = &pools.write;
                $body
            }
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db_write;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database cannot be opened: one sentence, naming the file or host.
    #[error("{0}")]
    Unreachable(String),
}

impl DbError {
    /// Would retrying later plausibly succeed? The database is down,
    /// restarting, unreachable or out of connections: the caller gets 503
    /// (retry), never a 500 or a wrong answer.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Sqlx(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed,
            ) => true,
            Self::Sqlx(sqlx::Error::Database(d)) => {
                let code = d.code();
                let code = code.as_deref().unwrap_or("");
                // PostgreSQL classes 08 (connection exception), 53
                // (insufficient resources), 57 (operator intervention:
                // shutdown, restart); SQLite BUSY (5) and LOCKED (6).
                ["08", "53", "57"].iter().any(|c| code.starts_with(c)) || code == "5" || code == "6"
            }
            _ => false,
        }
    }

    pub fn is_unique_violation(e: &sqlx::Error) -> bool {
        e.as_database_error()
            .is_some_and(|d| d.is_unique_violation())
    }
}

pub type DbResult<T> = Result<T, DbError>;

impl Db {
    /// Connects to the database named by `url` (creating a SQLite file if
    /// missing).
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "connect"))]
    pub async fn connect(url: &str) -> DbResult<Self> {
        if url.starts_with("sqlite:") {
            let path = sqlite_path(url);
            if let Some(path) = &path {
                create_private(path).map_err(|e| open::sqlite(Some(path), &e))?;
            }
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            // The writer first: it creates the file and switches it to WAL.
            // No ping before each acquire: a SQLite connection is a local
            // handle that cannot drop like a socket, and sqlx's ping is a
            // round trip to the connection's worker thread, which on the
            // hot paths doubled the thread hops per query.
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .test_before_acquire(false)
                .connect_with(opts.clone())
                .await
                .map_err(|e| open::sqlite(path.as_deref(), &e))?;
            // The read pool's connections refuse writes (`query_only`): a
            // write sent there by mistake fails at once, in every test,
            // rather than contending with the writer in production.
            let read = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(5))
                .test_before_acquire(false)
                .connect_with(opts.clone().pragma("query_only", "ON"))
                .await?;
            let inline = (!is_in_memory(url))
                .then(|| std::sync::Arc::new(inline::InlineReader::new(opts.get_filename())));
            let spends = std::sync::Arc::new(spends::SpendBatcher::start(write.clone()));
            Ok(Self::Sqlite(SqlitePools {
                read,
                write,
                inline,
                spends,
            }))
        } else {
            let opts = PgConnectOptions::from_str(url)?;
            open::probe_postgres(&opts).await?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(opts)
                .await?;
            Ok(Self::Postgres(pool))
        }
    }

    /// Applies pending migrations. On PostgreSQL sqlx holds an advisory lock
    /// meanwhile, so replicas starting together apply each migration once.
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "migrate"))]
    pub async fn migrate(&self) -> DbResult<()> {
        match self {
            Self::Sqlite(p) => sqlx::migrate!("./migrations/sqlite").run(&p.write).await?,
            Self::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await?,
        }
        self.backfill_audience_keys().await
    }

    /// A cheap round trip, for readiness.
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "ping"))]
    pub async fn ping(&self) -> DbResult<()> {
        on_db!(self, p => { sqlx::query("SELECT 1").execute(p).await?; });
        Ok(())
    }

    /// Runs a hot-path read on SQLite's inline reader. `None` on
    /// PostgreSQL or when the inline read failed: the caller then runs the
    /// same SQL through `on_db!`.
    fn read_inline<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Option<T> {
        match self {
            Self::Sqlite(SqlitePools {
                inline: Some(r), ..
            }) => r.read(f),
            _ => None,
        }
    }

    /// A migrated SQLite database in a fresh temporary directory, for unit
    /// tests (the directory lives as long as the returned guard).
    #[cfg(test)]
    #[allow(clippy::unwrap_used)]
    pub(crate) async fn temp_sqlite() -> (tempfile::TempDir, Self) {
        let dir = tempfile::tempdir().unwrap();
        let db = Self::connect(&format!("sqlite://{}/w.db", dir.path().display()))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        (dir, db)
    }

    /// The same database with the inline reader off, so tests can compare
    /// both read paths.
    #[cfg(test)]
    pub(crate) fn without_inline(&self) -> Self {
        match self {
            Self::Sqlite(p) => Self::Sqlite(SqlitePools {
                inline: None,
                ..p.clone()
            }),
            other => other.clone(),
        }
    }

    /// The same database with an inline reader that cannot open its file,
    /// so every hot read must fall back to the pool.
    #[cfg(test)]
    pub(crate) fn with_broken_inline(&self) -> Self {
        match self {
            Self::Sqlite(p) => Self::Sqlite(SqlitePools {
                inline: Some(std::sync::Arc::new(inline::InlineReader::new(
                    std::path::Path::new("/nonexistent/warden.db"),
                ))),
                ..p.clone()
            }),
            other => other.clone(),
        }
    }

    /// Hot-path reads that fell back from the inline SQLite reader to the
    /// pool since start-up (always 0 on PostgreSQL), for metrics.
    pub fn inline_fallbacks(&self) -> u64 {
        match self {
            Self::Sqlite(SqlitePools {
                inline: Some(r), ..
            }) => r.failures(),
            _ => 0,
        }
    }

    /// Open and idle connections across the pools, for metrics.
    pub fn pool_usage(&self) -> (u32, usize) {
        match self {
            Self::Sqlite(p) => {
                let inline = p.inline.as_ref().map_or(0, |r| r.idle());
                (
                    p.read.size() + p.write.size() + inline as u32,
                    p.read.num_idle() + p.write.num_idle() + inline,
                )
            }
            Self::Postgres(p) => (p.size(), p.num_idle()),
        }
    }

    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "close"))]
    pub async fn close(&self) {
        match self {
            Self::Sqlite(p) => {
                p.write.close().await;
                p.read.close().await;
            }
            Self::Postgres(p) => p.close().await,
        }
    }
}

/// The file of a SQLite URL (`None` for PostgreSQL or in-memory).
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    if !url.starts_with("sqlite:") || is_in_memory(url) {
        return None;
    }
    SqliteConnectOptions::from_str(url)
        .ok()
        .map(|o| o.get_filename().to_owned())
}

/// Creates a missing database file readable by its owner only (0600).
/// SQLite gives the `-wal` and `-shm` files the database file's mode, so
/// they are private too. An existing file is left as it is (`serve` warns
/// when it is readable by others).
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// An in-memory SQLite database exists only inside its connection, so
/// another handle cannot read it.
/// (Should one slip through, opening it without CREATE fails and the
/// reads go to the pool.)
fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::Db;

    /// The read pool and the inline reader refuse writes: only
    /// `on_db_write!` reaches the one writer.
    #[tokio::test]
    async fn reads_cannot_write() {
        let (_dir, db) = Db::temp_sqlite().await;
        let write = "INSERT INTO orgs (id, name, created_at) VALUES ('x', 'x', 0)";
        let Db::Sqlite(pools) = &db else {
            unreachable!()
        };
        let err = sqlx::query(write)
            .execute(&pools.read)
            .await
            .expect_err("a write on the read pool");
        assert!(err.to_string().contains("readonly"), "{err}");
        let inline = db.read_inline(|c| c.execute(write, []));
        assert!(inline.is_none(), "a write on the inline reader");
        sqlx::query(write)
            .execute(&pools.write)
            .await
            .expect("the writer writes");
    }
}
