//! Signing in to the admin console: one-time links (the operator's
//! bootstrap and break-glass path), sessions started by a link or by single
//! sign-on, and the session behind a request, as the `Actor` it acts as. A
//! person acts with the permissions of their roles as they stand at each
//! request, bound by the same grant rules as a service account.
use std::net::IpAddr;

use serde_json::json;

use super::{Actor, Authority, ManageError, USER, invalid};
use crate::crypto::opaque::{new_token, token_hash};
use crate::db::console::{LinkGrant, NewSession};
use crate::db::members::Member;
use crate::db::{AuditEvent, Db};
use crate::domain::account::Status;
use crate::domain::console::{OPERATOR, OPERATOR_REFUSED};
use crate::domain::ip::IpAllowlist;
use crate::domain::roles::{PLATFORM_MANAGE, builtin_permissions, permissions_of, valid_role_id};

/// How long a console session lasts (absolute, from sign-in).
pub const SESSION_TTL: i64 = 8 * 3600;
/// The longest a sign-in link may stay usable.
pub const MAX_LINK_TTL: i64 = 24 * 3600;

/// A person signing in: to which org, as whom, with which roles (`None`:
/// a known member keeps their own), from where, and how.
pub struct Person<'a> {
    pub org: &'a str,
    pub subject: &'a str,
    pub email: Option<&'a str>,
    pub roles: Option<&'a [String]>,
    pub source_ip: Option<IpAddr>,
    /// `link` or `sso`, for the audit log.
    pub method: &'static str,
}

/// A new session: the cookie's value (given to the browser, never stored)
/// and when it ends.
pub struct SignedIn {
    pub cookie: String,
    pub expires_at: i64,
}

/// The person behind a request, as they stand now.
pub struct ConsoleCaller {
    pub actor: Actor,
    pub org: String,
    pub member: Member,
    pub csrf: String,
    pub expires_at: i64,
}

/// Every role is one the org can hold: built-in, global or its own; never
/// `operator`, the platform's role, which reaches every org and belongs to
/// the platform API's service accounts, not to an org's people.
pub async fn check_roles_exist(db: &Db, org: &str, roles: &[String]) -> Result<(), ManageError> {
    if roles.is_empty() {
        return Err(invalid("roles", "name at least one role"));
    }
    if roles.iter().any(|r| r == OPERATOR) {
        return Err(invalid("roles", OPERATOR_REFUSED));
    }
    let stored = db.stored_role_permissions(org, roles).await?;
    if permissions_of(roles, &stored).contains(PLATFORM_MANAGE) {
        return Err(invalid(
            "roles",
            format!("{OPERATOR_REFUSED}: no role of a person may grant `{PLATFORM_MANAGE}`"),
        ));
    }
    match roles.iter().find(|r| {
        !valid_role_id(r) || (builtin_permissions(r).is_none() && !stored.contains_key(*r))
    }) {
        Some(r) => Err(invalid(
            "roles",
            format!("`{r}` is not a role of this organization"),
        )),
        None => Ok(()),
    }
}

/// Makes a one-time sign-in link's token for `subject` (a name, e.g. an
/// email) in `org` with `roles`, usable once within `ttl` seconds. The
/// operator's act (the CLI), audited as `console.link_created`.
pub async fn create_link(
    db: &Db,
    org: &str,
    subject: &str,
    roles: &[String],
    ttl: i64,
    now: i64,
) -> Result<String, ManageError> {
    if !(60..=MAX_LINK_TTL).contains(&ttl) {
        return Err(invalid("ttl", "must be between 1m and 24h"));
    }
    let name = crate::domain::text::validate_person_name("user", subject, 200)?;
    if db.find_org(org).await?.is_none() {
        return Err(invalid("org", format!("no organization `{org}`")));
    }
    check_roles_exist(db, org, roles).await?;
    let token = new_token();
    let grant = LinkGrant {
        org: org.to_owned(),
        subject: format!("link:{name}"),
        roles: roles.to_vec(),
    };
    let audit = Actor::operator()
        .record("console.link_created", ("user", &grant.subject), now)
        .in_org(org)
        .with(json!({"roles": roles, "expires_at": super::rfc3339(Some(now + ttl))}));
    db.create_console_link(&token_hash(&token), &grant, now, now + ttl, &audit)
        .await?;
    Ok(token)
}

/// A sign-in link not used yet, as the API and the CLI show it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LinkView {
    /// What `DELETE /api/v1/console-links/{id}` and `warden console
    /// revoke` take (16 hex digits of the link's hash, not the link).
    pub id: String,
    pub org: String,
    pub subject: String,
    pub roles: Vec<String>,
    /// RFC 3339.
    pub created_at: Option<String>,
    /// RFC 3339: usable until then, once.
    pub expires_at: Option<String>,
}

/// The sign-in links of `org` (every org with `None`) not used yet.
pub async fn pending_links(
    db: &Db,
    org: Option<&str>,
    now: i64,
) -> Result<Vec<LinkView>, ManageError> {
    Ok(db
        .pending_console_links(org, now)
        .await?
        .into_iter()
        .map(|l| LinkView {
            created_at: crate::domain::rfc3339(l.created_at),
            expires_at: crate::domain::rfc3339(l.expires_at),
            id: l.id,
            org: l.org,
            subject: l.subject,
            roles: l.roles,
        })
        .collect())
}

