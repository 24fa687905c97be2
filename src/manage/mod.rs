//! Management: the operations the CLI (the operator's break-glass path)
//! and the admin API share, each with its rules, its change and its audit
//! record in one transaction. The CLI acts as the operator (`Actor::operator`,
//! bound by no rule); the API as a service account with the authority its
//! token holds right now.
//!
//! - `accounts`: service accounts, their secrets, and how they are shown.
//! - `roles`: stored roles, an org's custom ones and the global ones.
//! - `resource_servers`: the APIs that accept warden's tokens.
//! - `orgs`: organizations.
//! - `console`, `members`: the admin console's sign-ins, sessions and
//!   people (who act as `Actor`s of kind `user`, bound by the same rules).
pub mod accounts;
pub mod catalog;
pub mod console;
mod in_write;
pub mod members;
pub mod orgs;
pub mod resource_servers;
pub mod roles;
pub mod rs_keys;

use crate::crypto::argon_pool::ArgonPool;
use crate::crypto::secrets::{SecretError, hash_blocking, hash_on};
use crate::db::{AuditEvent, Db, DbError};
use crate::domain::account::ServiceAccount;
use crate::domain::credentials::ClientSecret;
use crate::domain::roles::role_covers;
use crate::domain::text::InvalidField;

/// The actor kind of a service account calling the admin API.
pub const SERVICE_ACCOUNT: &str = "service_account";

/// The actor kind of a person signed in to the admin console.
pub const USER: &str = "user";

/// An operation's setting: the database, the org it is confined to
/// (`None`: any, for the local operator), who acts and when.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub db: &'a Db,
    pub org: Option<&'a str>,
    pub actor: &'a Actor,
    pub now: i64,
}

impl Scope<'static> {
    /// The local operator (the CLI), in every org, now.
    pub fn operator(db: &Db) -> Scope<'_> {
        static OPERATOR: std::sync::LazyLock<Actor> = std::sync::LazyLock::new(Actor::operator);
        Scope {
            db,
            org: None,
            actor: &OPERATOR,
            now: crate::now_unix(),
        }
    }
}

/// Who is acting: for the audit log, and for what they may grant.
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: String,
    pub id: String,
    pub source_ip: Option<String>,
    /// `None` for the local operator (may grant anything); for a service
    /// account, the roles and permissions its token holds right now.
    pub authority: Option<Authority>,
    /// The person an operator acts for (`Warden-On-Behalf-Of`), recorded
    /// in every audit event of the action.
    pub on_behalf_of: Option<String>,
    /// A person's email (console sign-ins), recorded with their subject.
    pub email: Option<String>,
    /// The server's Argon2 pool, on which this actor's new secrets are
    /// hashed in turn with every verification (`None`: the CLI, a process
    /// of its own).
    pub argon: Option<std::sync::Arc<ArgonPool>>,
    /// A person's console session (the SHA-256 of its cookie), re-read in
    /// every write's transaction.
    pub session: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Authority {
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
}

impl Authority {
    /// Does it hold `p`? `admin` holds every permission but the platform's,
    /// those your APIs declare included; `operator` holds every one.
    pub fn holds(&self, p: &str) -> bool {
        self.permissions.iter().any(|h| h == p) || self.roles.iter().any(|r| role_covers(r, p))
    }

    pub(crate) fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

impl Actor {
    pub fn operator() -> Self {
        Self {
            kind: crate::db::audit::OPERATOR_TYPE.into(),
            id: crate::db::audit::OPERATOR_ID.into(),
            source_ip: None,
            authority: None,
            on_behalf_of: None,
            email: None,
            argon: None,
            session: None,
        }
    }

    /// Grant rules: a caller cannot hand out a permission it does not hold,
    /// and only an `admin` may grant `admin`.
    pub fn check_may_grant(&self, role: &str, permissions: &[String]) -> Result<(), ManageError> {
        let Some(auth) = &self.authority else {
            return Ok(());
        };
        if role == "admin" && !auth.has_role("admin") && !auth.has_role("operator") {
            return Err(ManageError::Forbidden(
                "only an admin may grant the admin role".into(),
            ));
        }
        if role == "operator" && !auth.has_role("operator") {
            return Err(ManageError::Forbidden(
                "only an operator (or the CLI) may grant the operator role".into(),
            ));
        }
        if let Some(p) = permissions.iter().find(|p| !auth.holds(p)) {
            return Err(ManageError::Forbidden(format!(
                "cannot grant `{role}`: you do not hold `{p}`"
            )));
        }
        Ok(())
    }

