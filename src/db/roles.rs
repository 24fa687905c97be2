//! Custom roles (built-in ones are in code, `domain::roles`).
use std::collections::HashMap;

use super::accounts::split_permissions;
use super::rows::{Cols, Decode, Param};
use super::write::{ChangeOutcome, OrgGuard, audited_write, unique_or_conflict};
use super::{AuditEvent, Db, DbResult, on_db};

/// A custom role as stored.
#[derive(Debug, Clone)]
pub struct CustomRole {
    pub org_id: String,
    pub id: String,
    pub description: String,
    pub permissions: String,
    pub created_at: i64,
    pub created_by: String,
}

impl Decode for CustomRole {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        Ok(Self {
            org_id: r.text(0)?,
            id: r.text(1)?,
            description: r.text(2)?,
            permissions: r.text(3)?,
            created_at: r.int(4)?,
            created_by: r.text(5)?,
        })
    }
}

impl CustomRole {
    /// The permissions, as stored space-separated.
    pub fn permission_list(&self) -> Vec<String> {
        split_permissions(&self.permissions)
    }
}

impl Db {
    /// Permissions of the named custom roles of `org` (built-ins are in code).
    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "custom_role_permissions")
    )]
    pub async fn custom_role_permissions(
        &self,
        org: &str,
        roles: &[String],
    ) -> DbResult<HashMap<String, Vec<String>>> {
        let mut out = HashMap::new();
        for role in roles {
            let row: Option<(String,)> = on_db!(self, p => sqlx::query_as(
                "SELECT permissions FROM roles WHERE org_id = $1 AND id = $2",
            )
            .bind(org)
            .bind(role)
            .fetch_optional(p)
            .await?);
            if let Some((perms,)) = row {
                out.insert(role.clone(), split_permissions(&perms));
            }
        }
        Ok(out)
    }

    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "list_custom_roles")
    )]
    pub async fn list_custom_roles(&self, org: &str) -> DbResult<Vec<CustomRole>> {
        let sql = "SELECT org_id, id, description, permissions, created_at, created_by \
                   FROM roles WHERE org_id = $1 ORDER BY id";
        self.read_all(sql, &[Param::Text(org)]).await
    }

    #[tracing::instrument(
        name = "db",
        level = "debug",
        skip_all,
        fields(op = "insert_custom_role")
    )]
    pub async fn insert_custom_role(
        &self,
        r: &CustomRole,
        audit: &AuditEvent,
        guard: Option<&OrgGuard<'_>>,
    ) -> DbResult<ChangeOutcome> {
        Ok(audited_write!(self, audit, guard, |tx| {
            let res = sqlx::query(
                "INSERT INTO roles (org_id, id, description, permissions, created_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&r.org_id)
            .bind(&r.id)
            .bind(&r.description)
            .bind(&r.permissions)
            .bind(r.created_at)
            .bind(&r.created_by)
            .execute(&mut *tx)
            .await
            .map(|r| r.rows_affected());
            unique_or_conflict(res, || format!("role `{}` already exists", r.id))?
        }))
    }
}