/// Revokes a sign-in link before it is used (audited as
/// `console.link_revoked`); `NotFound` when no such link is pending in
/// `org` (any org with `None`, for the CLI).
pub async fn revoke_link(
    db: &Db,
    org: Option<&str>,
    id: &str,
    actor: &Actor,
    now: i64,
) -> Result<(), ManageError> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ManageError::NotFound);
    }
    let Some(link) = db
        .pending_console_links(org, now)
        .await?
        .into_iter()
        .find(|l| l.id == id)
    else {
        return Err(ManageError::NotFound);
    };
    let audit = actor
        .record("console.link_revoked", ("user", &link.subject), now)
        .in_org(&link.org)
        .with(json!({"link": id, "roles": link.roles}));
    if db.revoke_console_link(org, &id, now, &audit).await? {
        Ok(())
    } else {
        Err(ManageError::NotFound)
    }
}

/// Spends a sign-in link and starts its session; `None` when the link is
/// unknown, used or expired (which of them is not said).
pub async fn redeem_link(
    db: &Db,
    token: &str,
    source_ip: Option<IpAddr>,
    now: i64,
) -> Result<Option<SignedIn>, ManageError> {
    // A link whose session could not be used (the org disabled, the
    // address outside its allowlist) is refused before it is spent.
    let Some(org) = db.console_link_org(&token_hash(token), now).await? else {
        return Ok(None);
    };
    admits(db, &org, source_ip).await?;
    let Some(grant) = db.redeem_console_link(&token_hash(token), now).await? else {
        return Ok(None);
    };
    let person = Person {
        org: &grant.org,
        subject: &grant.subject,
        email: None,
        roles: Some(&grant.roles),
        source_ip,
        method: "link",
    };
    start(db, &person, now).await.map(Some)
}

/// Refuses a sign-in to an org that is disabled or does not admit the
/// address: the session could not be used (see `session`).
async fn admits(db: &Db, org: &str, source_ip: Option<IpAddr>) -> Result<(), ManageError> {
    match db.find_org(org).await? {
        Some(o) if o.status == Status::Active && o.allowed_ips.permits(source_ip) => Ok(()),
        _ => Err(ManageError::Forbidden(format!(
            "organization `{org}` is disabled or does not admit your address"
        ))),
    }
}

/// Starts a session for a person whose sign-in has been verified.
pub async fn start(db: &Db, p: &Person<'_>, now: i64) -> Result<SignedIn, ManageError> {
    admits(db, p.org, p.source_ip).await?;
    let cookie = new_token();
    let audit = AuditEvent::new(USER, p.subject, "console.signed_in", now)
        .on("user", p.subject)
        .in_org(p.org)
        .from_address(p.source_ip.map(|i| i.to_string()))
        .by_email(p.email.map(str::to_owned))
        .with(json!({"method": p.method, "roles": p.roles}));
    let expires_at = now + SESSION_TTL;
    db.start_console_session(
        &NewSession {
            id_hash: &token_hash(&cookie),
            csrf: &new_token(),
            org: p.org,
            subject: p.subject,
            email: p.email,
            roles: p.roles,
            keep_manager: p.method == "link",
            now,
            expires_at,
        },
        &audit,
    )
    .await
    .map_err(|e| match e {
        crate::db::DbError::Conflict(why) => ManageError::Conflict(why),
        other => ManageError::Db(other),
    })?;
    Ok(SignedIn { cookie, expires_at })
}

/// The person behind a session cookie, with the authority their roles
/// give right now; `None` when the session is unknown or over, the person
/// was removed, or their org is disabled or does not admit the address.
pub async fn session(
    db: &Db,
    cookie: &str,
    source_ip: Option<IpAddr>,
    now: i64,
) -> Result<Option<ConsoleCaller>, ManageError> {
    let Some(s) = db.console_session(&token_hash(cookie), now).await? else {
        return Ok(None);
    };
    if !s.org_active || !IpAllowlist::parse_stored(&s.org_allowed_ips).permits(source_ip) {
        return Ok(None);
    }
    let custom = db.stored_role_permissions(&s.org, &s.member.roles).await?;
    // A person acts in their org only, whatever a role came to say: the
    // platform's powers (the `operator` role, `platform:manage`) are the
    // platform API's service accounts', never a console session's.
    let permissions = permissions_of(&s.member.roles, &custom)
        .into_iter()
        .filter(|p| p != PLATFORM_MANAGE)
        .collect();
    let roles = s
        .member
        .roles
        .iter()
        .filter(|r| *r != OPERATOR)
        .cloned()
        .collect();
    let actor = Actor {
        kind: USER.into(),
        id: s.member.subject.clone(),
        source_ip: source_ip.map(|i| i.to_string()),
        authority: Some(Authority { roles, permissions }),
        on_behalf_of: None,
        email: s.member.email.clone(),
        argon: None,
        session: Some(token_hash(cookie)),
    };
    Ok(Some(ConsoleCaller {
        actor,
        org: s.org,
        member: s.member,
        csrf: s.csrf,
        expires_at: s.expires_at,
    }))
}

/// Ends the session of this cookie (signing out), audited.
pub async fn sign_out(
    db: &Db,
    cookie: &str,
    caller: &ConsoleCaller,
    now: i64,
) -> Result<(), ManageError> {
    let audit = caller
        .actor
        .record("console.signed_out", ("user", &caller.actor.id), now)
        .in_org(&caller.org);
    db.end_console_session(&token_hash(cookie), &audit).await?;
    Ok(())
}
