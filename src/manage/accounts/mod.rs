//! Service accounts: create, edit, status, secrets, delete, and how the
//! API and the CLI show one. Every action on an existing account goes
//! through `target` (who may act on it) and `write` (version-conditional,
//! guarded for API callers).
mod change;
pub mod credentials;
mod fields;
mod secrets;
mod view;

use serde_json::json;

pub(crate) use change::ATTEMPTS;
use change::{changed_concurrently, live, target, write};
use fields::requested_expiry;
pub use fields::{MAX_EXPIRY_SECS, MAX_ROLES, validate_roles};
pub use secrets::{DEFAULT_GRACE_SECS, MAX_GRACE_SECS, reset_secret, revoke_secret, rotate_secret};
pub use view::{AccountView, SecretView, to_json};

use super::{Actor, ManageError, Scope, hash_off_runtime, invalid, rfc3339};
use crate::db::Db;
use crate::db::accounts::AccountChange;
use crate::db::write::{ChangeOutcome, OrgSnapshot};
use crate::domain::account::{AccountKind, ServiceAccount, Status};
use crate::domain::credentials::secret_prefix;
use crate::domain::credentials::{ClientId, ClientSecret};
use crate::domain::ip::IpAllowlist;
use crate::domain::resource_server::validate_audience;
use crate::domain::text::{validate_description, validate_integration, validate_name};

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
    /// An RFC 3339 expiry instead of a preset.
    pub expires_at: Option<String>,
    /// The APIs it may get tokens for (audience URIs); empty: every API.
    pub allowed_resources: Vec<String>,
    /// A credential account without a secret authenticates only with the
    /// keys added to it later (`private_key_jwt`); `reset-secret` gives it
    /// one.
    pub with_secret: bool,
}

/// What a new account of `kind` is identified by: a credential account
/// gets a client id and a secret (hashed off the async runtime), an
/// integration account names its integration.
async fn credentials_for(
    actor: &Actor,
    kind: AccountKind,
    integration: Option<&str>,
    with_secret: bool,
) -> Result<NewCredentials, ManageError> {
    match kind {
        AccountKind::Credential => {
            if integration.is_some() {
                return Err(invalid(
                    "integration",
                    "only integration accounts name an integration",
                ));
            }
            let id = Some(ClientId::generate().to_string());
            if !with_secret {
                return Ok((id, None, None, None));
            }
            let secret = ClientSecret::generate();
            let hash = hash_off_runtime(actor, &secret).await?;
            Ok((id, Some(secret), Some(hash), None))
        }
        AccountKind::Integration => {
            let i = integration
                .ok_or_else(|| invalid("integration", "is required for integration accounts"))?;
            Ok((None, None, None, Some(validate_integration(i)?)))
        }
    }
}

/// Client id, secret, its hash, integration.
type NewCredentials = (
    Option<String>,
    Option<ClientSecret>,
    Option<String>,
    Option<String>,
);

/// An account's API list: audience URIs, each once, at most 50.
fn checked_resources(list: &[String]) -> Result<Vec<String>, ManageError> {
    let mut out: Vec<String> = Vec::new();
    for r in list {
        let aud =
            validate_audience(r.trim()).map_err(|e| invalid("allowed_resources", e.reason))?;
        // One API in two spellings is one entry.
        if !out
            .iter()
            .any(|o| crate::domain::audience::same_resource(o, &aud))
        {
            out.push(aud);
        }
    }
    if out.len() > 50 {
        return Err(invalid("allowed_resources", "at most 50 APIs"));
    }
    Ok(out)
}

/// The audit details of a new account.
fn created_details(a: &ServiceAccount) -> serde_json::Value {
    json!({
        "type": a.kind.as_str(),
        "name": a.name,
        "roles": a.roles,
        "allowed_ips": a.allowed_ips.entries(),
        "expires_at": rfc3339(a.expires_at),
        "client_id": a.client_id,
        "allowed_resources": a.allowed_resources,
    })
}

/// 422 on `org` unless the organization exists.
async fn require_org(db: &Db, org: &str) -> Result<(), ManageError> {
    if db.org_exists(org).await? {
        return Ok(());
    }
    let shown: String = org.chars().take(63).collect();
    Err(invalid("org", format!("no organization `{shown}`")))
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
    require_org(db, &req.org).await?;
    let roles = validate_roles(db, &req.org, &req.roles, actor, &[]).await?;
    let allowed_ips =
        IpAllowlist::parse(&req.allowed_ips).map_err(|e| invalid("allowed_ips", e.to_string()))?;
    let expires_at =
        requested_expiry(req.expires_in.as_deref(), req.expires_at.as_deref(), now)?.flatten();
    let (client_id, secret, secret_hash, integration) =
        credentials_for(actor, req.kind, req.integration.as_deref(), req.with_secret).await?;
    let account = ServiceAccount {
        id: uuid::Uuid::now_v7().to_string(),
        org_id: req.org.clone(),
        kind: req.kind,
        name,
        description,
        client_id,
        secret_prefix: secret.as_ref().map(|s| secret_prefix(s.expose())),
        secret_created_at: secret.as_ref().map(|_| now),
        previous_secrets: Vec::new(),
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
        last_used_ip: None,
        deleted_at: None,
        version: 1,
        allowed_resources: checked_resources(&req.allowed_resources)?,
        // Read with the account from the database; not needed here.
        org: Default::default(),
        stored_roles: Default::default(),
    };
    let ev = actor.event(
        &account.org_id,
        "service_account.created",
        &account.id,
        now,
        created_details(&account),
    );
    let check = |s: &OrgSnapshot| actor.check_in_write(None, false, s);
    let guard = actor.guard(&account.org_id, false, &check);
    if let ChangeOutcome::Refused(why) = db.insert_account(&account, &ev, guard.as_ref()).await? {
        return Err(ManageError::Conflict(why));
    }
    Ok((account, secret))
}

