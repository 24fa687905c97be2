//! Resource servers.
use super::rows::{Cols, Decode, Param};
use super::write::{ChangeOutcome, audited_write, unique_or_conflict};
use super::{AuditEvent, Db, DbError, DbResult};
use crate::domain::account::Status;
use crate::domain::audience::audience_key;
use crate::domain::resource_server::ResourceServer;
use crate::domain::roles::ApiPermission;

/// `SELECT` of `rs_columns!()` from `resource_servers`, then `$tail`.
macro_rules! select_rs {
    ($tail:literal) => {
        concat!("SELECT ", rs_columns!(), " FROM resource_servers ", $tail)
    };
}

macro_rules! rs_columns {
    () => {
        "id, name, audience, client_id, secret_hash, status, created_at, created_by, deleted_at, \
         secret_prefix, previous_secrets, permissions, jwks, secret_created_at"
    };
}

/// A `resource_servers` row as stored (`rs_columns!()`, in order).
pub(super) struct RsRow {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) audience: String,
    pub(super) client_id: String,
    pub(super) secret_hash: String,
    pub(super) status: String,
    pub(super) created_at: i64,
    pub(super) created_by: String,
    pub(super) deleted_at: Option<i64>,
    pub(super) secret_prefix: Option<String>,
    pub(super) previous_secrets: String,
    pub(super) permissions: String,
    pub(super) jwks: String,
    pub(super) secret_created_at: Option<i64>,
}

/// The number of columns in `rs_columns!()`.
pub(super) const RS_COLUMNS: usize = 14;

impl Decode for RsRow {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        Ok(Self {
            id: r.text(0)?,
            name: r.text(1)?,
            audience: r.text(2)?,
            client_id: r.text(3)?,
            secret_hash: r.text(4)?,
            status: r.text(5)?,
            created_at: r.int(6)?,
            created_by: r.text(7)?,
            deleted_at: r.opt_int(8)?,
            secret_prefix: r.opt_text(9)?,
            previous_secrets: r.text(10)?,
            permissions: r.text(11)?,
            jwks: r.text(12)?,
            secret_created_at: r.opt_int(13)?,
        })
    }
}

impl TryFrom<RsRow> for ResourceServer {
    type Error = DbError;
    fn try_from(r: RsRow) -> DbResult<Self> {
        Ok(Self {
            status: Status::parse(&r.status).ok_or_else(|| {
                DbError::Sqlx(sqlx::Error::Decode("resource_servers.status".into()))
            })?,
            id: r.id,
            name: r.name,
            audience: r.audience,
            client_id: r.client_id,
            secret_hash: r.secret_hash,
            secret_prefix: r.secret_prefix,
            previous_secrets: if r.previous_secrets.is_empty() {
                Vec::new()
            } else {
                serde_json::from_str(&r.previous_secrets).map_err(|_| {
                    DbError::Sqlx(sqlx::Error::Decode(
                        "resource_servers.previous_secrets".into(),
                    ))
                })?
            },
            permissions: decode_permissions(&r.permissions)?,
            keys: if r.jwks.is_empty() {
                Vec::new()
            } else {
                let keys: Vec<serde_json::Value> = serde_json::from_str(&r.jwks).map_err(|_| {
                    DbError::Sqlx(sqlx::Error::Decode("resource_servers.jwks".into()))
                })?;
                keys.iter().map(|k| k.to_string()).collect()
            },
            created_at: r.created_at,
            created_by: r.created_by,
            deleted_at: r.deleted_at,
            secret_created_at: r.secret_created_at,
        })
    }
}

/// A stored declaration: a JSON array, '' for none.
pub(super) fn decode_permissions(s: &str) -> DbResult<Vec<ApiPermission>> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(s)
        .map_err(|_| DbError::Sqlx(sqlx::Error::Decode("resource_servers.permissions".into())))
}

/// Public JWKs (each stored as JSON) as a JSON array, '' for none.
fn encode_keys(keys: &[String]) -> String {
    if keys.is_empty() {
        String::new()
    } else {
        format!("[{}]", keys.join(","))
    }
}

