//! Resource servers (operator only, from the CLI): register, rename,
//! secrets, status, delete.
use serde_json::json;

use super::{Actor, ManageError, hash_off_runtime, invalid, rfc3339};
use crate::db::resource_servers::RsChange;
use crate::db::{AuditEvent, Db};
use crate::domain::account::Status;
use crate::domain::credentials::ClientSecret;
use crate::domain::credentials::{MAX_LIVE_SECRETS, secret_prefix, secrets_after_change};
use crate::domain::resource_server::{
    ResourceServer, generate_client_id, is_issuer, validate_audience,
};
use crate::domain::roles::{ApiPermission, validate_api_permission};
use crate::domain::text::{InvalidField, validate_name};

/// An audit event by `actor` about resource server `target` (no org: a
/// resource server serves every org).
fn event(
    actor: &Actor,
    action: &str,
    target: &str,
    at: i64,
    details: serde_json::Value,
) -> AuditEvent {
    actor
        .record(action, ("resource_server", target), at)
        .with(details)
}

/// A declaration as given, checked: each permission valid, none twice,
/// at most 200.
pub fn checked_permissions(mut p: Vec<ApiPermission>) -> Result<Vec<ApiPermission>, ManageError> {
    for one in &p {
        validate_api_permission(one).map_err(|why| invalid("permissions", why))?;
    }
    p.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = p.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(invalid(
            "permissions",
            format!("`{}` is declared twice", w[0].name),
        ));
    }
    if p.len() > 200 {
        return Err(invalid("permissions", "at most 200 permissions"));
    }
    Ok(p)
}

/// Registers a resource server with the permissions its tokens may carry. `issuer` is warden's own: no resource
/// server may take it as its audience.
pub async fn create(
    db: &Db,
    name: &str,
    audience: &str,
    permissions: Vec<ApiPermission>,
    issuer: &str,
    actor: &Actor,
    now: i64,
) -> Result<(ResourceServer, ClientSecret), ManageError> {
    let name = validate_name(name)?;
    let audience = validate_audience(audience)?;
    let permissions = checked_permissions(permissions)?;
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
    let secret_hash = hash_off_runtime(actor, &secret).await?;
    // Tokens issued before `created_at` are not this registration's (see
    // `PresentedTo::since`): a re-registration in the second its audience
    // was freed starts at the next one, so none of the old tokens passes.
    let created_at = match db.audience_freed_at(&audience).await? {
        Some(freed) => now.max(freed + 1),
        None => now,
    };
    let rs = ResourceServer {
        id: uuid::Uuid::now_v7().to_string(),
        name,
        audience,
        client_id: generate_client_id(),
        secret_prefix: Some(secret_prefix(secret.expose())),
        previous_secrets: Vec::new(),
        secret_hash,
        permissions,
        keys: Vec::new(),
        status: Status::Active,
        created_at,
        created_by: format!("{}:{}", actor.kind, actor.id),
        deleted_at: None,
        secret_created_at: Some(now),
    };
    let ev = event(
        actor,
        "resource_server.created",
        &rs.id,
        now,
        json!({"name": rs.name, "audience": rs.audience, "client_id": rs.client_id,
               "permissions": rs.permissions}),
    );
    db.insert_resource_server(&rs, &ev)
        .await
        .map_err(|e| match e {
            crate::db::DbError::Conflict(m) => ManageError::Conflict(m),
            other => ManageError::Db(other),
        })?;
    Ok((rs, secret))
}

