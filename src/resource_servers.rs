//! Registering resource servers (operator only, from the CLI).
use serde_json::json;

use crate::accounts::{Actor, ManageError, rfc3339};
use crate::crypto::secrets::hash_blocking;
use crate::db::resource_servers::RsChange;
use crate::db::{AuditEvent, Db};
use crate::domain::account::{InvalidField, Status, validate_name};
use crate::domain::credentials::ClientSecret;
use crate::domain::resource_server::{
    ResourceServer, generate_client_id, is_issuer, validate_audience,
};

fn event(
    actor: &Actor,
    action: &str,
    target: &str,
    at: i64,
    details: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        org_id: None,
        at,
        actor_type: actor.kind.clone(),
        actor_id: actor.id.clone(),
        action: action.into(),
        target_type: Some("resource_server".into()),
        target_id: Some(target.into()),
        source_ip: actor.source_ip.clone(),
        details,
    }
}

/// Registers a resource server. `issuer` is warden's own: no resource
/// server may take it as its audience.
pub async fn create(
    db: &Db,
    name: &str,
    audience: &str,
    issuer: &str,
    actor: &Actor,
    now: i64,
) -> Result<(ResourceServer, ClientSecret), ManageError> {
    let name = validate_name(name)?;
    let audience = validate_audience(audience)?;
    if is_issuer(&audience, issuer) {
        return Err(ManageError::Invalid(InvalidField {
            field: "audience",
            reason: format!(
                "`{audience}` is warden's own issuer URL (the admin API's audience); \
                 a resource server with it could introspect and revoke every org's admin tokens"
            ),
        }));
    }
    let secret = ClientSecret::generate();
    let s = secret.clone();
    let secret_hash = tokio::task::spawn_blocking(move || hash_blocking(&s))
        .await
        .map_err(|_| ManageError::Hash)?
        .map_err(|_| ManageError::Hash)?;
    let rs = ResourceServer {
        id: uuid::Uuid::now_v7().to_string(),
        name,
        audience,
        client_id: generate_client_id(),
        secret_hash,
        status: Status::Active,
        created_at: now,
        created_by: format!("{}:{}", actor.kind, actor.id),
        deleted_at: None,
    };
    let ev = event(
        actor,
        "resource_server.created",
        &rs.id,
        now,
        json!({"name": rs.name, "audience": rs.audience, "client_id": rs.client_id}),
    );
    db.insert_resource_server(&rs, &ev)
        .await
        .map_err(|e| match e {
            crate::db::DbError::Conflict(m) => ManageError::Conflict(m),
            other => ManageError::Db(other),
        })?;
    Ok((rs, secret))
}

async fn live(db: &Db, key: &str) -> Result<ResourceServer, ManageError> {
    match db.find_resource_server(key).await? {
        Some(r) if r.deleted_at.is_none() => Ok(r),
        _ => Err(ManageError::NotFound),
    }
}

pub async fn set_status(
    db: &Db,
    key: &str,
    status: Status,
    actor: &Actor,
    now: i64,
) -> Result<ResourceServer, ManageError> {
    let r = live(db, key).await?;
    let action = if status == Status::Active {
        "resource_server.enabled"
    } else {
        "resource_server.disabled"
    };
    db.set_resource_server_status(&r.id, status, &event(actor, action, &r.id, now, json!({})))
        .await?;
    live(db, &r.id).await
}

pub async fn delete(
    db: &Db,
    key: &str,
    actor: &Actor,
    now: i64,
) -> Result<ResourceServer, ManageError> {
    let r = live(db, key).await?;
    db.delete_resource_server(
        &r.id,
        now,
        &event(actor, "resource_server.deleted", &r.id, now, json!({})),
    )
    .await?;
    db.find_resource_server(&r.id)
        .await?
        .ok_or(ManageError::NotFound)
}

/// Replaces the secret: the old one stops working at once.
pub async fn reset_secret(
    db: &Db,
    key: &str,
    actor: &Actor,
    now: i64,
) -> Result<(ResourceServer, ClientSecret), ManageError> {
    let r = live(db, key).await?;
    let secret = ClientSecret::generate();
    let s = secret.clone();
    let hash = tokio::task::spawn_blocking(move || hash_blocking(&s))
        .await
        .map_err(|_| ManageError::Hash)?
        .map_err(|_| ManageError::Hash)?;
    let ev = event(actor, "resource_server.secret_reset", &r.id, now, json!({}));
    if !db
        .update_resource_server(&r.id, RsChange::SecretHash(&hash), &ev)
        .await?
    {
        return Err(ManageError::NotFound);
    }
    Ok((live(db, &r.id).await?, secret))
}

/// Renames a resource server (its audience never changes: tokens carry it).
pub async fn rename(
    db: &Db,
    key: &str,
    name: &str,
    actor: &Actor,
    now: i64,
) -> Result<ResourceServer, ManageError> {
    let r = live(db, key).await?;
    let name = validate_name(name)?;
    let ev = event(
        actor,
        "resource_server.updated",
        &r.id,
        now,
        json!({"name": {"from": r.name, "to": name}}),
    );
    if !db
        .update_resource_server(&r.id, RsChange::Name(&name), &ev)
        .await?
    {
        return Err(ManageError::NotFound);
    }
    live(db, &r.id).await
}

pub fn to_json(r: &ResourceServer) -> serde_json::Value {
    json!({
        "id": r.id,
        "name": r.name,
        "audience": r.audience,
        "client_id": r.client_id,
        "status": r.status.as_str(),
        "created_at": rfc3339(Some(r.created_at)),
        "created_by": r.created_by,
        "deleted_at": rfc3339(r.deleted_at),
    })
}
