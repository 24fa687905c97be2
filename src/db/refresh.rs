//! Refresh-token use and revocation: single-use spending, family
//! revocation (by reuse or RFC 7009), revoked access tokens, and what
//! introspection asks about a refresh token's chain.
use super::spends::{Spent, SpentRow};
use super::write::{audited_write, insert_audits};
use super::{AuditEvent, Db, DbResult, on_db, on_db_write};

pub(super) const INSERT_SPENT: &str = "INSERT INTO refresh_tokens_spent \
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

/// A refresh token's spend, as queued for the SQLite group commit.
impl From<&SpendRequest<'_>> for SpentRow {
    fn from(r: &SpendRequest<'_>) -> Self {
        Self {
            kind: Spent::RefreshToken,
            jti: r.jti.to_owned(),
            family: r.family.to_owned(),
            account_id: r.account_id.to_owned(),
            expires_at: r.expires_at,
            now: r.now,
        }
    }
}