    /// The rule for acting on an existing account (change, disable, enable,
    /// delete, reset, rotate, credentials): the actor must hold every
    /// permission the account holds, and `admin` to touch an `admin`.
    /// Otherwise a holder of `org:manage` alone could take over a more
    /// powerful account, e.g. by rotating its secret and using the new one.
    pub fn check_may_act_on(&self, target: &ServiceAccount) -> Result<(), ManageError> {
        self.check_may_act_on_holder(&target.roles, &target.permissions(), "this service account")
    }

    /// The same rule for any holder of `roles` granting `permissions` (an
    /// account, or a person in the console).
    pub fn check_may_act_on_holder(
        &self,
        roles: &[String],
        permissions: &std::collections::BTreeSet<String>,
        who: &str,
    ) -> Result<(), ManageError> {
        let Some(auth) = &self.authority else {
            return Ok(());
        };
        if roles.iter().any(|r| r == "admin")
            && !auth.has_role("admin")
            && !auth.has_role("operator")
        {
            return Err(ManageError::Forbidden(format!(
                "only an admin may act on {who}: it holds the admin role"
            )));
        }
        if let Some(p) = permissions.iter().find(|p| !auth.holds(p)) {
            return Err(ManageError::Forbidden(format!(
                "{who} holds `{p}`, which you do not hold"
            )));
        }
        Ok(())
    }

    /// The account this actor calls with, if it is a service account.
    pub(crate) fn own_account(&self) -> Option<&str> {
        (self.authority.is_some() && self.kind == SERVICE_ACCOUNT).then_some(self.id.as_str())
    }

    /// An audit event by this actor about `target` (type, id), from the
    /// caller's address.
    pub(crate) fn record(&self, action: &str, target: (&str, &str), at: i64) -> AuditEvent {
        AuditEvent::new(&self.kind, &self.id, action, at)
            .on(target.0, target.1)
            .from_address(self.source_ip.clone())
            .for_person(self.on_behalf_of.clone())
            .by_email(self.email.clone())
    }

    /// An audit event by this actor about an account of `org`.
    fn event(
        &self,
        org: &str,
        action: &str,
        target: &str,
        at: i64,
        details: serde_json::Value,
    ) -> AuditEvent {
        self.record(action, ("service_account", target), at)
            .in_org(org)
            .with(details)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("{0}")]
    Invalid(InvalidField),
    #[error("service account not found")]
    NotFound,
    #[error("role not found")]
    RoleNotFound,
    #[error("credential not found")]
    CredentialNotFound,
    #[error("member not found")]
    MemberNotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("hashing the secret failed")]
    Hash,
    /// The Argon2 pool is full (this caller's share of it, or in all).
    #[error("too many secrets are being hashed right now; retry shortly")]
    Busy,
    /// `If-Match` named a version the account is no longer at.
    #[error("the service account changed since you read it")]
    PreconditionFailed,
}

impl From<InvalidField> for ManageError {
    fn from(e: InvalidField) -> Self {
        Self::Invalid(e)
    }
}

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> ManageError {
    ManageError::Invalid(InvalidField {
        field,
        reason: reason.into(),
    })
}

/// Hashes a new secret for `actor` off the async runtime: on the server's
/// bounded, fair Argon2 pool, queued under the actor (so one admin
/// creating accounts in a loop takes turns with every tenant's sign-ins
/// instead of starving them), or, for the CLI, on the blocking pool.
pub(crate) async fn hash_off_runtime(
    actor: &Actor,
    secret: &ClientSecret,
) -> Result<String, ManageError> {
    let fail = |e: SecretError| match e {
        SecretError::Overloaded => ManageError::Busy,
        SecretError::Hash => ManageError::Hash,
    };
    match &actor.argon {
        Some(pool) => {
            let key = std::hash::BuildHasher::hash_one(
                &std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default(),
                (&actor.kind, &actor.id),
            );
            hash_on(pool, key, secret).await.map_err(fail)
        }
        None => {
            let s = secret.clone();
            tokio::task::spawn_blocking(move || hash_blocking(&s))
                .await
                .map_err(|_| ManageError::Hash)?
                .map_err(fail)
        }
    }
}

/// RFC 3339 for a Unix time (`null` for none).
pub fn rfc3339(t: Option<i64>) -> serde_json::Value {
    t.and_then(crate::domain::rfc3339)
        .map(serde_json::Value::String)
        .unwrap_or(serde_json::Value::Null)
}
