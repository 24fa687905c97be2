//! Organizations.
use super::rows::{Cols, Decode, Param};
use super::write::{ChangeOutcome, OrgGuard, audited_write, unique_or_conflict};
use super::{AuditEvent, Db, DbError, DbResult, on_db};
use crate::domain::account::Status;
use crate::domain::ip::IpAllowlist;

/// An organization: slug, display name, status and allowlist.
#[derive(Debug, Clone)]
pub struct Org {
    pub slug: String,
    pub name: String,
    pub status: Status,
    pub allowed_ips: IpAllowlist,
    pub created_at: i64,
    /// Moves with every change (the API's ETag).
    pub version: i64,
}

/// A change to an org: only the fields named are written.
#[derive(Debug, Default)]
pub struct OrgChange<'a> {
    pub name: Option<&'a str>,
    pub status: Option<Status>,
    pub allowed_ips: Option<&'a IpAllowlist>,
}

/// `SELECT` of an org's columns, then `$tail`.
macro_rules! select_orgs {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, status, allowed_ips, created_at, version FROM orgs ",
            $tail
        )
    };
}

struct OrgRow(String, String, String, String, i64, i64);

impl Decode for OrgRow {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        Ok(Self(
            r.text(0)?,
            r.text(1)?,
            r.text(2)?,
            r.text(3)?,
            r.int(4)?,
            r.int(5)?,
        ))
    }
}

impl TryFrom<OrgRow> for Org {
    type Error = DbError;
    fn try_from(OrgRow(slug, name, status, ips, created_at, version): OrgRow) -> DbResult<Self> {
        Ok(Self {
            status: Status::parse(&status)
                .ok_or_else(|| DbError::Sqlx(sqlx::Error::Decode("orgs.status".into())))?,
            allowed_ips: IpAllowlist::parse_stored(&ips),
            slug,
            name,
            created_at,
            version,
        })
    }
}

impl Db {
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "create_org"))]
    pub async fn create_org(
        &self,
        slug: &str,
        name: &str,
        now: i64,
        audit: &AuditEvent,
    ) -> DbResult<()> {
        audited_write!(self, audit, None, |tx| {
            let res = sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(slug)
                .bind(name)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected());
            unique_or_conflict(res, || format!("org `{slug}` already exists"))?
        });
        Ok(())
    }

    /// Every organization, by slug.
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "list_orgs"))]
    pub async fn list_orgs(&self) -> DbResult<Vec<Org>> {
        let rows: Vec<OrgRow> = self.read_all(select_orgs!("ORDER BY id"), &[]).await?;
        rows.into_iter().map(Org::try_from).collect()
    }

    /// One organization, by slug.
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "find_org"))]
    pub async fn find_org(&self, slug: &str) -> DbResult<Option<Org>> {
        if slug.contains('\0') {
            return Ok(None);
        }
        let row: Option<OrgRow> = self
            .read_one(select_orgs!("WHERE id = $1"), &[Param::Text(slug)])
            .await?;
        row.map(Org::try_from).transpose()
    }

    /// Writes the fields `change` names (and only those) if the org is
    /// still at `version`, moving the version on, with its audit event and
    /// under the caller's guard. `Stale` when there is no such org or it
    /// moved on since it was read (nothing written).
    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "update_org"))]
    pub async fn update_org(
        &self,
        slug: &str,
        version: i64,
        change: &OrgChange<'_>,
        audit: &AuditEvent,
        guard: Option<&OrgGuard<'_>>,
    ) -> DbResult<ChangeOutcome> {
        Ok(audited_write!(self, audit, guard, |tx| sqlx::query(
            "UPDATE orgs SET name = COALESCE($2, name), status = COALESCE($3, status), \
             allowed_ips = COALESCE($4, allowed_ips), version = version + 1 \
             WHERE id = $1 AND version = $5"
        )
        .bind(slug)
        .bind(change.name)
        .bind(change.status.map(|s| s.as_str()))
        .bind(change.allowed_ips.map(IpAllowlist::to_stored))
        .bind(version)
        .execute(&mut *tx)
        .await?
        .rows_affected()))
    }

    #[tracing::instrument(name = "db", level = "debug", skip_all, fields(op = "org_exists"))]
    pub async fn org_exists(&self, slug: &str) -> DbResult<bool> {
        let n: Option<(String,)> = on_db!(self, p => sqlx::query_as("SELECT id FROM orgs WHERE id = $1")
            .bind(slug).fetch_optional(p).await?);
        Ok(n.is_some())
    }
}
