//! The hot-path reads: the token endpoint's, introspection's and the
//! refresh family check, each one round trip, each defined once (SQL,
//! parameters, row) and run by `Db::read_hot` on SQLite's inline reader or
//! either pool.
use super::accounts::{ACCOUNT_COLUMNS, AccountRow, columns, context_columns};
use super::resource_servers::{RS_COLUMNS, RsRow, decode_permissions};
use super::rows::{Cols, Count, Decode, Param};
use super::{Db, DbResult};
use crate::domain::account::ServiceAccount;
use crate::domain::resource_server::ResourceServer;
use crate::domain::roles::ApiPermission;

/// What `introspection_context` found.
pub struct IntrospectionContext {
    pub resource_server: ResourceServer,
    /// The account behind the token, and whether the token is revoked.
    pub account: Option<(ServiceAccount, bool)>,
}

/// An account and one flag computed with it (the token revoked): the
/// column after the account's.
struct AccountAnd(AccountRow, bool);

impl Decode for AccountAnd {
    fn decode<C: Cols>(c: &C) -> Result<Self, C::Error> {
        Ok(Self(
            AccountRow::decode_at(c, 0)?,
            c.int(ACCOUNT_COLUMNS)? > 0,
        ))
    }
}

/// An account and the requested audience's declared permissions and
/// registration time (`None`: no live resource server has that audience).
struct AccountAndAudience(AccountRow, Option<(String, i64)>);

impl Decode for AccountAndAudience {
    fn decode<C: Cols>(c: &C) -> Result<Self, C::Error> {
        let perms = c.opt_text(ACCOUNT_COLUMNS)?;
        let since = c.opt_int(ACCOUNT_COLUMNS + 1)?;
        Ok(Self(AccountRow::decode_at(c, 0)?, perms.zip(since)))
    }
}

/// What the token endpoint's one query says of the requested audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Not a live resource server's (or not asked).
    Unknown,
    /// A live resource server's, declaring these permissions (maybe none),
    /// registered at `since`: a refresh token issued before then was for
    /// an earlier registration of the same audience.
    Api {
        permissions: Vec<ApiPermission>,
        since: i64,
    },
}

/// A resource server, and (when one matched) the account behind a token
/// with whether the token is revoked.
struct IntrospectionRow {
    rs: RsRow,
    account: Option<AccountRow>,
    revoked: bool,
}

impl Decode for IntrospectionRow {
    fn decode<C: Cols>(c: &C) -> Result<Self, C::Error> {
        let has_account = c.int(RS_COLUMNS)? > 0;
        let at = RS_COLUMNS + 1;
        Ok(Self {
            rs: RsRow::decode(c)?,
            account: if has_account {
                Some(AccountRow::decode_at(c, at)?)
            } else {
                None
            },
            revoked: c.int(at + ACCOUNT_COLUMNS)? > 0,
        })
    }
}

