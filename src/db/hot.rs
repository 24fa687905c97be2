//! The hot-path reads: the token endpoint's, introspection's and the
//! refresh family check, each one round trip, each defined once (SQL,
//! parameters, row) and run by `Db::read_hot` on SQLite's inline reader or
//! either pool.
use super::accounts::{ACCOUNT_COLUMNS, AccountRow, columns, context_columns};
use super::resource_servers::{RS_COLUMNS, RsRow, decode_permissions};
use super::rows::{Cols, Count, Decode, Param};
use super::{Db, DbError, DbResult};
use crate::domain::account::ServiceAccount;
pub use crate::domain::credentials::TokenRef;
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

/// An account, what the requested audience is (`created_at audience
/// permissions` of the live resource server with its key, `None` for
/// none), and its public keys when asked for (`id jwk` lines).
struct AccountAndAudience(AccountRow, Option<String>, Option<String>);

impl Decode for AccountAndAudience {
    fn decode<C: Cols>(c: &C) -> Result<Self, C::Error> {
        let audience = c.opt_text(ACCOUNT_COLUMNS)?;
        let keys = c.opt_text(ACCOUNT_COLUMNS + 1)?;
        Ok(Self(AccountRow::decode_at(c, 0)?, audience, keys))
    }
}

/// One of an account's public keys, as stored: the credential's id and
/// its JWK (JSON), or `@` and the `jwks_uri` it is published at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountKey {
    pub id: String,
    pub jwk: String,
}

impl AccountKey {
    /// Where the keys are published, for a `jwks_uri` credential.
    pub fn jwks_uri(&self) -> Option<&str> {
        self.jwk.strip_prefix('@')
    }
}

/// What the token endpoint's one query found.
#[derive(Debug)]
pub struct TokenSubject {
    pub account: ServiceAccount,
    pub audience: Audience,
    /// Its unexpired public keys (only when asked for).
    pub keys: Vec<AccountKey>,
}

/// What the token endpoint's one query says of the requested audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Not a live resource server's (or not asked).
    Unknown,
    /// A live resource server's, registered as `audience` (the spelling
    /// tokens carry), declaring these permissions (maybe none), registered
    /// at `since`: a refresh token issued before then was for an earlier
    /// registration of the same audience.
    Api {
        audience: String,
        permissions: Vec<ApiPermission>,
        since: i64,
    },
}

impl Audience {
    /// From `created_at audience permissions`, as the hot reads select it
    /// (an audience holds no space; permissions are JSON).
    pub(super) fn decode(text: Option<&str>) -> DbResult<Self> {
        let Some(text) = text else {
            return Ok(Self::Unknown);
        };
        let mut parts = text.splitn(3, ' ');
        let bad = || DbError::Sqlx(sqlx::Error::Decode("resource_servers (probe)".into()));
        let since = parts.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
        let audience = parts.next().ok_or_else(bad)?.to_owned();
        let permissions = decode_permissions(parts.next().unwrap_or_default())?;
        Ok(Self::Api {
            audience,
            permissions,
            since,
        })
    }
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
    /// The account behind a client id, what the live resource server with
    /// `audience_key` (`domain::audience::audience_key`) is, and with
    /// `keys_at` its public keys unexpired then: the token endpoint's one
    /// round trip.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "account_for_token")
    )]
    pub async fn account_for_token(
        &self,
        client_id: &str,
        audience_key: Option<&str>,
        keys_at: Option<i64>,
    ) -> DbResult<Option<TokenSubject>> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            context_columns!("service_accounts"),
            ", (SELECT created_at || ' ' || audience || ' ' || permissions FROM resource_servers \
               WHERE audience_key = $2 AND status = 'active' AND deleted_at IS NULL) AS audience, \
             CASE WHEN $3 IS NOT NULL THEN (SELECT string_agg(c.id || ' ' || \
               COALESCE(c.jwk, '@' || c.jwks_uri), $4) \
               FROM credentials c WHERE c.account_id = service_accounts.id \
               AND c.kind = 'public_key' AND (c.jwk IS NOT NULL OR c.jwks_uri IS NOT NULL) \
               AND (c.expires_at IS NULL OR c.expires_at > $3)) END AS account_keys \
             FROM service_accounts WHERE client_id = $1"
        );
        // A JWK serialised as JSON holds no raw newline, nor does a
        // jwks_uri (no control character is accepted in one).
        let params = [
            Param::Text(client_id),
            Param::OptText(audience_key),
            Param::OptInt(keys_at),
            Param::Text("\n"),
        ];
        let Some(AccountAndAudience(a, perms, keys)) = self.read_hot(sql, &params).await? else {
            return Ok(None);
        };
        let keys = keys
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(id, jwk)| AccountKey {
                id: id.to_owned(),
                jwk: jwk.to_owned(),
            })
            .collect();
        let audience = Audience::decode(perms.as_deref())?;
        Ok(Some(TokenSubject {
            account: ServiceAccount::try_from(a)?,
            audience,
            keys,
        }))
    }

    /// For introspection, in one round trip: the calling resource server
    /// (by its client id), and the account behind the token's client id with
    /// whether the token is revoked (its `jti`, or its grant's family). `None` when no such resource
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
        token: TokenRef<'_>,
    ) -> DbResult<Option<IntrospectionContext>> {
        // A LEFT JOIN yields NULLs without an account; NOT NULL columns are
        // coalesced so the row decodes, and `has_account` says which it is.
        let sql = concat!(
            "SELECT rs.id, rs.name, rs.audience, rs.client_id, rs.secret_hash, rs.status, \
             rs.created_at, rs.created_by, rs.deleted_at, rs.secret_prefix, rs.previous_secrets, \
             rs.permissions, rs.jwks, rs.secret_created_at, \
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
            ", (SELECT COUNT(*) FROM revoked_access_tokens WHERE jti = $3) \
             + (SELECT COUNT(*) FROM refresh_families_revoked WHERE family_id = $4) AS revoked \
             FROM resource_servers rs LEFT JOIN service_accounts a ON a.client_id = $2 \
             WHERE rs.client_id = $1"
        );
        let params = [
            Param::Text(rs_client_id),
            Param::Text(account_client_id),
            Param::Text(token.jti),
            Param::Text(token.family.unwrap_or_default()),
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

    /// The account behind an access token and whether the token is revoked
    /// (its `jti`, or its grant's family).
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "account_with_revocation")
    )]
    pub async fn account_with_revocation(
        &self,
        client_id: &str,
        token: TokenRef<'_>,
    ) -> DbResult<Option<(ServiceAccount, bool)>> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            context_columns!("service_accounts"),
            ", (SELECT COUNT(*) FROM revoked_access_tokens WHERE jti = $2) \
             + (SELECT COUNT(*) FROM refresh_families_revoked WHERE family_id = $3) AS revoked \
             FROM service_accounts WHERE client_id = $1"
        );
        let params = [
            Param::Text(client_id),
            Param::Text(token.jti),
            Param::Text(token.family.unwrap_or_default()),
        ];
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
#[path = "hot_tests.rs"]
mod tests;
