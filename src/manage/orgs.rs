//! Organizations.
use serde_json::json;

use super::accounts::ATTEMPTS;
use super::{Actor, ManageError, invalid};
use crate::db::orgs::{Org, OrgChange};
use crate::db::write::{ChangeOutcome, OrgSnapshot};
use crate::db::{AuditEvent, Db, DbError};
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
    let action = match status {
        Status::Active => "org.enabled",
        Status::Disabled => "org.disabled",
    };
    write(db, slug, None, actor, |org| {
        if org.status == status {
            return Ok(None);
        }
        let details = json!({"status": {"from": org.status.as_str(), "to": status.as_str()}});
        let ev = actor.record(action, ("org", slug), now).in_org(slug);
        let change = OrgChange {
            status: Some(status),
            ..Default::default()
        };
        Ok(Some((change, ev.with(details))))
    })
    .await
}

/// Renames an org or replaces its allowlist (`None` keeps a field); with
/// `if_version` (the ETag an admin read), only if the org is still at it.
pub async fn update(
    db: &Db,
    slug: &str,
    name: Option<&str>,
    allowed_ips: Option<&[String]>,
    if_version: Option<i64>,
    actor: &Actor,
    now: i64,
) -> Result<Org, ManageError> {
    let name = name
        .map(|n| validate_name(n).map_err(|e| invalid("name", e.reason)))
        .transpose()?;
    let list = allowed_ips
        .map(|ips| IpAllowlist::parse(ips).map_err(|e| invalid("allowed_ips", e.to_string())))
        .transpose()?;
    write(db, slug, if_version, actor, |org| {
        let mut changed = serde_json::Map::new();
        if let Some(n) = &name {
            changed.insert("name".into(), json!({"from": org.name, "to": n}));
        }
        if let Some(list) = &list {
            changed.insert(
                "allowed_ips".into(),
                json!({"from": org.allowed_ips.entries(), "to": list.entries()}),
            );
        }
        let ev = actor.record("org.updated", ("org", slug), now).in_org(slug);
        let change = OrgChange {
            name: name.as_deref(),
            allowed_ips: list.as_ref(),
            ..Default::default()
        };
        Ok(Some((change, ev.with(serde_json::Value::Object(changed)))))
    })
    .await
}

/// One change to an org, judged on the org as read: `make` says what to
/// write and its audit event (`None`: nothing to do), then it is written
/// only if the org is still at the version read, and re-read and judged
/// again when it moved on (`ATTEMPTS` times), so no write puts back a
/// value another one replaced and the audit's `from` is what was replaced.
/// With `if_version` a moved-on org is 412 instead. The caller's guard
/// runs in the write's transaction (a caller disabled or fenced meanwhile
/// writes nothing), and so does the lockout rule for its own org.
async fn write<'c>(
    db: &Db,
    slug: &str,
    if_version: Option<i64>,
    actor: &Actor,
    make: impl Fn(&Org) -> Result<Option<(OrgChange<'c>, AuditEvent)>, ManageError>,
) -> Result<Org, ManageError> {
    for _ in 0..ATTEMPTS {
        let org = live(db, slug).await?;
        if if_version.is_some_and(|v| v != org.version) {
            return Err(ManageError::PreconditionFailed);
        }
        let Some((change, ev)) = make(&org)? else {
            return Ok(org);
        };
        let after = Org {
            status: change.status.unwrap_or(org.status),
            allowed_ips: change
                .allowed_ips
                .cloned()
                .unwrap_or_else(|| org.allowed_ips.clone()),
            ..org.clone()
        };
        refuse_lockout(db, &after, actor).await?;
        let check = |s: &OrgSnapshot| actor.check_in_write(None, false, s);
        let guard = actor.guard(slug, false, &check);
        match db
            .update_org(slug, org.version, &change, &ev, guard.as_ref())
            .await?
        {
            ChangeOutcome::Done => return live(db, slug).await,
            ChangeOutcome::Refused(why) => return Err(ManageError::Conflict(why)),
            ChangeOutcome::Stale if if_version.is_some() => {
                return Err(ManageError::PreconditionFailed);
            }
            ChangeOutcome::Stale => {}
        }
    }
    Err(ManageError::Conflict(
        "the organization changed concurrently; retry".into(),
    ))
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
