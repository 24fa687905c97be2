//! Account management operations shared by the CLI (the operator's
//! break-glass path) and the admin API: validation, the change, and its
//! audit record in one transaction.
use serde_json::json;

use crate::crypto::secrets::hash_blocking;
use crate::db::accounts::SecretChange;
use crate::db::{AuditEvent, Db, DbError};
use crate::domain::account::{
    AccountKind, ExpiresIn, InvalidField, ServiceAccount, Status, secret_prefix,
    validate_description, validate_integration, validate_name,
};
use crate::domain::credentials::{ClientId, ClientSecret};
use crate::domain::ip::IpAllowlist;
use crate::domain::roles::{builtin_permissions, valid_role_id};

/// Who is acting: for the audit log, and for what they may grant.
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: String,
    pub id: String,
    pub source_ip: Option<String>,
    /// `None` for the local operator (may grant anything); for a service
    /// account, the roles and permissions its token holds right now.
    pub authority: Option<Authority>,
}

#[derive(Debug, Clone)]
pub struct Authority {
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
}

impl Actor {
    pub fn operator() -> Self {
        Self {
            kind: crate::db::audit::OPERATOR_TYPE.into(),
            id: crate::db::audit::OPERATOR_ID.into(),
            source_ip: None,
            authority: None,
        }
    }

    /// Grant rules: a caller cannot hand out a permission it does not hold,
    /// and only an `admin` may grant `admin`.
    pub fn check_may_grant(&self, role: &str, permissions: &[String]) -> Result<(), ManageError> {
        let Some(auth) = &self.authority else {
            return Ok(());
        };
        if role == "admin" && !auth.roles.iter().any(|r| r == "admin") {
            return Err(ManageError::Forbidden(
                "only an admin may grant the admin role".into(),
            ));
        }
        if let Some(p) = permissions.iter().find(|p| !auth.permissions.contains(p)) {
            return Err(ManageError::Forbidden(format!(
                "cannot grant `{role}`: you do not hold `{p}`"
            )));
        }
        Ok(())
    }

