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
    /// have it: the older keeps it; the newer gets none and is disabled (it
    /// receives no tokens and can neither introspect nor revoke: matched by
    /// key, it would see the other's), and every start says so until one
    /// is deleted (enabling it again is refused while the other is live).
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
                Err(e) if DbError::is_unique_violation(&e) => {
                    on_db_write!(self, p => sqlx::query(
                        "UPDATE resource_servers SET status = 'disabled' WHERE id = $1")
                        .bind(&id)
                        .execute(p)
                        .await
                        .map(|r| r.rows_affected()))?;
                    tracing::warn!(
                        resource_server = %id, name = %name, audience = %audience,
                        "another live resource server names the same resource as this one \
                         (its audience in another spelling): this one is disabled (no tokens, \
                         no introspection or revocation) until one of the two is deleted"
                    )
                }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::manage::Actor;

    async fn unkey(db: &Db, id: &str) {
        on_db_write!(db, p => sqlx::query("UPDATE resource_servers SET audience_key = NULL WHERE id = $1")
            .bind(id)
            .execute(p)
            .await
            .map(|_| ()))
        .unwrap();
    }

    /// Registrations from before migration 0015 get their key at the next
    /// migrate; of two that name one resource, the older keeps it and the
    /// newer gets none (found by no spelling, the server still starts).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn old_registrations_get_their_keys() {
        let (_dir, db) = Db::temp_sqlite().await;
        let actor = Actor::operator();
        let create = |aud: &'static str, at: i64| {
            let db = db.clone();
            let actor = actor.clone();
            async move {
                crate::manage::resource_servers::create(
                    &db,
                    "api",
                    aud,
                    vec![],
                    "https://w.test",
                    &actor,
                    at,
                )
                .await
                .unwrap()
                .0
            }
        };
        let older = create("https://one.test", 1).await;
        unkey(&db, &older.id).await;
        // Before 0015 the same resource could be registered twice.
        let newer = create("https://ONE.test:443/", 2).await;
        unkey(&db, &newer.id).await;
        let other = create("urn:example:other", 3).await;
        unkey(&db, &other.id).await;
        db.migrate().await.unwrap();
        for (spelling, registered) in [
            ("https://one.test/", "https://one.test"),
            ("https://one.test", "https://one.test"),
            ("URN:example:other", "urn:example:other"),
        ] {
            let key = audience_key(spelling);
            let sql = "SELECT audience FROM resource_servers WHERE audience_key = $1 AND deleted_at IS NULL";
            let found: Vec<Unkeyed1> = db.read_all(sql, &[Param::Text(&key)]).await.unwrap();
            let names: Vec<String> = found.into_iter().map(|Unkeyed1(a)| a).collect();
            assert_eq!(names, [registered], "{spelling}");
        }
        // The newer twin is disabled, and stays so while the older lives.
        let twin = db.find_resource_server(&newer.id).await.unwrap().unwrap();
        assert_eq!(twin.status, crate::domain::account::Status::Disabled);
        let enable = crate::manage::resource_servers::set_status(
            &db,
            &newer.id,
            crate::domain::account::Status::Active,
            &actor,
            5,
        );
        assert!(enable.await.is_err());
        // Migrating again changes nothing and still starts.
        db.migrate().await.unwrap();
    }

    struct Unkeyed1(String);

    impl Decode for Unkeyed1 {
        fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
            r.text(0).map(Self)
        }
    }
}
