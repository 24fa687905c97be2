//! Bearer authentication for the admin API, checked like introspection:
//! the token must verify, name the issuer in `aud`, not be revoked, and
//! belong to an account that is live right now from this source address.
//! The caller's permissions are the token's roles intersected with the
//! account's current roles. Each handler names what it needs through the
//! extractor's type (`AdminCaller<OrgRead>`, `<OrgManage>`, `<AuditRead>`),
//! so no endpoint can be reached without a permission check.
//!
//! A person signed in to the console calls the same endpoints with the
//! session cookie instead of a bearer token (`console_caller`): the same
//! permission check, the same rules, and a CSRF token on every change.
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams};
use axum::http::header;
use axum::http::request::Parts;

use super::ApiError;
use crate::domain::roles::{AUDIT_READ, ORG_MANAGE, ORG_READ, PLATFORM_MANAGE};
use crate::http::AppState;
use crate::manage::{Actor, Authority, SERVICE_ACCOUNT};
use crate::now_unix;
use crate::oauth::OAuthError;
use crate::oauth::inactive::Inactive;
use crate::oauth::introspect::{LiveToken, PresentedTo, live_access_token};

/// What an endpoint needs: any one of these permissions.
pub trait Need: Send + Sync + 'static {
    const ANY_OF: &'static [&'static str];
}

/// Reading the org's service accounts and roles.
pub struct OrgRead;
impl Need for OrgRead {
    const ANY_OF: &'static [&'static str] = &[ORG_READ, ORG_MANAGE];
}

/// Changing the org's service accounts and roles.
pub struct OrgManage;
impl Need for OrgManage {
    const ANY_OF: &'static [&'static str] = &[ORG_MANAGE];
}

/// Reading the org's audit log.
pub struct AuditRead;
impl Need for AuditRead {
    const ANY_OF: &'static [&'static str] = &[AUDIT_READ];
}

/// The platform: orgs, resource servers, global roles (operators).
pub struct PlatformManage;
impl Need for PlatformManage {
    const ANY_OF: &'static [&'static str] = &[PLATFORM_MANAGE];
}

/// The authenticated caller of an admin endpoint, holding what `N` needs.
pub struct AdminCaller<N: Need> {
    pub actor: Actor,
    /// The org the request acts in: the caller's own, or the `{org}` of an
    /// `/api/v1/orgs/{org}/…` path (any org for an operator, else only its
    /// own).
    org: String,
    need: PhantomData<N>,
}

/// The header in which an operator names the person it acts for.
pub const ON_BEHALF_OF: &str = "warden-on-behalf-of";

impl<N: Need> AdminCaller<N> {
    pub fn org(&self) -> &str {
        &self.org
    }

    /// The time now, read when asked: a handler runs after its body has
    /// arrived, which may be well after authentication, and what it writes
    /// (expiries, audit times) is as of then.
    pub fn now(&self) -> i64 {
        now_unix()
    }

    /// A management operation's setting: this caller, confined to its
    /// org, now.
    pub fn scope<'a>(&'a self, db: &'a crate::db::Db) -> crate::manage::Scope<'a> {
        crate::manage::Scope {
            db,
            org: Some(self.org()),
            actor: &self.actor,
            now: self.now(),
        }
    }
}

impl<N: Need> FromRequestParts<Arc<AppState>> for AdminCaller<N> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let Some(token) = bearer(parts) else {
            return console_caller(parts, state).await;
        };
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .ok_or(ApiError::Internal)?;
        let source_ip = crate::http::client_address(state, peer, &parts.headers);
        let LiveToken {
            account,
            grant: live,
            roles: held,
        } = live_access_token(
            state,
            &token,
            &PresentedTo::admin_api(&state.issuer),
            source_ip,
            now_unix(),
        )
        .await
        .map_err(|e| match e {
            OAuthError::TemporarilyUnavailable => ApiError::Unavailable,
            _ => ApiError::Internal,
        })?
        .map_err(|why| match why {
            Inactive::Audience => ApiError::WrongAudience {
                issuer: state.issuer.clone(),
            },
            _ => ApiError::Unauthorized,
        })?;
        if !live.scope.iter().any(|p| N::ANY_OF.contains(&p.as_str())) {
            return Err(ApiError::Forbidden(format!(
                "this needs the `{}` permission",
                N::ANY_OF.join("` or `")
            )));
        }
        // What the caller may grant is what its account holds, not what
        // this token (for the admin API) carries.
        let authority = Authority {
            roles: held.keys().cloned().collect(),
            permissions: held.into_values().flatten().collect(),
        };
        let actor = Actor {
            kind: SERVICE_ACCOUNT.into(),
            id: account.id.clone(),
            source_ip: source_ip.map(|i| i.to_string()),
            on_behalf_of: on_behalf_of(parts, &authority)?,
            authority: Some(authority),
            email: None,
            argon: Some(state.verifier.pool()),
            session: None,
        };
        let org = path_org(parts, state, &account.org_id, &actor).await?;
        Ok(Self {
            actor,
            org,
            need: PhantomData,
        })
    }
}