pub(super) async fn live(db: &Db, key: &str) -> Result<ResourceServer, ManageError> {
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
    db.set_resource_server_status(&r, status, &event(actor, action, &r.id, now, json!({})))
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

/// Replaces the secret: every other one stops working at once.
pub async fn reset_secret(
    db: &Db,
    key: &str,
    actor: &Actor,
    now: i64,
) -> Result<(ResourceServer, ClientSecret), ManageError> {
    new_secret(db, key, None, actor, now).await
}

/// Issues a new secret while the current one keeps working for `grace`
/// seconds; secrets rotated out before keep their own grace. At most
/// `MAX_LIVE_SECRETS` work at once.
pub async fn rotate_secret(
    db: &Db,
    key: &str,
    grace: i64,
    actor: &Actor,
    now: i64,
) -> Result<(ResourceServer, ClientSecret), ManageError> {
    if !(0..=crate::manage::accounts::MAX_GRACE_SECS).contains(&grace) {
        return Err(ManageError::Invalid(InvalidField {
            field: "grace_period",
            reason: "must be between 0 seconds and 7 days".into(),
        }));
    }
    new_secret(db, key, Some(grace), actor, now).await
}

/// Reset (`grace` `None`) or rotation. Not retried: of two concurrent
/// changes exactly one succeeds, so nobody is told of a secret that does
/// not work.
async fn new_secret(
    db: &Db,
    key: &str,
    grace: Option<i64>,
    actor: &Actor,
    now: i64,
) -> Result<(ResourceServer, ClientSecret), ManageError> {
    let r = live(db, key).await?;
    let in_grace = r
        .previous_secrets
        .iter()
        .filter(|p| p.expires_at > now)
        .cloned()
        .collect();
    let current = (
        r.secret_prefix.as_deref().unwrap_or_default(),
        r.secret_hash.as_str(),
        r.secret_created_at,
    );
    let previous = secrets_after_change(in_grace, Some(current), grace, now).map_err(|_| {
        ManageError::Conflict(format!(
            "the resource server already has {MAX_LIVE_SECRETS} working secrets; \
             wait for a grace period to end, or reset the secret"
        ))
    })?;
    let secret = loop {
        let s = ClientSecret::generate();
        let p = secret_prefix(s.expose());
        if !previous.iter().any(|x| x.prefix == p) {
            break s;
        }
    };
    let prefix = secret_prefix(secret.expose());
    let hash = hash_off_runtime(actor, &secret).await?;
    let (action, details) = match grace {
        None => (
            "resource_server.secret_reset",
            json!({"secret_prefix": prefix}),
        ),
        Some(g) => (
            "resource_server.secret_rotated",
            json!({"secret_prefix": prefix, "grace_until": rfc3339(Some(now + g))}),
        ),
    };
    let ev = event(actor, action, &r.id, now, details);
    let change = RsChange::Secrets {
        hash: &hash,
        prefix: &prefix,
        previous: &previous,
        expected_hash: &r.secret_hash,
        made_at: now,
    };
    if !db.update_resource_server(&r.id, change, &ev).await? {
        return Err(ManageError::Conflict(
            "the resource server changed concurrently; retry".into(),
        ));
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

/// A resource server as the API and the CLI show it: never a secret's
/// hash; `client_secret` only in the create, reset and rotate answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ResourceServerView {
    pub id: String,
    pub name: String,
    /// The `aud` its tokens carry.
    pub audience: String,
    pub client_id: String,
    /// The permissions its tokens may carry; empty: every permission the
    /// account holds.
    pub permissions: Vec<ApiPermission>,
    /// `active` or `disabled`.
    pub status: String,
    pub created_at: Option<String>,
    pub created_by: String,
    pub deleted_at: Option<String>,
    /// The secrets that work now, by prefix (none once deleted).
    pub secrets: Vec<crate::manage::accounts::SecretView>,
    /// The public keys it may sign client assertions with
    /// (`private_key_jwt`), as a JWK Set.
    #[schema(value_type = Object)]
    pub jwks: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl ResourceServerView {
    pub fn new(r: &ResourceServer, secret: Option<&ClientSecret>) -> Self {
        let now = crate::now_unix();
        let ts = |t: Option<i64>| t.and_then(crate::domain::rfc3339);
        let mut secrets = vec![crate::manage::accounts::SecretView {
            prefix: r.secret_prefix.clone(),
            created_at: ts(r.secret_created_at),
            expires_at: None,
        }];
        secrets.extend(
            r.previous_secrets
                .iter()
                .filter(|p| p.expires_at > now)
                .map(|p| crate::manage::accounts::SecretView {
                    prefix: Some(p.prefix.clone()),
                    created_at: ts(p.created_at),
                    expires_at: ts(Some(p.expires_at)),
                }),
        );
        Self {
            id: r.id.clone(),
            name: r.name.clone(),
            audience: r.audience.clone(),
            client_id: r.client_id.clone(),
            permissions: r.permissions.clone(),
            status: r.status.as_str().to_owned(),
            created_at: ts(Some(r.created_at)),
            created_by: r.created_by.clone(),
            deleted_at: ts(r.deleted_at),
            secrets: if r.deleted_at.is_some() {
                Vec::new()
            } else {
                secrets
            },
            jwks: json!({"keys": r.keys.iter()
                .filter_map(|k| serde_json::from_str::<serde_json::Value>(k).ok())
                .collect::<Vec<_>>()}),
            client_secret: secret.map(|s| s.expose().to_owned()),
        }
    }
}

/// The CLI's JSON form.
pub fn to_json(r: &ResourceServer) -> serde_json::Value {
    serde_json::to_value(ResourceServerView::new(r, None)).unwrap_or_default()
}

/// Adds and removes declared permissions (a permission both added and
/// removed is removed). Tokens for the API carry the new set from the next
/// request, on every replica; a role keeps a removed permission, which then
/// reaches no token for this API.
pub async fn change_permissions(
    db: &Db,
    key: &str,
    add: Vec<ApiPermission>,
    remove: &[String],
    actor: &Actor,
    now: i64,
) -> Result<ResourceServer, ManageError> {
    let r = live(db, key).await?;
    if let Some(missing) = remove
        .iter()
        .find(|n| !r.permissions.iter().any(|p| &p.name == *n))
    {
        return Err(invalid(
            "permissions",
            format!("`{missing}` is not declared by this resource server"),
        ));
    }
    let mut next: Vec<ApiPermission> = r
        .permissions
        .iter()
        .filter(|p| !remove.contains(&p.name) && !add.iter().any(|a| a.name == p.name))
        .cloned()
        .collect();
    next.extend(add.into_iter().filter(|a| !remove.contains(&a.name)));
    let next = checked_permissions(next)?;
    let names = |l: &[ApiPermission]| l.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    let details = json!({"permissions": {"from": names(&r.permissions), "to": names(&next)}});
    let ev = event(actor, "resource_server.updated", &r.id, now, details);
    let change = RsChange::Permissions {
        now: &next,
        expected: &r.permissions,
    };
    if !db.update_resource_server(&r.id, change, &ev).await? {
        return Err(ManageError::Conflict(
            "the resource server changed concurrently; retry".into(),
        ));
    }
    live(db, &r.id).await
}
