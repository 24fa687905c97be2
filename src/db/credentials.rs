//! An account's credentials besides its secret (public keys for
//! `private_key_jwt`), and the client assertions already spent.
use super::rows::{Cols, Decode, Param};
use super::spends::{Spent, SpentRow};
use super::write::{ChangeOutcome, OrgGuard, audited_write};
use super::{AuditEvent, Db, DbError, DbResult};

/// A stored credential.
#[derive(Debug, Clone)]
pub struct StoredCredential {
    pub id: String,
    pub account_id: String,
    /// `public_key` or `federated`.
    pub kind: String,
    /// The public JWK, as JSON.
    pub jwk: Option<String>,
    /// Or where the client publishes its keys (a JWK Set).
    pub jwks_uri: Option<String>,
    /// A federated credential's trust: issuer, subject, audience, and the
    /// exact-match claims as a JSON object (`""`: none).
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub audience: Option<String>,
    pub claims: String,
    pub created_at: i64,
    pub created_by: String,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
}

impl Decode for StoredCredential {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        Ok(Self {
            id: r.text(0)?,
            account_id: r.text(1)?,
            kind: r.text(2)?,
            jwk: r.opt_text(3)?,
            created_at: r.int(4)?,
            created_by: r.text(5)?,
            expires_at: r.opt_int(6)?,
            last_used_at: r.opt_int(7)?,
            last_used_ip: r.opt_text(8)?,
            issuer: r.opt_text(9)?,
            subject: r.opt_text(10)?,
            audience: r.opt_text(11)?,
            claims: r.text(12)?,
            jwks_uri: r.opt_text(13)?,
        })
    }
}

/// The most credentials besides the secret one account may hold.
pub const MAX_CREDENTIALS: i64 = 10;

impl Db {
    /// An account's credentials, oldest first.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "list_credentials")
    )]
    pub async fn list_credentials(&self, account_id: &str) -> DbResult<Vec<StoredCredential>> {
        let sql = "SELECT id, account_id, kind, jwk, created_at, created_by, expires_at, \
                   last_used_at, last_used_ip, issuer, subject, audience, claims, jwks_uri FROM credentials \
                   WHERE account_id = $1 \
                   ORDER BY created_at, id";
        self.read_all(sql, &[Param::Text(account_id)]).await
    }

    /// The last use of each of an account's secrets, by prefix.
    pub async fn secret_uses(
        &self,
        account_id: &str,
    ) -> DbResult<Vec<(String, i64, Option<String>)>> {
        let sql =
            "SELECT prefix, last_used_at, last_used_ip FROM secret_uses WHERE account_id = $1";
        let rows: Vec<SecretUse> = self.read_all(sql, &[Param::Text(account_id)]).await?;
        Ok(rows.into_iter().map(|u| (u.0, u.1, u.2)).collect())
    }

    /// Adds a credential with its audit event, under the guard; refused
    /// (`Stale`) when the account already holds `MAX_CREDENTIALS`.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "insert_credential")
    )]
    pub async fn insert_credential(
        &self,
        c: &StoredCredential,
        audit: &AuditEvent,
        guard: Option<&OrgGuard<'_>>,
    ) -> DbResult<ChangeOutcome> {
        Ok(audited_write!(self, audit, guard, |tx| {
            sqlx::query(
                "INSERT INTO credentials (id, account_id, kind, jwk, created_at, created_by, \
                 expires_at, issuer, subject, audience, claims, jwks_uri) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $9, $10, $11, $12, $13 \
                 WHERE (SELECT COUNT(*) FROM credentials WHERE account_id = $2) < $8",
            )
            .bind(&c.id)
            .bind(&c.account_id)
            .bind(&c.kind)
            .bind(&c.jwk)
            .bind(c.created_at)
            .bind(&c.created_by)
            .bind(c.expires_at)
            .bind(MAX_CREDENTIALS)
            .bind(&c.issuer)
            .bind(&c.subject)
            .bind(&c.audience)
            .bind(&c.claims)
            .bind(&c.jwks_uri)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        }))
    }

    /// Removes one of an account's credentials, with its audit event.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "delete_credential")
    )]
    pub async fn delete_credential(
        &self,
        account_id: &str,
        id: &str,
        audit: &AuditEvent,
        guard: Option<&OrgGuard<'_>>,
    ) -> DbResult<ChangeOutcome> {
        Ok(audited_write!(self, audit, guard, |tx| {
            sqlx::query("DELETE FROM credentials WHERE account_id = $1 AND id = $2")
                .bind(account_id)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        }))
    }

    /// Spends a client assertion's `jti` for `client_id` until
    /// `expires_at`: `false` when it was spent before (a replay), on any
    /// replica.
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "spend_assertion"))]
    pub async fn spend_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> DbResult<bool> {
        let res = match self {
            // Gathered with concurrent spends into one statement on the
            // single writer (group commit), as refresh tokens are.
            Db::Sqlite(p) => {
                let row = SpentRow {
                    kind: Spent::Assertion,
                    jti: jti.to_owned(),
                    family: String::new(),
                    account_id: client_id.to_owned(),
                    expires_at,
                    now: 0,
                };
                return p.spends.spend(row).await;
            }
            Db::Postgres(p) => sqlx::query(
                "INSERT INTO spent_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3)",
            )
            .bind(client_id)
            .bind(jti)
            .bind(expires_at)
            .execute(p)
            .await
            .map(|_| ()),
        };
        match res {
            Ok(()) => Ok(true),
            Err(e) if DbError::is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

struct SecretUse(String, i64, Option<String>);

impl Decode for SecretUse {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        Ok(Self(r.text(0)?, r.int(1)?, r.opt_text(2)?))
    }
}
