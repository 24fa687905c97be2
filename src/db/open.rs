//! Why a database cannot be opened, in one sentence naming the file or the
//! host it concerns (not sqlx's "pool timed out", nor a cause repeated by
//! each layer that passed it on).
use std::path::Path;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::{DbError, DbResult};

/// The deepest cause of an error: "Connection refused (os error 111)".
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// A SQLite file that cannot be created or opened: its directory missing,
/// or the file itself refused (permissions, not a database).
pub(super) fn sqlite(path: Option<&Path>, e: &(dyn std::error::Error + 'static)) -> DbError {
    let Some(path) = path else {
        return DbError::Unreachable(format!("cannot open the SQLite database: {}", innermost(e)));
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return DbError::Unreachable(format!(
            "the directory {} does not exist (create it, or name another path in WARDEN_DATABASE_URL)",
            dir.display()
        ));
    }
    DbError::Unreachable(format!("cannot open {}: {}", path.display(), innermost(e)))
}

/// One connection to PostgreSQL before the pool is made, so that a
/// server that is down, refuses the user or lacks the database says so
/// (the pool would only report that it timed out).
pub(super) async fn probe_postgres(opts: &PgConnectOptions) -> DbResult<()> {
    let at = format!("{}:{}", opts.get_host(), opts.get_port());
    let why = match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(opts))
        .await
    {
        Ok(Ok(c)) => {
            let _ = c.close().await;
            return Ok(());
        }
        Ok(Err(sqlx::Error::Database(d))) => d.message().to_owned(),
        Ok(Err(e)) => innermost(&e),
        Err(_) => "no answer within 5 s".to_owned(),
    };
    Err(DbError::Unreachable(format!(
        "cannot connect to PostgreSQL at {at}: {why}"
    )))
}
