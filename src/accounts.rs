//! Account management operations shared by the CLI (the operator's
//! break-glass path) and the admin API: validation, the change, and its
//! audit record in one transaction.
use serde_json::json;

use crate::crypto::secrets::hash_blocking;
use crate::db::{AuditEvent, Db, DbError};
use crate::domain::account::{
    AccountKind, ExpiresIn, InvalidField, ServiceAccount, Status, validate_description, validate_integration,
    validate_name,
};
use crate::domain::credentials::{ClientId, ClientSecret};
use crate::domain::ip::IpAllowlist;
use crate::domain::roles::{builtin_permissions, valid_role_id};

/// Who is acting, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: String,
    pub id: String,
    pub source_ip: Option<String>,
}

impl Actor {
    pub fn operator() -> Self {
        Self { kind: crate::db::audit::OPERATOR_TYPE.into(), id: crate::db::audit::OPERATOR_ID.into(), source_ip: None }
    }

    fn event(&self, org: &str, action: &str, target: &str, at: i64, details: serde_json::Value) -> AuditEvent {
        AuditEvent {
            org_id: Some(org.to_owned()),
            at,
            actor_type: self.kind.clone(),
            actor_id: self.id.clone(),
            action: action.to_owned(),
            target_type: Some("service_account".into()),
            target_id: Some(target.to_owned()),
            source_ip: self.source_ip.clone(),
            details,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("{0}")]
    Invalid(InvalidField),
    #[error("service account not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("hashing the secret failed")]
    Hash,
}

impl From<InvalidField> for ManageError {
    fn from(e: InvalidField) -> Self {
        Self::Invalid(e)
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ManageError {
    ManageError::Invalid(InvalidField { field, reason: reason.into() })
}

/// What a caller asks for when creating an account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub org: String,
    pub kind: AccountKind,
    pub name: String,
    pub description: String,
    pub integration: Option<String>,
    pub roles: Vec<String>,
    pub allowed_ips: Vec<String>,
    pub expires_in: Option<String>,
}

/// Checks that every role exists (built-in, or custom in `org`).
pub async fn validate_roles(db: &Db, org: &str, roles: &[String]) -> Result<Vec<String>, ManageError> {
    if roles.is_empty() {
        return Err(invalid("roles", "at least one role is required"));
    }
    let mut out: Vec<String> = Vec::new();
    let mut custom = Vec::new();
    for r in roles {
        if !valid_role_id(r) {
            return Err(invalid("roles", "role ids are lowercase letters, digits and '-'"));
        }
        if builtin_permissions(r).is_none() {
            custom.push(r.clone());
        }
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    let found = db.custom_role_permissions(org, &custom).await?;
    if let Some(missing) = custom.iter().find(|r| !found.contains_key(*r)) {
        return Err(invalid("roles", format!("unknown role `{missing}`")));
    }
    out.sort();
    Ok(out)
}

/// Creates an account; credential accounts get a secret, returned once.
pub async fn create(
    db: &Db,
    req: NewAccount,
    actor: &Actor,
    now: i64,
) -> Result<(ServiceAccount, Option<ClientSecret>), ManageError> {
    let name = validate_name(&req.name)?;
    let description = validate_description(&req.description)?;
    if !db.org_exists(&req.org).await? {
        return Err(invalid("org", format!("no organization `{}`", req.org.chars().take(63).collect::<String>())));
    }
    let roles = validate_roles(db, &req.org, &req.roles).await?;
    let allowed_ips = IpAllowlist::parse(&req.allowed_ips).map_err(|e| invalid("allowed_ips", e.to_string()))?;
    let expires_at = match req.expires_in.as_deref() {
        None => None,
        Some(s) => ExpiresIn::parse(s)
            .ok_or_else(|| invalid("expires_in", format!("must be one of {}", ExpiresIn::CHOICES)))?
            .expires_at(now),
    };
    let (client_id, secret, secret_hash, integration) = match req.kind {
        AccountKind::Credential => {
            if req.integration.is_some() {
                return Err(invalid("integration", "only integration accounts name an integration"));
            }
            let secret = ClientSecret::generate();
            let s = secret.clone();
            let hash = tokio::task::spawn_blocking(move || hash_blocking(&s))
                .await
                .map_err(|_| ManageError::Hash)?
                .map_err(|_| ManageError::Hash)?;
            (Some(ClientId::generate().to_string()), Some(secret), Some(hash), None)
        }
        AccountKind::Integration => {
            let i = req.integration.as_deref().ok_or_else(|| invalid("integration", "is required for integration accounts"))?;
            (None, None, None, Some(validate_integration(i)?))
        }
    };
    let account = ServiceAccount {
        id: uuid::Uuid::now_v7().to_string(),
        org_id: req.org.clone(),
        kind: req.kind,
        name,
        description,
        client_id,
        secret_hash,
        credential_epoch: 0,
        integration,
        roles,
        allowed_ips,
        expires_at,
        status: Status::Active,
        created_at: now,
        created_by: format!("{}:{}", actor.kind, actor.id),
        last_used_at: None,
        deleted_at: None,
    };
    let details = json!({
        "type": account.kind.as_str(),
        "name": account.name,
        "roles": account.roles,
        "allowed_ips": account.allowed_ips.entries(),
        "expires_at": account.expires_at,
        "client_id": account.client_id,
    });
    let ev = actor.event(&account.org_id, "service_account.created", &account.id, now, details);
    db.insert_account(&account, &ev).await?;
    Ok((account, secret))
}

async fn live(db: &Db, org: Option<&str>, key: &str) -> Result<ServiceAccount, ManageError> {
    match db.find_account(org, key).await? {
        Some(a) if !a.is_deleted() => Ok(a),
        _ => Err(ManageError::NotFound),
    }
}

pub async fn set_status(
    db: &Db,
    org: Option<&str>,
    key: &str,
    status: Status,
    actor: &Actor,
    now: i64,
) -> Result<ServiceAccount, ManageError> {
    let a = live(db, org, key).await?;
    let action = match status {
        Status::Active => "service_account.enabled",
        Status::Disabled => "service_account.disabled",
    };
    let ev = actor.event(&a.org_id, action, &a.id, now, json!({"status": {"from": a.status.as_str(), "to": status.as_str()}}));
    if !db.set_account_status(&a.id, status, &ev).await? {
        return Err(ManageError::NotFound);
    }
    live(db, None, &a.id).await
}

/// Issues a new secret; the old one stops working at once and refresh
/// tokens issued before are refused. Refused while disabled.
pub async fn reset_secret(
    db: &Db,
    org: Option<&str>,
    key: &str,
    actor: &Actor,
    now: i64,
) -> Result<(ServiceAccount, ClientSecret), ManageError> {
    let a = live(db, org, key).await?;
    if a.kind != AccountKind::Credential {
        return Err(ManageError::Conflict("integration accounts have no secret".into()));
    }
    if a.status == Status::Disabled {
        return Err(ManageError::Conflict("the service account is disabled; enable it before resetting its secret".into()));
    }
    let secret = ClientSecret::generate();
    let s = secret.clone();
    let hash = tokio::task::spawn_blocking(move || hash_blocking(&s))
        .await
        .map_err(|_| ManageError::Hash)?
        .map_err(|_| ManageError::Hash)?;
    let ev = actor.event(&a.org_id, "service_account.secret_reset", &a.id, now, json!({}));
    if !db.reset_account_secret(&a.id, &hash, &ev).await? {
        // Disabled or deleted between the read and the write.
        return Err(ManageError::Conflict("the service account changed concurrently; retry".into()));
    }
    Ok((live(db, None, &a.id).await?, secret))
}

pub async fn delete(db: &Db, org: Option<&str>, key: &str, actor: &Actor, now: i64) -> Result<ServiceAccount, ManageError> {
    let a = live(db, org, key).await?;
    let ev = actor.event(&a.org_id, "service_account.deleted", &a.id, now, json!({}));
    if !db.delete_account(&a.id, now, &ev).await? {
        return Err(ManageError::NotFound);
    }
    db.find_account(None, &a.id).await?.ok_or(ManageError::NotFound)
}

/// RFC 3339 for a Unix time (`null` for none).
pub fn rfc3339(t: Option<i64>) -> serde_json::Value {
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .map(serde_json::Value::String)
        .unwrap_or(serde_json::Value::Null)
}

/// The public JSON form of an account: never the secret or its hash.
pub fn to_json(a: &ServiceAccount) -> serde_json::Value {
    json!({
        "id": a.id,
        "org": a.org_id,
        "type": a.kind.as_str(),
        "name": a.name,
        "description": a.description,
        "client_id": a.client_id,
        "integration": a.integration,
        "roles": a.roles,
        "allowed_ips": a.allowed_ips.entries(),
        "expires_at": rfc3339(a.expires_at),
        "status": a.status.as_str(),
        "created_at": rfc3339(Some(a.created_at)),
        "created_by": a.created_by,
        "last_used_at": rfc3339(a.last_used_at),
        "deleted_at": rfc3339(a.deleted_at),
    })
}
