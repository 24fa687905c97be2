//! Reads, written once for three drivers: the inline SQLite reader
//! (rusqlite, on the hot paths) and sqlx's SQLite and PostgreSQL pools.
//!
//! A read is its SQL, its parameters (`Param`, bound by name `$1`, `$2`,
//! … on every driver) and its row type, which decodes itself by column
//! index through `Cols` (`Decode`). `Db::read_one` and `Db::read_all` run
//! it on the read pool; `Db::read_hot` first tries the inline reader and
//! falls back to the pool, with the same SQL, parameters and decoder.
use rusqlite::OptionalExtension;

use super::{Db, DbResult, on_db};

/// A row's columns by index, whichever driver read it.
pub trait Cols {
    type Error;
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
}

impl Cols for rusqlite::Row<'_> {
    type Error = rusqlite::Error;
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }
    fn opt_text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }
    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }
    fn opt_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }
}

/// `Cols` for a sqlx row type (one impl per driver: a blanket impl over
/// `sqlx::Row` would overlap rusqlite's in the compiler's eyes).
macro_rules! sqlx_cols {
    ($row:ty) => {
        impl Cols for $row {
            type Error = sqlx::Error;
            fn text(&self, i: usize) -> Result<String, sqlx::Error> {
                sqlx::Row::try_get(self, i)
            }
            fn opt_text(&self, i: usize) -> Result<Option<String>, sqlx::Error> {
                sqlx::Row::try_get(self, i)
            }
            fn int(&self, i: usize) -> Result<i64, sqlx::Error> {
                sqlx::Row::try_get(self, i)
            }
            fn opt_int(&self, i: usize) -> Result<Option<i64>, sqlx::Error> {
                sqlx::Row::try_get(self, i)
            }
        }
    };
}
sqlx_cols!(sqlx::sqlite::SqliteRow);
sqlx_cols!(sqlx::postgres::PgRow);

/// A row type read by `Db::read_*`.
pub trait Decode: Sized {
    fn decode<C: Cols>(c: &C) -> Result<Self, C::Error>;
}

/// A single-column count, as `SELECT COUNT(*) …` returns it.
pub struct Count(pub i64);

impl Decode for Count {
    fn decode<C: Cols>(c: &C) -> Result<Self, C::Error> {
        c.int(0).map(Self)
    }
}

/// One parameter of a read, `$n` for the n-th in the list.
#[derive(Clone, Copy, Debug)]
pub enum Param<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Self::Text(s) => s.to_sql(),
            Self::OptText(s) => s.to_sql(),
            Self::Int(n) => n.to_sql(),
            Self::OptInt(n) => n.to_sql(),
            Self::Bool(b) => b.to_sql(),
        }
    }
}

/// Parameter names: SQLite numbers `$n` parameters by first appearance in
/// the text, not by `n`, so they are bound by name.
const NAMES: [&str; 12] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12",
];

/// `sqlx::query($sql)` with `$params` bound in order.
macro_rules! bound {
    ($sql:expr, $params:expr) => {{
        let mut q = sqlx::query($sql);
        for p in $params {
            q = match *p {
                Param::Text(v) => q.bind(v),
                Param::OptText(v) => q.bind(v),
                Param::Int(v) => q.bind(v),
                Param::OptInt(v) => q.bind(v),
                Param::Bool(v) => q.bind(v),
            };
        }
        q
    }};
}
pub(super) use bound;

impl Db {
    /// At most one row, from the read pool.
    pub(super) async fn read_one<T: Decode>(
        &self,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> DbResult<Option<T>> {
        Ok(
            on_db!(self, p => match bound!(sql, params).fetch_optional(p).await? {
                Some(row) => Some(T::decode(&row)?),
                None => None,
            }),
        )
    }

    /// Every row, from the read pool.
    pub(super) async fn read_all<T: Decode>(
        &self,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> DbResult<Vec<T>> {
        Ok(on_db!(self, p => bound!(sql, params)
            .fetch_all(p)
            .await?
            .iter()
            .map(T::decode)
            .collect::<Result<Vec<T>, sqlx::Error>>()?))
    }

    /// A hot-path read: on SQLite's inline reader (no thread hop) when it
    /// can, else exactly as `read_one`.
    pub(super) async fn read_hot<T: Decode>(
        &self,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> DbResult<Option<T>> {
        let inline = self.read_inline_named(params, |c, named| {
            c.prepare_cached(sql)?
                .query_row(named, |r| T::decode(r))
                .optional()
        })?;
        match inline {
            Some(row) => Ok(row),
            None => self.read_one(sql, params).await,
        }
    }

    /// A hot-path read of several rows: as `read_hot`, every row.
    pub(super) async fn read_hot_all<T: Decode>(
        &self,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> DbResult<Vec<T>> {
        let inline = self.read_inline_named(params, |c, named| {
            c.prepare_cached(sql)?
                .query_map(named, |r| T::decode(r))?
                .collect::<rusqlite::Result<Vec<T>>>()
        })?;
        match inline {
            Some(rows) => Ok(rows),
            None => self.read_all(sql, params).await,
        }
    }

    /// Runs `f` on the inline reader with `params` bound as `$1`, `$2`, …
    /// (`None`: no inline reader, or it failed; ask the pool).
    fn read_inline_named<R>(
        &self,
        params: &[Param<'_>],
        f: impl FnOnce(&rusqlite::Connection, &[(&str, &dyn rusqlite::ToSql)]) -> rusqlite::Result<R>,
    ) -> DbResult<Option<R>> {
        if params.len() > NAMES.len() {
            // A parameter left unbound would read as NULL: refuse instead.
            return Err(sqlx::Error::Protocol(format!(
                "{} parameters; at most {}",
                params.len(),
                NAMES.len()
            ))
            .into());
        }
        Ok(self.read_inline(|c| {
            let named: Vec<(&str, &dyn rusqlite::ToSql)> = NAMES
                .iter()
                .zip(params)
                .map(|(n, p)| (*n, p as &dyn rusqlite::ToSql))
                .collect();
            f(c, &named)
        }))
    }
}
