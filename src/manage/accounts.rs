//! Service accounts: create, edit, status, secrets, delete, and how the
//! API and the CLI show one. Every action on an existing account goes
//! through `target` (who may act on it) and `write` (version-conditional,
//! guarded for API callers).
use serde_json::json;

use super::{Actor, ManageError, Scope, hash_off_runtime, invalid, rfc3339};
use crate::db::accounts::AccountChange;
use crate::db::write::{ChangeOutcome, OrgSnapshot};
use crate::db::{AuditEvent, Db};
use crate::domain::account::{
    AccountKind, ExpiresIn, MAX_LIVE_SECRETS, PreviousSecret, ServiceAccount, Status,
    secret_prefix, validate_description, validate_integration, validate_name,
};
use crate::domain::credentials::{ClientId, ClientSecret};
use crate::domain::ip::IpAllowlist;
use crate::domain::roles::{builtin_permissions, valid_role_id};

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
}

/// The most roles one account may hold (each custom one costs a lookup).
pub const MAX_ROLES: usize = 32;

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
    if roles.len() > MAX_ROLES {
        return Err(invalid(
            "roles",
            format!("at most {MAX_ROLES} roles per service account"),
        ));
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
    let expires_at =
        requested_expiry(req.expires_in.as_deref(), req.expires_at.as_deref(), now)?.flatten();
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
    };
    let details = json!({
        "type": account.kind.as_str(),
        "name": account.name,
        "roles": account.roles,
        "allowed_ips": account.allowed_ips.entries(),
        "expires_at": rfc3339(account.expires_at),
        "client_id": account.client_id,
    });
    let ev = actor.event(
        &account.org_id,
        "service_account.created",
        &account.id,
        now,
        details,
    );
    let check = |s: &OrgSnapshot| actor.check_in_write(None, false, s);
    let guard = actor.guard(&account.org_id, false, &check);
    if let ChangeOutcome::Refused(why) = db.insert_account(&account, &ev, guard.as_ref()).await? {
        return Err(ManageError::Conflict(why));
    }
    Ok((account, secret))
}

/// The longest an explicit `expires_at` may reach: ten years.
pub const MAX_EXPIRY_SECS: i64 = 10 * 366 * 86_400;

/// The expiry a request asks for, from `expires_in` (a preset, `never`
/// clearing it) or `expires_at` (RFC 3339, in the future, within ten
/// years), not both: `Some(None)` for no expiry, `None` when not asked.
fn requested_expiry(
    expires_in: Option<&str>,
    expires_at: Option<&str>,
    now: i64,
) -> Result<Option<Option<i64>>, ManageError> {
    match (expires_in, expires_at) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(invalid(
            "expires_at",
            "send expires_in or expires_at, not both",
        )),
        (Some(p), None) => ExpiresIn::parse(p)
            .map(|e| Some(e.expires_at(now)))
            .ok_or_else(|| {
                invalid(
                    "expires_in",
                    format!("must be one of {}", ExpiresIn::CHOICES),
                )
            }),
        (None, Some(t)) => {
            let at = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    invalid(
                        "expires_at",
                        "must be an RFC 3339 time such as 2027-06-30T00:00:00Z",
                    )
                })?
                .unix_timestamp();
            if at <= now || at > now + MAX_EXPIRY_SECS {
                return Err(invalid(
                    "expires_at",
                    "must be in the future and at most ten years ahead",
                ));
            }
            Ok(Some(Some(at)))
        }
    }
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
    /// An RFC 3339 expiry instead of a preset.
    pub expires_at: Option<String>,
    /// `If-Match`: apply only to this version (else 412), never retried.
    pub if_version: Option<i64>,
}

/// How often a change whose account moved on between read and write is
/// re-read, re-checked and re-applied before the caller is told to retry.
const ATTEMPTS: usize = 5;

/// Reads the live account `key` (in `org` when given) and checks that
/// `actor` may act on it: the one place that rule lives, for every action
/// on an existing account, from the API, the CLI or anything else. A
/// tombstone is found (GET shows it) but refused, saying why (409).
async fn target(scope: &Scope<'_>, key: &str) -> Result<ServiceAccount, ManageError> {
    let (db, actor) = (scope.db, scope.actor);
    match db.find_account(scope.org, key).await? {
        Some(a) if a.is_deleted() => Err(ManageError::Conflict(
            "the service account is deleted; a deleted account cannot be enabled, changed or deleted again"
                .into(),
        )),
        Some(a) => {
            actor.check_may_act_on(db, &a).await?;
            Ok(a)
        }
        None => Err(ManageError::NotFound),
    }
}