impl Db {
    /// The account behind a client id and, when `audience` is a live
    /// resource server's, the permissions it declares: the token
    /// endpoint's one round trip.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "account_for_token")
    )]
    pub async fn account_for_token(
        &self,
        client_id: &str,
        audience: Option<&str>,
    ) -> DbResult<Option<(ServiceAccount, Audience)>> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            context_columns!("service_accounts"),
            ", (SELECT permissions FROM resource_servers WHERE audience = $2 \
               AND status = 'active' AND deleted_at IS NULL) AS audience_permissions, \
             (SELECT created_at FROM resource_servers WHERE audience = $2 \
               AND status = 'active' AND deleted_at IS NULL) AS audience_since \
             FROM service_accounts WHERE client_id = $1"
        );
        let params = [Param::Text(client_id), Param::OptText(audience)];
        let Some(AccountAndAudience(a, perms)) = self.read_hot(sql, &params).await? else {
            return Ok(None);
        };
        let audience = match perms {
            Some((p, since)) => Audience::Api {
                permissions: decode_permissions(&p)?,
                since,
            },
            None => Audience::Unknown,
        };
        Ok(Some((ServiceAccount::try_from(a)?, audience)))
    }

    /// For introspection, in one round trip: the calling resource server
    /// (by its client id), and the account behind the token's client id with
    /// whether the token's `jti` is revoked. `None` when no such resource
    /// server exists; the account part is `None` when no account matches.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "introspection_context")
    )]
    pub async fn introspection_context(
        &self,
        rs_client_id: &str,
        account_client_id: &str,
        jti: &str,
    ) -> DbResult<Option<IntrospectionContext>> {
        // A LEFT JOIN yields NULLs without an account; NOT NULL columns are
        // coalesced so the row decodes, and `has_account` says which it is.
        let sql = concat!(
            "SELECT rs.id, rs.name, rs.audience, rs.client_id, rs.secret_hash, rs.status, \
             rs.created_at, rs.created_by, rs.deleted_at, rs.secret_prefix, rs.previous_secrets, \
             rs.permissions, \
             CAST(CASE WHEN a.id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_account, \
             COALESCE(a.id, ''), COALESCE(a.org_id, ''), COALESCE(a.kind, ''), \
             COALESCE(a.name, ''), COALESCE(a.description, ''), a.client_id, \
             a.secret_hash, COALESCE(a.credential_epoch, 0), a.integration, \
             COALESCE(a.roles, ''), COALESCE(a.allowed_ips, ''), a.expires_at, \
             COALESCE(a.status, ''), COALESCE(a.created_at, 0), \
             COALESCE(a.created_by, ''), a.last_used_at, a.deleted_at, a.secret_prefix, \
             a.secret_created_at, COALESCE(a.previous_secrets, ''), \
             COALESCE(a.version, 0), a.last_used_ip, COALESCE(a.allowed_resources, '')",
            context_columns!("a"),
            ", (SELECT COUNT(*) FROM revoked_access_tokens WHERE jti = $3) AS revoked \
             FROM resource_servers rs LEFT JOIN service_accounts a ON a.client_id = $2 \
             WHERE rs.client_id = $1"
        );
        let params = [
            Param::Text(rs_client_id),
            Param::Text(account_client_id),
            Param::Text(jti),
        ];
        let Some(r) = self.read_hot::<IntrospectionRow>(sql, &params).await? else {
            return Ok(None);
        };
        let account = match r.account {
            Some(a) => Some((ServiceAccount::try_from(a)?, r.revoked)),
            None => None,
        };
        Ok(Some(IntrospectionContext {
            resource_server: ResourceServer::try_from(r.rs)?,
            account,
        }))
    }

    /// The account behind an access token and whether the token's `jti`
    /// is revoked (introspection of a token for another audience).
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "account_with_revocation")
    )]
    pub async fn account_with_revocation(
        &self,
        client_id: &str,
        jti: &str,
    ) -> DbResult<Option<(ServiceAccount, bool)>> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            context_columns!("service_accounts"),
            ", (SELECT COUNT(*) FROM revoked_access_tokens WHERE jti = $2) AS revoked \
             FROM service_accounts WHERE client_id = $1"
        );
        let params = [Param::Text(client_id), Param::Text(jti)];
        match self.read_hot::<AccountAnd>(sql, &params).await? {
            Some(AccountAnd(a, revoked)) => Ok(Some((ServiceAccount::try_from(a)?, revoked))),
            None => Ok(None),
        }
    }

    /// Whether a refresh-token family is revoked (the refresh grant's read
    /// before it spends a token).
    pub(super) async fn family_revoked(&self, family: &str) -> DbResult<bool> {
        let sql = "SELECT COUNT(*) FROM refresh_families_revoked WHERE family_id = $1";
        let n = self.read_hot::<Count>(sql, &[Param::Text(family)]).await?;
        Ok(n.is_some_and(|Count(n)| n > 0))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::db::audit::{OPERATOR_ID, OPERATOR_TYPE};

    use crate::db::{AuditEvent, Db};
    use crate::domain::account::AccountKind;
    use crate::manage::Actor;
    use crate::manage::accounts::NewAccount;

    /// The inline SQLite reader and the sqlx pool decode the hot-path rows
    /// identically (every column, NULLs included), and a broken inline
    /// reader falls back to the pool with the same answers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inline_reads_match_the_pool() {
        let (_dir, db) = Db::temp_sqlite().await;
        let ev = AuditEvent::new(OPERATOR_TYPE, OPERATOR_ID, "org.created", 1)
            .in_org("acme")
            .on("org", "acme");
        db.create_org("acme", "Acme", 1, &ev).await.unwrap();
        let actor = Actor::operator();
        let (rs, _) = crate::manage::resource_servers::create(
            &db,
            "api",
            "https://api.test",
            vec![crate::domain::roles::ApiPermission {
                name: "billing:read".into(),
                description: "Read invoices".into(),
            }],
            "https://warden.test",
            &actor,
            2,
        )
        .await
        .unwrap();
        // Stored roles are decoded with the account: an org's and a global one.
        for (org, id) in [(Some("acme"), "acme-reader"), (None, "everyones")] {
            let perms = ["billing:read".to_owned()];
            let role = crate::manage::roles::create(&db, org, id, "", &perms, &actor, 2);
            role.await.unwrap();
        }
        let new = |name: &str, ips: Vec<String>, expires: Option<&str>| NewAccount {
            org: "acme".into(),
            kind: AccountKind::Credential,
            name: name.into(),
            description: "d".into(),
            integration: None,
            roles: vec!["acme-reader".into(), "everyones".into(), "viewer".into()],
            allowed_ips: ips,
            expires_in: expires.map(Into::into),
            expires_at: None,
            // Decoded by the hot reads too.
            allowed_resources: vec!["https://api.test".into()],
        };
        let (plain, _) =
            crate::manage::accounts::create(&db, new("plain", vec![], None), &actor, 3)
                .await
                .unwrap();
        let (fenced, _) = crate::manage::accounts::create(
            &db,
            new(
                "fenced",
                vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
                Some("30d"),
            ),
            &actor,
            4,
        )
        .await
        .unwrap();
        let at_5 = crate::manage::Scope {
            db: &db,
            org: None,
            actor: &actor,
            now: 5,
        };
        crate::manage::accounts::rotate_secret(&at_5, &fenced.id, 3600)
            .await
            .unwrap();
        let ev = AuditEvent::new(OPERATOR_TYPE, OPERATOR_ID, "token.revoked", 6)
            .in_org("acme")
            .on("token", "jti-1");
        db.revoke_access_token("jti-1", fenced.client_id.as_deref().unwrap(), 9_999, 6, &ev)
            .await
            .unwrap();

        let pool = db.without_inline();
        let broken = db.with_broken_inline();
        for a in [&plain, &fenced] {
            let id = a.client_id.as_deref().unwrap();
            for aud in [Some("https://api.test"), Some("https://other.test"), None] {
                let want = format!("{:?}", pool.account_for_token(id, aud).await.unwrap());
                assert!(want.starts_with("Some"), "{want}");
                let stored = r#"{"acme-reader": ["billing:read"], "everyones": ["billing:read"]}"#;
                assert!(want.contains(stored), "{want}");
                assert_eq!(
                    format!("{:?}", db.account_for_token(id, aud).await.unwrap()),
                    want
                );
                assert_eq!(
                    format!("{:?}", broken.account_for_token(id, aud).await.unwrap()),
                    want
                );
            }
            for (acct, jti) in [(id, "jti-1"), (id, "jti-2"), ("arm_sa_missing", "jti-1")] {
                let ctx = |c: Option<super::IntrospectionContext>| {
                    c.map(|c| format!("{:?} {:?}", c.resource_server, c.account))
                };
                let want = ctx(pool
                    .introspection_context(&rs.client_id, acct, jti)
                    .await
                    .unwrap());
                assert!(want.is_some());
                let got = ctx(db
                    .introspection_context(&rs.client_id, acct, jti)
                    .await
                    .unwrap());
                assert_eq!(got, want);
                let got = ctx(broken
                    .introspection_context(&rs.client_id, acct, jti)
                    .await
                    .unwrap());
                assert_eq!(got, want);
            }
        }
        // Refresh-token families: the revocation check reads inline.
        for (d, fam) in [(&db, "fam-a"), (&broken, "fam-b")] {
            use crate::db::refresh::{Spend, SpendRequest};
            let spend = |jti: &'static str| SpendRequest {
                jti,
                family: fam,
                account_id: &plain.id,
                expires_at: 9_999,
                now: 7,
            };
            let ev = AuditEvent::new(OPERATOR_TYPE, OPERATOR_ID, "refresh.reused", 7)
                .in_org("acme")
                .on("family", fam);
            let jti1 = if fam == "fam-a" { "a1" } else { "b1" };
            let jti2 = if fam == "fam-a" { "a2" } else { "b2" };
            assert_eq!(
                d.spend_refresh_token(&spend(jti1), &ev).await.unwrap(),
                Spend::Won
            );
            assert_eq!(
                d.spend_refresh_token(&spend(jti1), &ev).await.unwrap(),
                Spend::Reused
            );
            assert_eq!(
                d.spend_refresh_token(&spend(jti2), &ev).await.unwrap(),
                Spend::FamilyRevoked
            );
        }
        // The inline reads really ran inline, every one of them, and the
        // broken ones did not.
        let idle = |d: &Db| match d {
            Db::Sqlite(p) => p.inline.as_ref().map(|r| r.idle()),
            Db::Postgres(_) => None,
        };
        let failures = |d: &Db| match d {
            Db::Sqlite(p) => p.inline.as_ref().map(|r| r.failures()),
            Db::Postgres(_) => None,
        };
        assert_eq!(idle(&db), Some(1));
        assert_eq!(
            failures(&db),
            Some(0),
            "an inline read fell back to the pool"
        );
        assert_eq!(idle(&broken), Some(0));
        // 6 token reads, 6 introspection reads, 3 family checks.
        assert_eq!(failures(&broken), Some(15));
        assert!(
            db.account_for_token("arm_sa_missing", None)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            db.introspection_context("arm_sa_nobody", "x", "y")
                .await
                .unwrap()
                .is_none()
        );
    }
}
