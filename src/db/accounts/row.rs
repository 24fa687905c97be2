//! The `service_accounts` row: decoded once, by column index, for every
//! driver, and turned into a `ServiceAccount`.
use std::collections::BTreeMap;

use crate::db::rows::{Cols, Decode};
use crate::db::{DbError, DbResult};
use crate::domain::account::{AccountKind, OrgState, ServiceAccount, Status};
use crate::domain::ip::IpAllowlist;

/// A `service_accounts` row as stored (`columns!()`, in order).
pub(crate) struct AccountRow {
    id: String,
    org_id: String,
    kind: String,
    name: String,
    description: String,
    client_id: Option<String>,
    secret_hash: Option<String>,
    credential_epoch: i64,
    integration: Option<String>,
    roles: String,
    allowed_ips: String,
    expires_at: Option<i64>,
    status: String,
    created_at: i64,
    created_by: String,
    last_used_at: Option<i64>,
    deleted_at: Option<i64>,
    secret_prefix: Option<String>,
    secret_created_at: Option<i64>,
    previous_secrets: String,
    version: i64,
    last_used_ip: Option<String>,
    allowed_resources: String,
    org_status: String,
    org_allowed_ips: String,
    stored_roles: String,
}

/// The number of columns an account read selects: `columns!()` and
/// `context_columns!()`.
pub(crate) const ACCOUNT_COLUMNS: usize = 26;

impl AccountRow {
    /// Decodes `columns!()` starting at column `at`.
    pub(crate) fn decode_at<C: Cols>(r: &C, at: usize) -> Result<Self, C::Error> {
        Ok(Self {
            id: r.text(at)?,
            org_id: r.text(at + 1)?,
            kind: r.text(at + 2)?,
            name: r.text(at + 3)?,
            description: r.text(at + 4)?,
            client_id: r.opt_text(at + 5)?,
            secret_hash: r.opt_text(at + 6)?,
            credential_epoch: r.int(at + 7)?,
            integration: r.opt_text(at + 8)?,
            roles: r.text(at + 9)?,
            allowed_ips: r.text(at + 10)?,
            expires_at: r.opt_int(at + 11)?,
            status: r.text(at + 12)?,
            created_at: r.int(at + 13)?,
            created_by: r.text(at + 14)?,
            last_used_at: r.opt_int(at + 15)?,
            deleted_at: r.opt_int(at + 16)?,
            secret_prefix: r.opt_text(at + 17)?,
            secret_created_at: r.opt_int(at + 18)?,
            previous_secrets: r.text(at + 19)?,
            version: r.int(at + 20)?,
            last_used_ip: r.opt_text(at + 21)?,
            allowed_resources: r.text(at + 22)?,
            org_status: r.text(at + 23)?,
            org_allowed_ips: r.text(at + 24)?,
            stored_roles: r.text(at + 25)?,
        })
    }
}

impl Decode for AccountRow {
    fn decode<C: Cols>(c: &C) -> Result<Self, C::Error> {
        Self::decode_at(c, 0)
    }
}

impl TryFrom<AccountRow> for ServiceAccount {
    type Error = DbError;
    fn try_from(r: AccountRow) -> DbResult<Self> {
        let corrupt = |what: &str| {
            DbError::Sqlx(sqlx::Error::Decode(
                format!("service_accounts.{what}").into(),
            ))
        };
        Ok(Self {
            kind: AccountKind::parse(&r.kind).ok_or_else(|| corrupt("kind"))?,
            status: Status::parse(&r.status).ok_or_else(|| corrupt("status"))?,
            roles: r
                .roles
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            allowed_ips: IpAllowlist::parse_stored(&r.allowed_ips),
            previous_secrets: if r.previous_secrets.is_empty() {
                Vec::new()
            } else {
                serde_json::from_str(&r.previous_secrets)
                    .map_err(|_| corrupt("previous_secrets"))?
            },
            version: r.version,
            allowed_resources: r
                .allowed_resources
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            org: OrgState {
                status: Status::parse(&r.org_status).ok_or_else(|| corrupt("org status"))?,
                allowed_ips: IpAllowlist::parse_stored(&r.org_allowed_ips),
            },
            stored_roles: decode_stored_roles(&r.stored_roles, &r.roles),
            last_used_ip: r.last_used_ip,
            secret_prefix: r.secret_prefix,
            secret_created_at: r.secret_created_at,
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            description: r.description,
            client_id: r.client_id,
            secret_hash: r.secret_hash,
            credential_epoch: r.credential_epoch,
            integration: r.integration,
            expires_at: r.expires_at,
            created_at: r.created_at,
            created_by: r.created_by,
            last_used_at: r.last_used_at,
            deleted_at: r.deleted_at,
        })
    }
}

/// The stored roles' definitions as `context_columns!()` reads them
/// (`id=perm perm;id=perm`), kept for the roles the account holds.
fn decode_stored_roles(s: &str, held: &str) -> BTreeMap<String, Vec<String>> {
    let held: Vec<&str> = held.split(' ').collect();
    s.split(';')
        .filter_map(|def| def.split_once('='))
        .filter(|(id, _)| held.contains(id))
        .map(|(id, perms)| (id.to_owned(), super::split_permissions(perms)))
        .collect()
}

pub(crate) fn convert(rows: Vec<AccountRow>) -> DbResult<Vec<ServiceAccount>> {
    rows.into_iter().map(ServiceAccount::try_from).collect()
}
