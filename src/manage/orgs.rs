//! Organizations.
use serde_json::json;

use super::{Actor, ManageError, invalid};
use crate::db::{Db, DbError};
use crate::domain::text::{validate_name, validate_org_slug};

/// Creates an organization; its name defaults to the slug.
pub async fn create(
    db: &Db,
    slug: &str,
    name: Option<&str>,
    actor: &Actor,
    now: i64,
) -> Result<String, ManageError> {
    let slug = validate_org_slug(slug)?;
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