/// The caller of a request with no bearer token: the person whose console
/// session the cookie names. A change (any method but GET and HEAD) must
/// carry the session's CSRF token in `X-CSRF-Token`.
async fn console_caller<N: Need>(
    parts: &mut Parts,
    state: &Arc<AppState>,
) -> Result<AdminCaller<N>, ApiError> {
    let cookie = crate::http::console::session_cookie(state, &parts.headers)
        .ok_or(ApiError::Unauthorized)?;
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .ok_or(ApiError::Internal)?;
    let source_ip = crate::http::client_address(state, peer, &parts.headers);
    let caller = crate::manage::console::session(&state.db, &cookie, source_ip, now_unix())
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if !matches!(
        parts.method,
        axum::http::Method::GET | axum::http::Method::HEAD
    ) {
        let sent = parts
            .headers
            .get(crate::http::console::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !crate::crypto::opaque::same(sent, &caller.csrf) {
            return Err(ApiError::Forbidden(
                "a change from the console needs its CSRF token (X-CSRF-Token)".into(),
            ));
        }
    }
    let holds = caller
        .actor
        .authority
        .as_ref()
        .is_some_and(|a| N::ANY_OF.iter().any(|p| a.holds(p)));
    if !holds {
        return Err(ApiError::Forbidden(format!(
            "this needs the `{}` permission",
            N::ANY_OF.join("` or `")
        )));
    }
    let org = path_org(parts, state, &caller.org, &caller.actor).await?;
    let mut actor = caller.actor;
    actor.argon = Some(state.verifier.pool());
    Ok(AdminCaller {
        actor,
        org,
        need: PhantomData,
    })
}

/// The bearer token of the `Authorization` header.
fn bearer(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())
}

/// The org an `/api/v1/orgs/{org}/…` path names, if the caller may act in
/// it (an operator: any org that exists; anyone else: only its own; else
/// 404, as for anything not in your org); the caller's own org otherwise.
async fn path_org(
    parts: &mut Parts,
    state: &Arc<AppState>,
    own_org: &str,
    actor: &Actor,
) -> Result<String, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::NotFound)?;
    let Some((_, org)) = params.iter().find(|(k, _)| *k == "org") else {
        return Ok(own_org.to_owned());
    };
    if org == own_org {
        return Ok(org.to_owned());
    }
    let operator = actor
        .authority
        .as_ref()
        .is_some_and(|a| a.holds(PLATFORM_MANAGE));
    if operator && !org.contains('\0') && state.db.org_exists(org).await? {
        return Ok(org.to_owned());
    }
    Err(ApiError::NotFound)
}

/// The person named in `Warden-On-Behalf-Of`: only an operator (a SaaS
/// backend acting for one of its users) may name one; at most 200
/// printable characters.
fn on_behalf_of(parts: &Parts, authority: &Authority) -> Result<Option<String>, ApiError> {
    let Some(v) = parts.headers.get(ON_BEHALF_OF) else {
        return Ok(None);
    };
    let person = v
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|p| !p.is_empty() && p.chars().count() <= 200 && !p.chars().any(char::is_control))
        .ok_or_else(|| {
            ApiError::BadRequest(
                "Warden-On-Behalf-Of must name a person in 1 to 200 printable characters".into(),
            )
        })?;
    if !authority.holds(PLATFORM_MANAGE) {
        return Err(ApiError::Forbidden(
            "only an operator (platform:manage) may act on behalf of someone".into(),
        ));
    }
    Ok(Some(person.to_owned()))
}