fn encode_permissions(p: &[ApiPermission]) -> String {
    if p.is_empty() {
        String::new()
    } else {
        serde_json::to_string(p).unwrap_or_default()
    }
}

impl Db {
    /// The resource server `sql` finds by `$1`.
    async fn one_resource_server(
        &self,
        sql: &'static str,
        key: &str,
    ) -> DbResult<Option<ResourceServer>> {
        let row: Option<RsRow> = self.read_one(sql, &[Param::Text(key)]).await?;
        row.map(ResourceServer::try_from).transpose()
    }

    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "insert_resource_server")
    )]
    pub async fn insert_resource_server(
        &self,
        rs: &ResourceServer,
        audit: &AuditEvent,
    ) -> DbResult<()> {
        let sql = concat!(
            "INSERT INTO resource_servers (",
            rs_columns!(),
            ", audience_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        );
        audited_write!(self, audit, None, |tx| {
            let res = sqlx::query(sql)
                .bind(&rs.id)
                .bind(&rs.name)
                .bind(&rs.audience)
                .bind(&rs.client_id)
                .bind(&rs.secret_hash)
                .bind(rs.status.as_str())
                .bind(rs.created_at)
                .bind(&rs.created_by)
                .bind(rs.deleted_at)
                .bind(&rs.secret_prefix)
                .bind(super::accounts::encode_previous(&rs.previous_secrets))
                .bind(encode_permissions(&rs.permissions))
                .bind(encode_keys(&rs.keys))
                .bind(rs.secret_created_at)
                .bind(audience_key(&rs.audience))
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected());
            unique_or_conflict(res, || {
                "a resource server with this audience (in this or another spelling of it) already exists".into()
            })?
        });
        Ok(())
    }

    /// By id, client id or audience in any spelling of it (the live
    /// registration of an audience before its deleted ones, the newest
    /// first).
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "find_resource_server")
    )]
    pub async fn find_resource_server(&self, key: &str) -> DbResult<Option<ResourceServer>> {
        let sql = select_rs!(
            "WHERE id = $1 OR client_id = $1 OR audience = $1 OR audience_key = $2 \
             ORDER BY (id = $1 OR client_id = $1) DESC, (audience = $1) DESC, \
             (deleted_at IS NULL) DESC, created_at DESC"
        );
        let params = [Param::Text(key), Param::Text(&audience_key(key))];
        let row: Option<RsRow> = self.read_one(sql, &params).await?;
        row.map(ResourceServer::try_from).transpose()
    }

    /// By client id alone: the point lookup resource-server authentication
    /// makes on every introspection and revocation.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "resource_server_by_client_id")
    )]
    pub async fn resource_server_by_client_id(
        &self,
        client_id: &str,
    ) -> DbResult<Option<ResourceServer>> {
        let sql = select_rs!("WHERE client_id = $1");
        self.one_resource_server(sql, client_id).await
    }

    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "list_resource_servers")
    )]
    pub async fn list_resource_servers(&self) -> DbResult<Vec<ResourceServer>> {
        let sql = select_rs!("ORDER BY created_at, id");
        let rows: Vec<RsRow> = self.read_all(sql, &[]).await?;
        rows.into_iter().map(ResourceServer::try_from).collect()
    }

    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "set_resource_server_status")
    )]
    /// Enabling one also gives it its audience key, when it has none (a
    /// twin the migration to keys disabled): a conflict while the other
    /// registration of the resource is live.
    pub async fn set_resource_server_status(
        &self,
        rs: &ResourceServer,
        status: Status,
        audit: &AuditEvent,
    ) -> DbResult<bool> {
        let outcome = audited_write!(self, audit, None, |tx| {
            let res = sqlx::query(
                "UPDATE resource_servers SET status = $2, audience_key = CASE WHEN $2 = 'active' \
                 THEN COALESCE(audience_key, $3) ELSE audience_key END \
                 WHERE id = $1 AND deleted_at IS NULL",
            )
            .bind(&rs.id)
            .bind(status.as_str())
            .bind(audience_key(&rs.audience))
            .execute(&mut *tx)
            .await
            .map(|r| r.rows_affected());
            unique_or_conflict(res, || {
                "another live resource server names the same resource (its audience in another spelling): delete one of the two first".into()
            })?
        });
        Ok(outcome == ChangeOutcome::Done)
    }

    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "delete_resource_server")
    )]
    pub async fn delete_resource_server(
        &self,
        id: &str,
        now: i64,
        audit: &AuditEvent,
    ) -> DbResult<bool> {
        let outcome = audited_write!(self, audit, None, |tx| sqlx::query(
            "UPDATE resource_servers SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL"
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected());
        Ok(outcome == ChangeOutcome::Done)
    }

    /// Sets one column of a live resource server (`secret_hash` or `name`),
    /// with its audit record. `Ok(false)` when there is no such live server.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "update_resource_server")
    )]
    pub async fn update_resource_server(
        &self,
        id: &str,
        change: RsChange<'_>,
        audit: &AuditEvent,
    ) -> DbResult<bool> {
        let outcome =
            audited_write!(self, audit, None, |tx| {
                let q = match &change {
                RsChange::Secrets { hash, prefix, previous, expected_hash, made_at } => sqlx::query(
                    "UPDATE resource_servers SET secret_hash = $2, secret_prefix = $3, \
                     previous_secrets = $4, secret_created_at = $6 \
                     WHERE id = $1 AND deleted_at IS NULL AND secret_hash = $5",
                )
                .bind(id)
                .bind(*hash)
                .bind(*prefix)
                .bind(super::accounts::encode_previous(previous))
                .bind(*expected_hash)
                .bind(*made_at),
                RsChange::Keys(keys) => sqlx::query(
                    "UPDATE resource_servers SET jwks = $2 WHERE id = $1 AND deleted_at IS NULL",
                )
                .bind(id)
                .bind(encode_keys(keys)),
                RsChange::Name(n) => sqlx::query(
                    "UPDATE resource_servers SET name = $2 WHERE id = $1 AND deleted_at IS NULL",
                )
                .bind(id)
                .bind(*n),
                RsChange::Permissions { now, expected } => sqlx::query(
                    "UPDATE resource_servers SET permissions = $2 \
                     WHERE id = $1 AND deleted_at IS NULL AND permissions = $3",
                )
                .bind(id)
                .bind(encode_permissions(now))
                .bind(encode_permissions(expected)),
            };
                q.execute(&mut *tx).await?.rows_affected()
            });
        Ok(outcome == ChangeOutcome::Done)
    }
}