/// Fields to change; omitted fields keep their value. The body of
/// `PATCH /api/v1/service-accounts/{id}`, and what `accounts update`
/// sends.
#[derive(Debug, Default, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    /// 1 to 100 characters.
    pub name: Option<String>,
    /// Free text, at most 1,000 characters.
    pub description: Option<String>,
    /// The new set of roles; replaces the old one. You must hold every
    /// permission of each role you add.
    pub roles: Option<Vec<String>>,
    /// Addresses or CIDR blocks; an empty list removes the restriction.
    pub allowed_ips: Option<Vec<String>>,
    /// The APIs (audience URIs) it may get tokens for; an empty list: every
    /// API.
    pub allowed_resources: Option<Vec<String>>,
    /// `30d`, `60d`, `90d`, `180d`, `1y`, or `never` to clear the expiry.
    pub expires_in: Option<String>,
    /// Instead of `expires_in`: an RFC 3339 time, in the future, at most
    /// ten years ahead.
    pub expires_at: Option<String>,
    /// `If-Match`: apply only to this version (else 412), never retried.
    #[serde(skip)]
    pub if_version: Option<i64>,
}

/// The account as `patch` leaves it, validated, and the fields it
/// changes (`from`, `to`) for the audit event.
async fn apply_patch(
    scope: &Scope<'_>,
    before: &ServiceAccount,
    patch: &AccountPatch,
) -> Result<(ServiceAccount, serde_json::Map<String, serde_json::Value>), ManageError> {
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
        a.roles = validate_roles(scope.db, &a.org_id, r, scope.actor, &before.roles).await?;
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
    if let Some(r) = &patch.allowed_resources {
        a.allowed_resources = checked_resources(r)?;
        note(
            "allowed_resources",
            json!(before.allowed_resources),
            json!(a.allowed_resources),
        );
    }
    if let Some(e) = requested_expiry(
        patch.expires_in.as_deref(),
        patch.expires_at.as_deref(),
        scope.now,
    )? {
        a.expires_at = e;
        note(
            "expires_at",
            rfc3339(before.expires_at),
            rfc3339(a.expires_at),
        );
    }
    Ok((a, changed))
}

pub async fn update(
    scope: &Scope<'_>,
    key: &str,
    patch: AccountPatch,
) -> Result<ServiceAccount, ManageError> {
    let (db, actor, now) = (scope.db, scope.actor, scope.now);
    for _ in 0..ATTEMPTS {
        let before = target(scope, key).await?;
        if patch.if_version.is_some_and(|v| v != before.version) {
            return Err(ManageError::PreconditionFailed);
        }
        let (a, changed) = apply_patch(scope, &before, &patch).await?;
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
        let change = AccountChange::Fields {
            name: &a.name,
            description: &a.description,
            roles: &a.roles,
            allowed_ips: &a.allowed_ips,
            expires_at: a.expires_at,
            allowed_resources: &a.allowed_resources,
        };
        match write(db, &before, &change, &ev, actor).await? {
            Some(()) => return live(db, &a.id).await,
            None if patch.if_version.is_some() => return Err(ManageError::PreconditionFailed),
            None => continue,
        }
    }
    Err(changed_concurrently())
}

pub async fn set_status(
    scope: &Scope<'_>,
    key: &str,
    status: Status,
) -> Result<ServiceAccount, ManageError> {
    let (db, actor, now) = (scope.db, scope.actor, scope.now);
    for _ in 0..ATTEMPTS {
        let a = target(scope, key).await?;
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
        if write(db, &a, &AccountChange::Status(status), &ev, actor)
            .await?
            .is_some()
        {
            return live(db, &a.id).await;
        }
    }
    Err(changed_concurrently())
}

pub async fn delete(scope: &Scope<'_>, key: &str) -> Result<ServiceAccount, ManageError> {
    let (db, actor, now) = (scope.db, scope.actor, scope.now);
    for _ in 0..ATTEMPTS {
        let a = target(scope, key).await?;
        let ev = actor.event(&a.org_id, "service_account.deleted", &a.id, now, json!({}));
        if write(db, &a, &AccountChange::Delete { at: now }, &ev, actor)
            .await?
            .is_some()
        {
            return live(db, &a.id).await;
        }
    }
    Err(changed_concurrently())
}
