//! Refresh-token use: single-use spending and family revocation.
use super::{AuditEvent, Db, DbResult, audit::insert_audit, on_db, on_db_write};

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
    /// No member of the family can outlive this (now + refresh TTL), so a
    /// revocation row is kept until then.
    pub family_expires_at: i64,
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
        let sql = "SELECT COUNT(*) FROM refresh_families_revoked WHERE family_id = $1";
        let inline = self.read_inline(|c| {
            c.prepare_cached(sql)?
                .query_row(rusqlite::named_params! {"$1": r.family}, |row| {
                    row.get::<_, i64>(0)
                })
        });
        let revoked = match inline {
            Some(n) => n,
            None => on_db!(self, p => sqlx::query_scalar(sql).bind(r.family).fetch_one(p).await?),
        };
        if revoked > 0 {
            return Ok(Spend::FamilyRevoked);
        }
        // The common case is one autocommit statement on the writer.
        let won = on_db_write!(self, p => sqlx::query(
            "INSERT INTO refresh_tokens_spent (jti, family_id, account_id, expires_at, spent_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(r.jti)
        .bind(r.family)
        .bind(r.account_id)
        .bind(r.expires_at)
        .bind(r.now)
        .execute(p)
        .await?
        .rows_affected())
            == 1;
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
            .bind(r.family_expires_at)
            .bind(r.now)
            .execute(&mut *tx)
            .await?;
            insert_audit!(&mut *tx, reuse_audit)?;
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
            Ok(a + b + c)
        })
    }
}