/// Writes `change` if the account is still at `a.version`, guarded for
/// API callers (`Actor::check_in_write`). `Ok(None)` when the account
/// moved on.
async fn write(
    db: &Db,
    a: &ServiceAccount,
    change: &AccountChange<'_>,
    ev: &AuditEvent,
    actor: &Actor,
) -> Result<Option<()>, ManageError> {
    // Only edits, disabling and deleting can take `org:manage` away.
    let org_wide = matches!(
        change,
        AccountChange::Fields { .. }
            | AccountChange::Status(Status::Disabled)
            | AccountChange::Delete { .. }
    );
    let check = |s: &OrgSnapshot| actor.check_in_write(Some(&a.id), org_wide, s);
    let guard = actor.guard(&a.org_id, org_wide, &check);
    match db
        .change_account(&a.id, a.version, change, ev, guard.as_ref())
        .await?
    {
        ChangeOutcome::Done => Ok(Some(())),
        ChangeOutcome::Stale => Ok(None),
        ChangeOutcome::Refused(why) => Err(ManageError::Conflict(why)),
    }
}

fn changed_concurrently() -> ManageError {
    ManageError::Conflict("the service account changed concurrently; retry".into())
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
        if let Some(e) = requested_expiry(
            patch.expires_in.as_deref(),
            patch.expires_at.as_deref(),
            now,
        )? {
            a.expires_at = e;
            note(
                "expires_at",
                rfc3339(before.expires_at),
                rfc3339(a.expires_at),
            );
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
        let change = AccountChange::Fields {
            name: &a.name,
            description: &a.description,
            roles: &a.roles,
            allowed_ips: &a.allowed_ips,
            expires_at: a.expires_at,
        };
        match write(db, &before, &change, &ev, actor).await? {
            Some(()) => return live(db, &a.id).await,
            None if patch.if_version.is_some() => return Err(ManageError::PreconditionFailed),
            None => continue,
        }
    }
    Err(changed_concurrently())
}