    fn event(
        &self,
        org: &str,
        action: &str,
        target: &str,
        at: i64,
        details: serde_json::Value,
    ) -> AuditEvent {
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
    #[error("{0}")]
    Forbidden(String),
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
    ManageError::Invalid(InvalidField {
        field,
        reason: reason.into(),
    })
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

/// Checks that every role exists (built-in, or custom in `org`) and that
/// `actor` may grant each one not in `already_held`.
pub async fn validate_roles(
    db: &Db,
    org: &str,
    roles: &[String],
    actor: &Actor,
    already_held: &[String],
) -> Result<Vec<String>, ManageError> {
    if roles.is_empty() {
        return Err(invalid("roles", "at least one role is required"));
    }
    let mut out: Vec<String> = Vec::new();
    let mut custom = Vec::new();
    for r in roles {
        if !valid_role_id(r) {
            return Err(invalid(
                "roles",
                "role ids are lowercase letters, digits and '-'",
            ));
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
    for r in out.iter().filter(|r| !already_held.contains(r)) {
        let perms: Vec<String> = match builtin_permissions(r) {
            Some(p) => p.iter().map(|s| (*s).to_owned()).collect(),
            None => found.get(r).cloned().unwrap_or_default(),
        };
        actor.check_may_grant(r, &perms)?;
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
        return Err(invalid(
            "org",
            format!(
                "no organization `{}`",
                req.org.chars().take(63).collect::<String>()
            ),
        ));
    }
    let roles = validate_roles(db, &req.org, &req.roles, actor, &[]).await?;
    let allowed_ips =
        IpAllowlist::parse(&req.allowed_ips).map_err(|e| invalid("allowed_ips", e.to_string()))?;
    let expires_at = match req.expires_in.as_deref() {
        None => None,
        Some(s) => ExpiresIn::parse(s)
            .ok_or_else(|| {
                invalid(
                    "expires_in",
                    format!("must be one of {}", ExpiresIn::CHOICES),
                )
            })?
            .expires_at(now),
    };
    let (client_id, secret, secret_hash, integration) = match req.kind {
        AccountKind::Credential => {
            if req.integration.is_some() {
                return Err(invalid(
                    "integration",
                    "only integration accounts name an integration",
                ));
            }
            let secret = ClientSecret::generate();
            let hash = hash_off_runtime(&secret).await?;
            (
                Some(ClientId::generate().to_string()),
                Some(secret),
                Some(hash),
                None,
            )
        }
        AccountKind::Integration => {
            let i = req
                .integration
                .as_deref()
                .ok_or_else(|| invalid("integration", "is required for integration accounts"))?;
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
        secret_prefix: secret.as_ref().map(|s| secret_prefix(s.expose())),
        secret_created_at: secret.as_ref().map(|_| now),
        previous_secret: None,
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
    let ev = actor.event(
        &account.org_id,
        "service_account.created",
        &account.id,
        now,
        details,
    );
    db.insert_account(&account, &ev).await?;
    Ok((account, secret))
}

/// The editable fields; `None` keeps the current value. `expires_in`
/// `never` clears the expiry.
#[derive(Debug, Default, Clone)]
pub struct AccountPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub roles: Option<Vec<String>>,
    pub allowed_ips: Option<Vec<String>>,
    pub expires_in: Option<String>,
}

pub async fn update(
    db: &Db,
    org: Option<&str>,
    key: &str,
    patch: AccountPatch,
    actor: &Actor,
    now: i64,
) -> Result<ServiceAccount, ManageError> {
    let before = match db.find_account(org, key).await? {
        Some(a) if a.is_deleted() => {
            return Err(ManageError::Conflict(
                "a deleted service account cannot be edited".into(),
            ));
        }
        Some(a) => a,
        None => return Err(ManageError::NotFound),
    };
    let mut a = before.clone();
    let mut changed = serde_json::Map::new();
    let mut note = |field: &str, from: serde_json::Value, to: serde_json::Value| {
        if from != to {
            changed.insert(field.to_owned(), json!({"from": from, "to": to}));
        }
    };
    if let Some(n) = &patch.name {
        a.name = validate_name(n)?;
        note("name", json!(before.name), json!(a.name));
    }
    if let Some(d) = &patch.description {
        a.description = validate_description(d)?;
        note(
            "description",
            json!(before.description),
            json!(a.description),
        );
    }
    if let Some(r) = &patch.roles {
        a.roles = validate_roles(db, &a.org_id, r, actor, &before.roles).await?;
        note("roles", json!(before.roles), json!(a.roles));
    }
    if let Some(ips) = &patch.allowed_ips {
        a.allowed_ips =
            IpAllowlist::parse(ips).map_err(|e| invalid("allowed_ips", e.to_string()))?;
        note(
            "allowed_ips",
            json!(before.allowed_ips.entries()),
            json!(a.allowed_ips.entries()),
        );
    }
    if let Some(e) = &patch.expires_in {
        a.expires_at = ExpiresIn::parse(e)
            .ok_or_else(|| {
                invalid(
                    "expires_in",
                    format!("must be one of {}", ExpiresIn::CHOICES),
                )
            })?
            .expires_at(now);
        note("expires_at", json!(before.expires_at), json!(a.expires_at));
    }
    if changed.is_empty() {
        return Ok(before);
    }
    let ev = actor.event(
        &a.org_id,
        "service_account.updated",
        &a.id,
        now,
        serde_json::Value::Object(changed),
    );
    if !db.update_account(&a, &ev).await? {
        return Err(ManageError::NotFound);
    }
    live(db, None, &a.id).await
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
    if a.status == status {
        return Ok(a);
    }
    let action = match status {
        Status::Active => "service_account.enabled",
        Status::Disabled => "service_account.disabled",
    };
    let ev = actor.event(
        &a.org_id,
        action,
        &a.id,
        now,
        json!({"status": {"from": a.status.as_str(), "to": status.as_str()}}),
    );
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
        return Err(ManageError::Conflict(
            "integration accounts have no secret".into(),
        ));
    }
    if a.status == Status::Disabled {
        return Err(ManageError::Conflict(
            "the service account is disabled; enable it before resetting its secret".into(),
        ));
    }
    let secret = ClientSecret::generate();
    let s = secret.clone();
    let hash = tokio::task::spawn_blocking(move || hash_blocking(&s))
        .await
        .map_err(|_| ManageError::Hash)?
        .map_err(|_| ManageError::Hash)?;
    let prefix = secret_prefix(secret.expose());
    let ev = actor.event(
        &a.org_id,
        "service_account.secret_reset",
        &a.id,
        now,
        json!({"secret_prefix": prefix}),
    );
    let change = SecretChange {
        id: &a.id,
        hash: &hash,
        prefix: &prefix,
        now,
        expected_hash: a.secret_hash.as_deref().unwrap_or(""),
    };
    if !db.reset_account_secret(&change, &ev).await? {
        // Disabled, deleted, reset or rotated between the read and the write.
        return Err(ManageError::Conflict(
            "the service account changed concurrently; retry".into(),
        ));
    }
    Ok((live(db, None, &a.id).await?, secret))
}

/// The longest grace period a rotation may have.
pub const MAX_GRACE_SECS: i64 = 7 * 86_400;
pub const DEFAULT_GRACE_SECS: i64 = 86_400;

/// Issues a new secret while the current one keeps working for `grace`
/// seconds. Refresh tokens stay valid. Refused while disabled.
pub async fn rotate_secret(
    db: &Db,
    org: Option<&str>,
    key: &str,
    grace: i64,
    actor: &Actor,
    now: i64,
) -> Result<(ServiceAccount, ClientSecret), ManageError> {
    if !(0..=MAX_GRACE_SECS).contains(&grace) {
        return Err(invalid(
            "grace_period",
            "must be between 0 seconds and 7 days",
        ));
    }
    let a = live(db, org, key).await?;
    if a.kind != AccountKind::Credential {
        return Err(ManageError::Conflict(
            "integration accounts have no secret".into(),
        ));
    }
    if a.status == Status::Disabled {
        return Err(ManageError::Conflict(
            "the service account is disabled; enable it before rotating its secret".into(),
        ));
    }
    let secret = ClientSecret::generate();
    let hash = hash_off_runtime(&secret).await?;
    let prefix = secret_prefix(secret.expose());
    let ev = actor.event(
        &a.org_id,
        "service_account.secret_rotated",
        &a.id,
        now,
        json!({"secret_prefix": prefix, "previous_prefix": a.secret_prefix, "grace_until": now + grace}),
    );
    let change = SecretChange {
        id: &a.id,
        hash: &hash,
        prefix: &prefix,
        now,
        expected_hash: a.secret_hash.as_deref().unwrap_or(""),
    };
    if !db.rotate_account_secret(&change, now + grace, &ev).await? {
        return Err(ManageError::Conflict(
            "the service account changed concurrently; retry".into(),
        ));
    }
    Ok((live(db, None, &a.id).await?, secret))
}

async fn hash_off_runtime(secret: &ClientSecret) -> Result<String, ManageError> {
    let s = secret.clone();
    tokio::task::spawn_blocking(move || hash_blocking(&s))
        .await
        .map_err(|_| ManageError::Hash)?
        .map_err(|_| ManageError::Hash)
}

pub async fn delete(
    db: &Db,
    org: Option<&str>,
    key: &str,
    actor: &Actor,
    now: i64,
) -> Result<ServiceAccount, ManageError> {
    let a = live(db, org, key).await?;
    let ev = actor.event(&a.org_id, "service_account.deleted", &a.id, now, json!({}));
    if !db.delete_account(&a.id, now, &ev).await? {
        return Err(ManageError::NotFound);
    }
    db.find_account(None, &a.id)
        .await?
        .ok_or(ManageError::NotFound)
}

/// RFC 3339 for a Unix time (`null` for none).
pub fn rfc3339(t: Option<i64>) -> serde_json::Value {
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map(serde_json::Value::String)
        .unwrap_or(serde_json::Value::Null)
}

/// A service account as the API and the CLI show it: never a secret or
/// its hash. `client_secret` is filled only in create/reset/rotate answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: String,
    pub org: String,
    /// `credential` or `integration`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub description: String,
    pub client_id: Option<String>,
    pub integration: Option<String>,
    pub roles: Vec<String>,
    pub allowed_ips: Vec<String>,
    /// RFC 3339, or null for no expiry.
    pub expires_at: Option<String>,
    /// `active` or `disabled`.
    pub status: String,
    pub created_at: String,
    pub created_by: String,
    pub last_used_at: Option<String>,
    pub deleted_at: Option<String>,
    /// The secrets that currently work, by prefix.
    pub secrets: Vec<SecretView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SecretView {
    /// `arm_sk_` and the first five characters of the secret.
    pub prefix: Option<String>,
    pub created_at: Option<String>,
    /// When a rotated-out secret stops working; null for the current one.
    pub expires_at: Option<String>,
}

fn ts(t: Option<i64>) -> Option<String> {
    rfc3339(t).as_str().map(str::to_owned)
}

impl AccountView {
    pub fn new(a: &ServiceAccount, secret: Option<&ClientSecret>, now: i64) -> Self {
        let mut secrets = Vec::new();
        if a.kind == AccountKind::Credential && a.deleted_at.is_none() {
            secrets.push(SecretView {
                prefix: a.secret_prefix.clone(),
                created_at: ts(a.secret_created_at),
                expires_at: None,
            });
            if let Some(p) = a.previous_secret.as_ref().filter(|p| p.expires_at > now) {
                secrets.push(SecretView {
                    prefix: Some(p.prefix.clone()),
                    created_at: ts(p.created_at),
                    expires_at: ts(Some(p.expires_at)),
                });
            }
        }
        Self {
            id: a.id.clone(),
            org: a.org_id.clone(),
            kind: a.kind.as_str().into(),
            name: a.name.clone(),
            description: a.description.clone(),
            client_id: a.client_id.clone(),
            integration: a.integration.clone(),
            roles: a.roles.clone(),
            allowed_ips: a.allowed_ips.entries(),
            expires_at: ts(a.expires_at),
            status: a.status.as_str().into(),
            created_at: ts(Some(a.created_at)).unwrap_or_default(),
            created_by: a.created_by.clone(),
            last_used_at: ts(a.last_used_at),
            deleted_at: ts(a.deleted_at),
            secrets,
            client_secret: secret.map(|s| s.expose().to_owned()),
        }
    }
}

/// The public JSON form of an account: never the secret or its hash.
pub fn to_json(a: &ServiceAccount) -> serde_json::Value {
    serde_json::to_value(AccountView::new(a, None, crate::now_unix())).unwrap_or_default()
}