/// One change to a resource server (`Db::update_resource_server`).
pub enum RsChange<'a> {
    /// New secrets, if the current hash is still `expected_hash` (of two
    /// concurrent changes, one wins).
    Secrets {
        hash: &'a str,
        prefix: &'a str,
        made_at: i64,
        previous: &'a [crate::domain::credentials::PreviousSecret],
        expected_hash: &'a str,
    },
    Name(&'a str),
    /// The public keys it may sign client assertions with (each a JWK, as
    /// JSON), replacing the ones it had.
    Keys(&'a [String]),
    /// The declared permissions, if they are still `expected` (of two
    /// concurrent edits, one wins).
    Permissions {
        now: &'a [ApiPermission],
        expected: &'a [ApiPermission],
    },
}

impl Db {
    /// Every permission a live resource server declares or a role catalog
    /// stored: with the built-in ones, the permissions that exist.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "declared_permissions")
    )]
    pub async fn declared_permissions(&self) -> DbResult<Vec<String>> {
        let sql = "SELECT permissions FROM resource_servers \
                   WHERE deleted_at IS NULL AND status = 'active' AND permissions <> ''";
        let rows: Vec<Declared> = self.read_all(sql, &[]).await?;
        let mut out = Vec::new();
        for Declared(text) in rows {
            out.extend(decode_permissions(&text)?.into_iter().map(|p| p.name));
        }
        out.extend(
            self.catalog_permissions()
                .await?
                .into_iter()
                .map(|p| p.name),
        );
        out.sort();
        out.dedup();
        Ok(out)
    }
}

struct Declared(String);

impl Decode for Declared {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        r.text(0).map(Self)
    }
}
