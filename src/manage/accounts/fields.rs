//! Checks on the fields a caller sets: roles (that exist, that the caller
//! may grant) and expiry.
use crate::db::Db;
use crate::domain::account::ExpiresIn;
use crate::domain::roles::{builtin_permissions, role_grants, valid_role_id};
use crate::manage::{Actor, ManageError, invalid};

/// The most roles one account may hold (each custom one costs a lookup).
pub const MAX_ROLES: usize = 32;

/// Checks that every role exists (built-in, global, or custom in `org`) and that
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
    // Stored definitions, and what a catalog added to the built-in ones.
    let found = db.stored_role_permissions(org, &out).await?;
    if let Some(missing) = custom.iter().find(|r| !found.contains_key(*r)) {
        return Err(invalid("roles", format!("unknown role `{missing}`")));
    }
    for r in out.iter().filter(|r| !already_held.contains(r)) {
        let perms = role_grants(r, found.get(r)).unwrap_or_default();
        actor.check_may_grant(r, &perms)?;
    }
    out.sort();
    Ok(out)
}

/// The longest an explicit `expires_at` may reach: ten years.
pub const MAX_EXPIRY_SECS: i64 = 10 * 366 * 86_400;

/// The expiry a request asks for, from `expires_in` (a preset, `never`
/// clearing it) or `expires_at` (RFC 3339, in the future, within ten
/// years), not both: `Some(None)` for no expiry, `None` when not asked.
pub(super) fn requested_expiry(
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
