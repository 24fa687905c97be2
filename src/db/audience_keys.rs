//! Audiences by their key (`domain::audience`): when one was last freed,
//! and the keys of registrations from before migration 0015.
use super::rows::{Cols, Decode, Param};
use super::{Db, DbError, DbResult, on_db_write};
use crate::domain::audience::audience_key;

/// When the last registration of an audience was deleted, if ever.
struct FreedAt(Option<i64>);

impl Decode for FreedAt {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        r.opt_int(0).map(Self)
    }
}

impl Db {
    /// When the audience's last registration (in any spelling) was deleted
    /// (`None`: never registered, or still live).
    pub async fn audience_freed_at(&self, audience: &str) -> DbResult<Option<i64>> {
        let sql = "SELECT MAX(deleted_at) FROM resource_servers WHERE audience_key = $1";
        let key = audience_key(audience);
        let row: Option<FreedAt> = self.read_one(sql, &[Param::Text(&key)]).await?;
        Ok(row.and_then(|FreedAt(t)| t))
    }

    /// Gives each resource server registered before migration 0015 its
    /// audience key. Two live registrations that turn out to name one
    /// resource (`https://a.example` and `https://a.example/`) cannot both
    /// have it: the older keeps it, the newer gets none (so no token can be
    /// issued for it) and every start says so until one is deleted.
    pub(super) async fn backfill_audience_keys(&self) -> DbResult<()> {
        let sql = "SELECT id, audience, name FROM resource_servers WHERE audience_key IS NULL \
                   ORDER BY (deleted_at IS NULL) ASC, created_at ASC, id ASC";
        let rows: Vec<Unkeyed> = self.read_all(sql, &[]).await?;
        for Unkeyed(id, audience, name) in rows {
            let key = audience_key(&audience);
            let res = on_db_write!(self, p => sqlx::query(
                "UPDATE resource_servers SET audience_key = $1 WHERE id = $2")
                .bind(&key)
                .bind(&id)
                .execute(p)
                .await
                .map(|r| r.rows_affected()));
            match res {
                Err(e) if DbError::is_unique_violation(&e) => tracing::warn!(
                    resource_server = %id, name = %name, audience = %audience,
                    "another live resource server names the same resource as this one \
                     (its audience in another spelling): this one receives no tokens \
                     until one of the two is deleted"
                ),
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }
}

struct Unkeyed(String, String, String);

impl Decode for Unkeyed {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        Ok(Self(r.text(0)?, r.text(1)?, r.text(2)?))
    }
}
