//! Client authentication and the account-state checks, in the order the
//! spec fixes: the secret first (so an unauthenticated caller learns
//! nothing about the account), then disabled, expired, source address.
use std::net::IpAddr;

use serde_json::json;

use super::Context;
use super::OAuthError;
pub(super) use super::throttle::{
    address_queue_key, count_address_failure, count_failure, limiter_ip, throttle,
};
use crate::bookkeeping::Usage;
use crate::crypto::secrets::SecretError;
use crate::db::AuditEvent;
use crate::db::hot::Audience;
use crate::domain::account::ServiceAccount;
use crate::domain::credentials::{ClientId, ClientSecret};
use crate::domain::resource_server::ResourceServer;
use crate::domain::resource_server::is_issuer;
use crate::ratelimit::AuthLimiter;

/// What a client presented, from the Basic header or the form body.
#[derive(Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: ClientSecret,
    pub via_basic: bool,
}

impl ClientCredentials {
    /// The client id as it may be logged: only when it has the shape of
    /// one (a secret pasted in its place never reaches a log line).
    pub fn shown_id(&self) -> Option<String> {
        shown_client_id(&self.client_id)
    }
}

/// A client id as it may be logged: only when it has the shape of one.
pub fn shown_client_id(id: &str) -> Option<String> {
    ClientId::parse(id)
        .map(|c| c.as_str().to_owned())
        .or_else(|| resource_server_id_shape(id).then(|| id.to_owned()))
}

/// A client assertion (`private_key_jwt`, RFC 7523 §2.2): the JWT and the
/// form's `client_id`, if sent.
#[derive(Debug)]
pub struct ClientAssertion {
    pub client_id: Option<String>,
    pub assertion: String,
    /// The client it claims to be (`assertion::claimed_client`): a lookup
    /// key only.
    pub claimed: String,
}

impl ClientAssertion {
    pub fn new(client_id: Option<String>, assertion: String) -> Self {
        let claimed = super::assertion::claimed_client(client_id.as_deref(), &assertion);
        Self {
            client_id,
            assertion,
            claimed,
        }
    }
}

/// How a client authenticates at the token endpoint.
#[derive(Debug)]
pub enum ClientAuth {
    Secret(ClientCredentials),
    Assertion(ClientAssertion),
}

impl ClientAuth {
    /// The client id as it may be logged (for an assertion, the form's, or
    /// the `sub` it names before verification).
    pub fn shown_id(&self) -> Option<String> {
        match self {
            Self::Secret(c) => c.shown_id(),
            Self::Assertion(a) => shown_client_id(&a.claimed),
        }
    }
}

/// Verifies the client's secret. Unknown, deleted and wrong-secret clients
/// all get the same answer; only a secret presented for a live credential
/// costs an Argon2 run (client ids are public: hiding which exist protected
/// nothing, and a dummy hash for each invented id gave a flood the whole
/// pool). A value that is not shaped like a warden secret (bad checksum) is
/// refused before any lookup. Repeated failures from one address are
/// throttled (`ratelimit`).
pub async fn authenticate(
    ctx: &Context,
    creds: &ClientCredentials,
    source_ip: Option<IpAddr>,
    now: i64,
) -> Result<ServiceAccount, OAuthError> {
    secret_probing(ctx, creds, source_ip, now, None)
        .await
        .map(|(a, _)| a)
}

/// As `authenticate`, also saying whether `audience` is a live resource
/// server's and which permissions it declares, read in the same round trip
/// as the account (the token endpoint's hot path makes one database call,
/// not two).
pub async fn authenticate_probing(
    ctx: &Context,
    auth: &ClientAuth,
    source_ip: Option<IpAddr>,
    now: i64,
    audience: Option<&str>,
) -> Result<(ServiceAccount, Audience), OAuthError> {
    match auth {
        ClientAuth::Secret(creds) => secret_probing(ctx, creds, source_ip, now, audience).await,
        ClientAuth::Assertion(a) => {
            super::assertion::authenticate(ctx, a, source_ip, now, audience, "/oauth/token").await
        }
    }
}

async fn secret_probing(
    ctx: &Context,
    creds: &ClientCredentials,
    source_ip: Option<IpAddr>,
    now: i64,
    audience: Option<&str>,
) -> Result<(ServiceAccount, Audience), OAuthError> {
    let fail = OAuthError::InvalidClient {
        basic: creds.via_basic,
    };
    let ip = limiter_ip(source_ip);
    throttle(&ctx.client_limiter, &creds.client_id, ip, "token")?;
    let well_formed = creds.secret.is_well_formed();
    let (account, audience) = match ClientId::parse(&creds.client_id) {
        Some(id) if well_formed => match ctx
            .db
            .account_for_token(id.as_str(), audience, None)
            .await?
        {
            Some(t) if !t.account.is_deleted() => (Some(t.account), t.audience),
            _ => (None, Audience::Unknown),
        },
        _ => (None, Audience::Unknown),
    };
    let stored = account
        .as_ref()
        .and_then(|a| a.hash_for(creds.secret.expose(), now));
    let ok = secret_matches(ctx, &ctx.client_limiter, creds, stored, source_ip).await?;
    match account {
        Some(a) if ok => {
            let prefix = crate::domain::credentials::secret_prefix(creds.secret.expose());
            ctx.bookkeeper.secret_used(&a.id, &prefix, now, source_ip);
            Ok((a, audience))
        }
        other => {
            client_failed(ctx, &creds.client_id, other.as_ref(), source_ip, now);
            Err(fail)
        }
    }
}