/// The account as it is now, after a change.
async fn live(db: &Db, id: &str) -> Result<ServiceAccount, ManageError> {
    db.find_account(None, id)
        .await?
        .ok_or(ManageError::NotFound)
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

/// A credential account that may get a new secret now.
fn secret_holder(a: &ServiceAccount, verb: &str) -> Result<(), ManageError> {
    if a.kind != AccountKind::Credential {
        return Err(ManageError::Conflict(
            "integration accounts have no secret".into(),
        ));
    }
    if a.status == Status::Disabled {
        return Err(ManageError::Conflict(format!(
            "the service account is disabled; enable it before {verb} its secret"
        )));
    }
    Ok(())
}

/// A fresh secret whose public prefix names none of the account's live
/// secrets (the prefix is how a presented secret finds its hash).
fn fresh_secret(a: &ServiceAccount, now: i64) -> ClientSecret {
    loop {
        let s = ClientSecret::generate();
        if !a.has_live_secret_prefix(&secret_prefix(s.expose()), now) {
            return s;
        }
    }
}

/// Issues a new secret; every other secret stops working at once and
/// refresh tokens issued before are refused. Refused while disabled. Not
/// retried: of two concurrent resets exactly one succeeds, so no caller is
/// told of a secret that does not work.
pub async fn reset_secret(
    scope: &Scope<'_>,
    key: &str,
) -> Result<(ServiceAccount, ClientSecret), ManageError> {
    new_secret(scope, key, None).await
}

/// The longest grace period a rotation may have.
pub const MAX_GRACE_SECS: i64 = 7 * 86_400;
pub const DEFAULT_GRACE_SECS: i64 = 86_400;

/// Issues a new secret while the current one keeps working for `grace`
/// seconds; secrets rotated out earlier keep their own grace. Refresh
/// tokens stay valid. Refused while disabled, and when the account already
/// has `MAX_LIVE_SECRETS` working secrets.
pub async fn rotate_secret(
    scope: &Scope<'_>,
    key: &str,
    grace: i64,
) -> Result<(ServiceAccount, ClientSecret), ManageError> {
    if !(0..=MAX_GRACE_SECS).contains(&grace) {
        return Err(invalid(
            "grace_period",
            "must be between 0 seconds and 7 days",
        ));
    }
    new_secret(scope, key, Some(grace)).await
}

/// A reset (`grace` `None`: every other secret ends, refresh tokens issued
/// before die) or a rotation (the current secret kept for `grace`, earlier
/// ones keep their own). Not retried: of two concurrent changes exactly
/// one succeeds, so no caller is told of a secret that does not work.
async fn new_secret(
    scope: &Scope<'_>,
    key: &str,
    grace: Option<i64>,
) -> Result<(ServiceAccount, ClientSecret), ManageError> {
    let (db, actor, now) = (scope.db, scope.actor, scope.now);
    let a = target(scope, key).await?;
    secret_holder(
        &a,
        if grace.is_some() {
            "rotating"
        } else {
            "resetting"
        },
    )?;
    let mut previous: Vec<PreviousSecret> = match grace {
        None => Vec::new(),
        Some(_) => a.live_previous_secrets(now).cloned().collect(),
    };
    if let Some(g) = grace.filter(|g| *g > 0)
        && let (Some(hash), Some(prefix)) = (&a.secret_hash, &a.secret_prefix)
    {
        previous.insert(
            0,
            PreviousSecret {
                prefix: prefix.clone(),
                hash: hash.clone(),
                created_at: a.secret_created_at,
                expires_at: now + g,
            },
        );
    }
    if previous.len() + 1 > MAX_LIVE_SECRETS {
        return Err(ManageError::Conflict(format!(
            "the service account already has {MAX_LIVE_SECRETS} working secrets; \
             revoke one (or wait for a grace period to end) before rotating again"
        )));
    }
    let secret = fresh_secret(&a, now);
    let hash = hash_off_runtime(&secret).await?;
    let prefix = secret_prefix(secret.expose());
    let (action, details) = match grace {
        None => (
            "service_account.secret_reset",
            json!({"secret_prefix": prefix}),
        ),
        Some(g) => (
            "service_account.secret_rotated",
            json!({"secret_prefix": prefix, "previous_prefix": a.secret_prefix,
                   "grace_until": rfc3339(Some(now + g))}),
        ),
    };
    let ev = actor.event(&a.org_id, action, &a.id, now, details);
    let change = AccountChange::Secrets {
        hash: &hash,
        prefix: &prefix,
        created_at: Some(now),
        previous: &previous,
        new_epoch: grace.is_none(),
    };
    write(db, &a, &change, &ev, actor)
        .await?
        .ok_or_else(changed_concurrently)?;
    Ok((live(db, &a.id).await?, secret))
}

/// Ends a rotated-out secret's grace period now. The current secret cannot
/// be revoked this way (reset replaces it). Refresh tokens stay valid.
pub async fn revoke_secret(
    scope: &Scope<'_>,
    key: &str,
    prefix: &str,
) -> Result<ServiceAccount, ManageError> {
    let (db, actor, now) = (scope.db, scope.actor, scope.now);
    for _ in 0..ATTEMPTS {
        let a = target(scope, key).await?;
        if a.secret_prefix.as_deref() == Some(prefix) {
            return Err(ManageError::Conflict(
                "that is the current secret; reset or rotate the secret to replace it".into(),
            ));
        }
        let previous: Vec<PreviousSecret> = a.live_previous_secrets(now).cloned().collect();
        let Some(ended) = previous.iter().position(|p| p.prefix == prefix) else {
            return Err(ManageError::NotFound);
        };
        let mut kept = previous.clone();
        kept.remove(ended);
        let (Some(hash), Some(current)) = (&a.secret_hash, &a.secret_prefix) else {
            return Err(ManageError::NotFound);
        };
        let ev = actor.event(
            &a.org_id,
            "service_account.secret_revoked",
            &a.id,
            now,
            json!({"secret_prefix": prefix}),
        );
        let change = AccountChange::Secrets {
            hash,
            prefix: current,
            created_at: a.secret_created_at,
            previous: &kept,
            new_epoch: false,
        };
        if write(db, &a, &change, &ev, actor).await?.is_some() {
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
    /// `active`, `disabled`, or `deleted` for a tombstone.
    pub status: String,
    pub created_at: String,
    pub created_by: String,
    pub last_used_at: Option<String>,
    /// The address the account last exchanged credentials from.
    pub last_used_ip: Option<String>,
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
            for p in a.live_previous_secrets(now) {
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
            status: if a.is_deleted() {
                "deleted".into()
            } else {
                a.status.as_str().into()
            },
            created_at: ts(Some(a.created_at)).unwrap_or_default(),
            created_by: a.created_by.clone(),
            last_used_at: ts(a.last_used_at),
            last_used_ip: a.last_used_ip.clone(),
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
