//! An account's secrets: reset, rotate with a grace period, end one early.
use serde_json::json;

use super::change::{ATTEMPTS, changed_concurrently, live, target, write};
use crate::db::accounts::AccountChange;
use crate::domain::account::{AccountKind, ServiceAccount, Status};
use crate::domain::credentials::ClientSecret;
use crate::domain::credentials::{
    MAX_LIVE_SECRETS, PreviousSecret, secret_prefix, secrets_after_change,
};
use crate::manage::{ManageError, Scope, hash_off_runtime, invalid, rfc3339};

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
    let current = a
        .secret_hash
        .as_deref()
        .zip(a.secret_prefix.as_deref())
        .map(|(hash, prefix)| (prefix, hash, a.secret_created_at));
    let in_grace = a.live_previous_secrets(now).cloned().collect();
    let previous = secrets_after_change(in_grace, current, grace, now).map_err(|_| {
        ManageError::Conflict(format!(
            "the service account already has {MAX_LIVE_SECRETS} working secrets; \
             revoke one (or wait for a grace period to end) before rotating again"
        ))
    })?;
    let secret = fresh_secret(&a, now);
    let hash = hash_off_runtime(actor, &secret).await?;
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