/// A failed client authentication at the token endpoint: audited on the
/// account when there is one, and counted for the throttle.
pub(super) fn client_failed(
    ctx: &Context,
    client_id: &str,
    account: Option<&ServiceAccount>,
    source_ip: Option<IpAddr>,
    now: i64,
) {
    if let Some(a) = account {
        ctx.bookkeeper
            .used(&a.id, now, source_ip, Usage::Failed, || {
                credential_event(a, "client.auth_failed", source_ip, now, json!({}))
            });
    }
    count_failure(
        ctx,
        &ctx.client_limiter,
        client_id,
        limiter_ip(source_ip),
        now,
        account.map(|a| ("service_account", a.id.clone(), Some(a.org_id.clone()))),
    );
}

/// Does the presented secret match `stored` (the live hash; `None`: no
/// such credential, refused without Argon2)? A value without a valid
/// checksum is refused without Argon2 too. The run waits its turn in the
/// Argon2 pool under the caller's address; refused because the pool is
/// full (and this address's queue the longest), it counts against the
/// address when the address is failing already, so a flood throttles
/// itself instead of holding the queue (`AuthLimiter::overloaded`).
async fn secret_matches(
    ctx: &Context,
    limiter: &AuthLimiter,
    creds: &ClientCredentials,
    stored: Option<&str>,
    source_ip: Option<IpAddr>,
) -> Result<bool, OAuthError> {
    if !creds.secret.is_well_formed() {
        return Ok(false);
    }
    let ip = limiter_ip(source_ip);
    let key = address_queue_key(ip);
    match ctx
        .verifier
        .verify(&creds.client_id, &creds.secret, stored, key)
        .await
    {
        Ok(ok) => Ok(ok),
        Err(SecretError::Overloaded) => {
            limiter.overloaded(ip);
            metrics::counter!("warden_argon2_refused_total").increment(1);
            Err(OAuthError::TemporarilyUnavailable)
        }
        Err(SecretError::Hash) => Err(OAuthError::ServerError),
    }
}

pub(super) fn resource_server_id_shape(s: &str) -> bool {
    use crate::domain::resource_server::RS_CLIENT_ID_PREFIX;
    s.len() <= 64
        && s.strip_prefix(RS_CLIENT_ID_PREFIX)
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// May this (authenticated) account get tokens right now, from `source_ip`?
pub fn check_state(
    account: &ServiceAccount,
    source_ip: Option<IpAddr>,
    now: i64,
) -> Result<(), OAuthError> {
    account
        .check_usable(now, source_ip)
        .map_err(|why| OAuthError::AccessDenied(why.reason()))
}

/// An audit event about a credential, acted by the account itself.
pub fn credential_event(
    a: &ServiceAccount,
    action: &str,
    source_ip: Option<IpAddr>,
    now: i64,
    details: serde_json::Value,
) -> AuditEvent {
    AuditEvent::new("service_account", &a.id, action, now)
        .in_org(&a.org_id)
        .on("service_account", &a.id)
        .from_address(source_ip.map(|ip| ip.to_string()))
        .with(details)
}

/// Authenticates a resource server (introspection, revocation). Unknown,
/// disabled and deleted servers and wrong secrets all get `invalid_client`,
/// throttled like clients at the token endpoint.
pub async fn authenticate_resource_server(
    ctx: &Context,
    creds: &ClientCredentials,
    source_ip: Option<IpAddr>,
    now: i64,
) -> Result<ResourceServer, OAuthError> {
    let row = if rs_precheck(ctx, creds, source_ip)? {
        ctx.db
            .resource_server_by_client_id(&creds.client_id)
            .await?
    } else {
        None
    };
    rs_verify(ctx, creds, source_ip, now, row).await
}

/// The checks that refuse a resource server before any lookup: the
/// throttle (an error), and the shapes of id and secret (`Ok(false)`: do
/// not look it up, it cannot exist).
pub fn rs_precheck(
    ctx: &Context,
    creds: &ClientCredentials,
    source_ip: Option<IpAddr>,
) -> Result<bool, OAuthError> {
    throttle(
        &ctx.rs_limiter,
        &creds.client_id,
        limiter_ip(source_ip),
        "introspect",
    )?;
    if creds
        .client_id
        .starts_with(crate::domain::credentials::CLIENT_ID_PREFIX)
    {
        return Err(OAuthError::NotAResourceServer);
    }
    Ok(creds.secret.is_well_formed() && resource_server_id_shape(&creds.client_id))
}

/// Verifies a resource server's secret against the row looked up for it
/// (`None`: no such server, a dummy hash is verified instead), counting
/// failures for the throttle.
pub async fn rs_verify(
    ctx: &Context,
    creds: &ClientCredentials,
    source_ip: Option<IpAddr>,
    now: i64,
    rs: Option<ResourceServer>,
) -> Result<ResourceServer, OAuthError> {
    let ip = limiter_ip(source_ip);
    let stored = rs.as_ref().map(|r| r.hash_for(creds.secret.expose(), now));
    let ok = secret_matches(ctx, &ctx.rs_limiter, creds, stored, source_ip).await?;
    match rs {
        Some(r) if ok && r.is_live() && !is_issuer(&r.audience, &ctx.issuer) => Ok(r),
        other => {
            // Resource servers belong to the deployment, not an org.
            count_failure(
                ctx,
                &ctx.rs_limiter,
                &creds.client_id,
                ip,
                now,
                other
                    .as_ref()
                    .map(|r| ("resource_server", r.id.clone(), None)),
            );
            Err(OAuthError::InvalidClient {
                basic: creds.via_basic,
            })
        }
    }
}
