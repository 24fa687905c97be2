//! The hot-path reads on SQLite, run inline on the calling thread.
//!
//! sqlx gives each SQLite connection a worker thread, and a query is a
//! message to that thread and a reply back: two thread hops per query. Under
//! load those hops (futex wake-ups, context switches) cost more than the
//! query itself; a `perf` profile of the token endpoint put about 40 % of the
//! server's CPU in them. The reads on the token, introspection and refresh
//! paths are point selects by unique key on a few pages that stay cached, a
//! few microseconds of work, short enough to run on the async worker itself.
//!
//! `InlineReader` keeps plain SQLite connections (rusqlite, on the same
//! libsqlite3 that sqlx links) for exactly those reads. A read takes one
//! idle connection, or opens one; since a read never yields, at most one
//! connection per thread is ever in use, so the set stays as small as the
//! runtime. Connections are `query_only`.
//!
//! A read never waits: the busy timeout is zero, and any error (a busy
//! database during WAL recovery, an I/O error, a file that cannot be opened)
//! makes the caller run the same SQL on the sqlx pool instead, which waits
//! on its own thread. Each statement is its own read transaction in WAL
//! mode, so a read sees every write committed before it began, on any
//! connection or process: the live checks lose nothing.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// More idle connections than this are closed rather than kept.
const MAX_IDLE: usize = 16;

pub struct InlineReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Reads that failed and went to the pool. The first is logged as a
    /// warning, later ones at debug, so a persistent problem gives one
    /// warning rather than one per request.
    failures: AtomicU64,
}

impl std::fmt::Debug for InlineReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl InlineReader {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            failures: AtomicU64::new(0),
        }
    }

    /// Runs `f` on an idle connection. `None` when it failed: the caller
    /// then asks the pool.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<T> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(c) => Ok(c),
            None => self.open(),
        };
        let result = conn.and_then(|c| f(&c).map(|v| (c, v)));
        match result {
            Ok((conn, value)) => {
                let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                if idle.len() < MAX_IDLE {
                    idle.push(conn);
                }
                Some(value)
            }
            // A connection that failed is closed, not reused.
            Err(e) => {
                if self.failures.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(error = %e, "inline SQLite read failed; using the connection pool (logged once)");
                } else {
                    tracing::debug!(error = %e, "inline SQLite read failed; using the connection pool");
                }
                None
            }
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        // No CREATE: the database exists (the pools opened it) and this
        // handle must never make a new one somewhere else.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::ZERO)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    /// Reads that failed and fell back to the pool so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Connections currently idle, for metrics.
    pub fn idle(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
