//! The federated grants' one read: the unexpired federated credentials
//! that trust an external token's issuer and subject, each with its
//! account (as the token endpoint reads one) and the requested audience.
use super::accounts::{ACCOUNT_COLUMNS, AccountRow, columns, context_columns};
use super::hot::Audience;
use super::rows::{Cols, Decode, Param};
use super::{Db, DbResult};
use crate::domain::account::ServiceAccount;

/// A federated credential that may match a token, and whom it is for.
#[derive(Debug)]
pub struct FederatedCandidate {
    pub credential_id: String,
    /// What the token's `aud` must contain.
    pub audience: String,
    /// The exact-match claims as stored (`""`: none).
    pub claims: String,
    pub account: ServiceAccount,
    /// The requested audience, as `account_for_token` reads it.
    pub requested: Audience,
}

struct Row(AccountRow, Option<String>, String, String, String);

impl Decode for Row {
    fn decode<C: Cols>(c: &C) -> Result<Self, C::Error> {
        Ok(Self(
            AccountRow::decode_at(c, 0)?,
            c.opt_text(ACCOUNT_COLUMNS)?,
            c.text(ACCOUNT_COLUMNS + 1)?,
            c.text(ACCOUNT_COLUMNS + 2)?,
            c.text(ACCOUNT_COLUMNS + 3)?,
        ))
    }
}

/// The credential's columns are renamed in the derived table, so the
/// account's unqualified column names stay unambiguous. The `LIMIT` is a
/// literal (`MAX_CANDIDATES` + 1): a bound one makes SQLite prepare the
/// statement again on every run (about 30 times the cost of the read).
const FEDERATED_SQL: &str = concat!(
    "SELECT ",
    columns!(),
    context_columns!("service_accounts"),
    ", (SELECT created_at || ' ' || audience || ' ' || permissions FROM resource_servers \
       WHERE audience_key = $3 AND status = 'active' AND deleted_at IS NULL) AS requested, \
     fc.cred_id, fc.cred_audience, fc.cred_claims \
     FROM (SELECT id AS cred_id, account_id AS cred_account, \
           audience AS cred_audience, claims AS cred_claims FROM credentials \
           WHERE kind = 'federated' AND issuer = $1 AND subject = $2 \
           AND (expires_at IS NULL OR expires_at > $4)) fc \
     JOIN service_accounts ON service_accounts.id = fc.cred_account \
     WHERE service_accounts.deleted_at IS NULL \
     AND ($5 IS NULL OR service_accounts.client_id = $5) \
     LIMIT 17"
);

/// The most candidates one token may have (one more is read, to tell).
pub const MAX_CANDIDATES: usize = 16;

impl Db {
    /// The unexpired federated credentials for `issuer` and `subject` at
    /// `now`, on accounts not deleted (only `client_id`'s, when given),
    /// with each account and what `audience` is (when asked): the
    /// jwt-bearer and token-exchange grants' one round trip. At most
    /// `MAX_CANDIDATES` + 1: more than `MAX_CANDIDATES` means too many to
    /// choose from.
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "federated_candidates")
    )]
    pub async fn federated_candidates(
        &self,
        issuer: &str,
        subject: &str,
        audience: Option<&str>,
        client_id: Option<&str>,
        now: i64,
    ) -> DbResult<Vec<FederatedCandidate>> {
        // The credential's columns are renamed in the derived table, so
        // the account's unqualified column names stay unambiguous.
        let params = [
            Param::Text(issuer),
            Param::Text(subject),
            Param::OptText(audience),
            Param::Int(now),
            Param::OptText(client_id),
        ];
        let rows: Vec<Row> = self.read_hot_all(FEDERATED_SQL, &params).await?;
        rows.into_iter()
            .map(|Row(a, requested, credential_id, audience, claims)| {
                let requested = Audience::decode(requested.as_deref())?;
                Ok(FederatedCandidate {
                    credential_id,
                    audience,
                    claims,
                    account: ServiceAccount::try_from(a)?,
                    requested,
                })
            })
            .collect()
    }
}

/// One key source a credential names: 0 an issuer, 1 a `jwks_uri`.
struct NamedSource(i64, String);

impl super::rows::Decode for NamedSource {
    fn decode<C: super::rows::Cols>(c: &C) -> Result<Self, C::Error> {
        Ok(Self(c.int(0)?, c.text(1)?))
    }
}

impl Db {
    /// The key sources unexpired credentials of live accounts name: the
    /// federated credentials' issuers, and the `jwks_uri`s of key
    /// credentials (the issuer-key cache is sized and kept by these).
    pub async fn named_key_sources(
        &self,
        now: i64,
    ) -> DbResult<(
        std::collections::HashSet<String>,
        std::collections::HashSet<String>,
    )> {
        let rows: Vec<NamedSource> = self
            .read_all(
                "SELECT DISTINCT CAST(CASE WHEN c.kind = 'federated' THEN 0 ELSE 1 END AS BIGINT), \
                 COALESCE(c.issuer, c.jwks_uri) FROM credentials c \
                 JOIN service_accounts a ON a.id = c.account_id \
                 WHERE a.deleted_at IS NULL AND (c.expires_at IS NULL OR c.expires_at > $1) \
                 AND COALESCE(c.issuer, c.jwks_uri) IS NOT NULL",
                &[super::rows::Param::Int(now)],
            )
            .await?;
        let mut out: (
            std::collections::HashSet<String>,
            std::collections::HashSet<String>,
        ) = Default::default();
        for NamedSource(kind, url) in rows {
            if kind == 0 {
                out.0.insert(url);
            } else {
                out.1.insert(url);
            }
        }
        Ok(out)
    }
}
