//! Organizations.
use serde_json::json;

use super::{Actor, ManageError, invalid};
use crate::db::orgs::Org;
use crate::db::{Db, DbError};
use crate::domain::account::Status;
use crate::domain::ip::IpAllowlist;
use crate::domain::text::{validate_name, validate_org_slug};

/// An organization as the API and the CLI show it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OrgView {
    /// Never changes; what tokens carry in `org`.
    pub slug: String,
    pub name: String,
    /// `active`, or `disabled`: every account in it acts as disabled.
    pub status: String,
    /// Applies on top of each account's allowlist; empty: no restriction.
    pub allowed_ips: Vec<String>,
    /// RFC 3339.
    pub created_at: Option<String>,
}

impl From<&Org> for OrgView {
    fn from(o: &Org) -> Self {
        Self {
            slug: o.slug.clone(),
            name: o.name.clone(),
            status: o.status.as_str().to_owned(),
            allowed_ips: o.allowed_ips.entries(),
            created_at: crate::domain::rfc3339(o.created_at),
        }
    }
}

/// Creates an organization; its name defaults to the slug.
pub async fn create(
    db: &Db,
    slug: &str,
    name: Option<&str>,
    actor: &Actor,
    now: i64,
) -> Result<String, ManageError> {
    let slug = validate_org_slug(slug).map_err(|e| invalid("slug", e.reason))?;
    let name = match name {
        Some(n) => validate_name(n).map_err(|e| invalid("name", e.reason))?,
        None => slug.clone(),
    };
    let ev = actor
        .record("org.created", ("org", &slug), now)
        .in_org(&slug)
        .with(json!({"name": name}));
    db.create_org(&slug, &name, now, &ev)
        .await
        .map_err(|e| match e {
            DbError::Conflict(m) => ManageError::Conflict(m),
            other => ManageError::Db(other),
        })?;
    Ok(slug)
}

async fn live(db: &Db, slug: &str) -> Result<Org, ManageError> {
    db.find_org(slug).await?.ok_or(ManageError::NotFound)
}

/// Disables or enables an org: every account in it acts as disabled (or
/// as itself again), at once, on every replica.
pub async fn set_status(
    db: &Db,
    slug: &str,
    status: Status,
    actor: &Actor,
    now: i64,
) -> Result<Org, ManageError> {
    let mut org = live(db, slug).await?;
    if org.status == status {
        return Ok(org);
    }
    let action = match status {
        Status::Active => "org.enabled",
        Status::Disabled => "org.disabled",
    };
    let details = json!({"status": {"from": org.status.as_str(), "to": status.as_str()}});
    org.status = status;
    let ev = actor.record(action, ("org", slug), now).in_org(slug);
    write(db, &org, actor, ev.with(details)).await
}

/// Renames an org or replaces its allowlist (`None` keeps a field).
pub async fn update(
    db: &Db,
    slug: &str,
    name: Option<&str>,
    allowed_ips: Option<&[String]>,
    actor: &Actor,
    now: i64,
) -> Result<Org, ManageError> {
    let mut org = live(db, slug).await?;
    let mut changed = serde_json::Map::new();
    if let Some(n) = name {
        let n = validate_name(n).map_err(|e| invalid("name", e.reason))?;
        changed.insert("name".into(), json!({"from": org.name, "to": n}));
        org.name = n;
    }
    if let Some(ips) = allowed_ips {
        let list = IpAllowlist::parse(ips).map_err(|e| invalid("allowed_ips", e.to_string()))?;
        changed.insert(
            "allowed_ips".into(),
            json!({"from": org.allowed_ips.entries(), "to": list.entries()}),
        );
        org.allowed_ips = list;
    }
    let ev = actor.record("org.updated", ("org", slug), now).in_org(slug);
    write(db, &org, actor, ev.with(serde_json::Value::Object(changed))).await
}

async fn write(
    db: &Db,
    org: &Org,
    actor: &Actor,
    ev: crate::db::AuditEvent,
) -> Result<Org, ManageError> {
    refuse_lockout(db, org, actor).await?;
    if !db.update_org(org, &ev).await? {
        return Err(ManageError::NotFound);
    }
    live(db, &org.slug).await
}

/// No lockout through the API: a caller may not disable its own account's
/// org, nor give it an allowlist its own address is outside (409). The
/// CLI stays the way back.
async fn refuse_lockout(db: &Db, org: &Org, actor: &Actor) -> Result<(), ManageError> {
    let Some(me) = actor.own_account() else {
        return Ok(());
    };
    match db.find_account(None, me).await? {
        Some(mine) if mine.org_id == org.slug => {}
        _ => return Ok(()),
    }
    if org.status == Status::Disabled {
        return Err(ManageError::Conflict(
            "refused: this would lock you out (your own account is in this organization)".into(),
        ));
    }
    let ip = actor.source_ip.as_deref().and_then(|i| i.parse().ok());
    if !org.allowed_ips.permits(ip) {
        return Err(ManageError::Conflict(format!(
            "refused: this would lock you out (your address {} would be outside the organization's allowlist)",
            actor.source_ip.as_deref().unwrap_or("(unknown)")
        )));
    }
    Ok(())
}
