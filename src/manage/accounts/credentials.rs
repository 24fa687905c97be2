//! An account's credentials as a list: its secrets (by prefix), the
//! public keys it signs client assertions with (`private_key_jwt`), and
//! the external issuers it trusts (federated credentials).
//! Adding or removing one takes what resetting the secret takes: the
//! right to act on the account (`change::target`).
use serde_json::json;

use super::change::target;
use crate::crypto::jose::PublicJwk;
use crate::db::credentials::StoredCredential;
use crate::db::write::{ChangeOutcome, OrgSnapshot};
use crate::domain::account::{AccountKind, ExpiresIn, ServiceAccount};
use crate::domain::federation::{FederatedTrust, TrustError, validate_fetch_url};
use crate::manage::{ManageError, Scope, invalid, rfc3339};

/// One credential as the API and the CLI show it: its public parts only.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CredentialView {
    /// The credential's id; for a secret, its prefix.
    pub id: String,
    /// `secret`, `public_key` or `federated`.
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: Option<String>,
    /// When it stops working (a rotated-out secret's grace, a key's
    /// expiry); null for never.
    pub expires_at: Option<String>,
    /// When it last authenticated a request.
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
    /// A secret's public prefix (`arm_sk_` and five characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// A public key's JWK (public members, `kid`, `alg`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwk: Option<serde_json::Value>,
    /// Where the client publishes its public keys (a JWK Set), instead of
    /// one `jwk`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// A federated credential's issuer (the tokens' `iss`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The tokens' `sub`, exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A value the tokens' `aud` must contain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Claims the tokens must carry with exactly these values.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub claims: Option<serde_json::Value>,
}

fn ts(t: Option<i64>) -> Option<String> {
    rfc3339(t).as_str().map(str::to_owned)
}

impl From<&StoredCredential> for CredentialView {
    fn from(c: &StoredCredential) -> Self {
        Self {
            id: c.id.clone(),
            kind: c.kind.clone(),
            created_at: ts(Some(c.created_at)),
            expires_at: ts(c.expires_at),
            last_used_at: ts(c.last_used_at),
            last_used_ip: c.last_used_ip.clone(),
            prefix: None,
            jwk: c.jwk.as_deref().and_then(|j| serde_json::from_str(j).ok()),
            jwks_uri: c.jwks_uri.clone(),
            issuer: c.issuer.clone(),
            subject: c.subject.clone(),
            audience: c.audience.clone(),
            claims: (c.kind == "federated")
                .then(|| serde_json::from_str(&c.claims).unwrap_or_else(|_| json!({}))),
        }
    }
}

/// The secrets of `a` that work at `now`, as credentials.
fn secrets(a: &ServiceAccount, now: i64) -> Vec<CredentialView> {
    let secret = |prefix: &str, created: Option<i64>, expires: Option<i64>| CredentialView {
        id: prefix.to_owned(),
        kind: "secret".into(),
        created_at: ts(created),
        expires_at: ts(expires),
        last_used_at: None,
        last_used_ip: None,
        prefix: Some(prefix.to_owned()),
        jwk: None,
        jwks_uri: None,
        issuer: None,
        subject: None,
        audience: None,
        claims: None,
    };
    let current = a
        .secret_prefix
        .as_deref()
        .map(|p| secret(p, a.secret_created_at, None));
    let previous = a
        .live_previous_secrets(now)
        .map(|p| secret(&p.prefix, p.created_at, Some(p.expires_at)));
    current.into_iter().chain(previous).collect()
}

/// Every credential of the account `key`.
pub async fn list(scope: &Scope<'_>, key: &str) -> Result<Vec<CredentialView>, ManageError> {
    let a = scope
        .db
        .find_account(scope.org, key)
        .await?
        .filter(|a| !a.is_deleted())
        .ok_or(ManageError::NotFound)?;
    let mut out = secrets(&a, scope.now);
    let uses = scope.db.secret_uses(&a.id).await?;
    for s in &mut out {
        if let Some((_, at, ip)) = uses.iter().find(|(p, _, _)| Some(p) == s.prefix.as_ref()) {
            s.last_used_at = ts(Some(*at));
            s.last_used_ip = ip.clone();
        }
    }
    let stored = scope.db.list_credentials(&a.id).await?;
    out.extend(stored.iter().map(CredentialView::from));
    Ok(out)
}

/// What a new credential is.
pub enum NewCredential {
    /// A public key, given as a JWK.
    PublicKey(serde_json::Value),
    /// Public keys the client publishes at a `jwks_uri` (fetched as an
    /// external issuer's are: https only unless `allow_http`).
    KeySet { jwks_uri: String, allow_http: bool },
    /// Trust in an external issuer's tokens; `allow_http`: the deployment
    /// lets federation use plain http (`WARDEN_FEDERATION_ALLOW_HTTP`);
    /// `own_issuer`: this warden's issuer URL, which is never trusted (its
    /// tokens are checked live where they are presented, and exchanging
    /// one would skip that).
    Federated {
        issuer: String,
        subject: String,
        audience: String,
        claims: Option<serde_json::Value>,
        allow_http: bool,
        own_issuer: String,
    },
}

/// The stored parts of a new credential, and what its audit event says.
struct Parts {
    kind: &'static str,
    jwk: Option<String>,
    jwks_uri: Option<String>,
    trust: Option<FederatedTrust>,
    details: serde_json::Value,
}

fn parts(new: NewCredential) -> Result<Parts, ManageError> {
    match new {
        NewCredential::PublicKey(jwk) => {
            let key = PublicJwk::parse(&jwk).map_err(|e| invalid("jwk", e.to_string()))?;
            Ok(Parts {
                kind: "public_key",
                jwk: Some(key.to_json().to_string()),
                jwks_uri: None,
                trust: None,
                details: json!({"jwk": key.to_json()}),
            })
        }
        NewCredential::KeySet {
            jwks_uri,
            allow_http,
        } => {
            validate_fetch_url("jwks_uri", &jwks_uri, allow_http)
                .map_err(|TrustError(field, why)| invalid(field, why))?;
            Ok(Parts {
                kind: "public_key",
                jwk: None,
                details: json!({"jwks_uri": jwks_uri}),
                jwks_uri: Some(jwks_uri),
                trust: None,
            })
        }
        NewCredential::Federated {
            issuer,
            subject,
            audience,
            claims,
            allow_http,
            own_issuer,
        } => {
            if issuer.trim_end_matches('/') == own_issuer.trim_end_matches('/') {
                return Err(invalid(
                    "issuer",
                    "this warden's own tokens are not exchanged: the account authenticates with its own credentials",
                ));
            }
            let t = FederatedTrust::new(&issuer, &subject, &audience, claims.as_ref(), allow_http)
                .map_err(|TrustError(field, why)| invalid(field, why))?;
            let details = json!({"issuer": t.issuer, "subject": t.subject,
                                 "audience": t.audience, "claims": t.claims});
            Ok(Parts {
                kind: "federated",
                jwk: None,
                jwks_uri: None,
                trust: Some(t),
                details,
            })
        }
    }
}

/// Adds a credential to the account `key`, expiring after `expires_in`
/// (`30d` … `1y`, `never`: the default).
pub async fn add(
    scope: &Scope<'_>,
    key: &str,
    new: NewCredential,
    expires_in: Option<&str>,
) -> Result<CredentialView, ManageError> {
    let a = target(scope, key).await?;
    if a.kind != AccountKind::Credential {
        return Err(ManageError::Conflict(
            "an integration account has no client id to authenticate with".into(),
        ));
    }
    let expires_at = match expires_in {
        None => None,
        Some(p) => ExpiresIn::parse(p)
            .ok_or_else(|| invalid("expires_in", "one of 30d, 60d, 90d, 180d, 1y or never"))?
            .expires_at(scope.now),
    };
    let p = parts(new)?;
    let c = StoredCredential {
        id: uuid::Uuid::now_v7().to_string(),
        account_id: a.id.clone(),
        kind: p.kind.into(),
        jwk: p.jwk,
        jwks_uri: p.jwks_uri,
        issuer: p.trust.as_ref().map(|t| t.issuer.clone()),
        subject: p.trust.as_ref().map(|t| t.subject.clone()),
        audience: p.trust.as_ref().map(|t| t.audience.clone()),
        claims: p
            .trust
            .as_ref()
            .map(FederatedTrust::claims_text)
            .unwrap_or_default(),
        created_at: scope.now,
        created_by: format!("{}:{}", scope.actor.kind, scope.actor.id),
        expires_at,
        last_used_at: None,
        last_used_ip: None,
    };
    let mut details = p.details;
    details["credential"] = json!(c.id);
    details["type"] = json!(p.kind);
    details["expires_at"] = rfc3339(expires_at);
    let ev = scope
        .actor
        .record("credential.added", ("service_account", &a.id), scope.now)
        .in_org(&a.org_id)
        .with(details);
    let check = |s: &OrgSnapshot| scope.actor.check_in_write(Some(&a.id), false, s);
    let guard = scope.actor.guard(&a.org_id, false, &check);
    match scope.db.insert_credential(&c, &ev, guard.as_ref()).await? {
        ChangeOutcome::Done => Ok(CredentialView::from(&c)),
        ChangeOutcome::Refused(why) => Err(ManageError::Conflict(why)),
        ChangeOutcome::Stale => Err(ManageError::Conflict(format!(
            "an account holds at most {} credentials besides its secret",
            crate::db::credentials::MAX_CREDENTIALS
        ))),
    }
}

/// Removes one of the account `key`'s credentials. A secret, listed by its
/// prefix, is ended as `revoke_secret` ends it (the current one is
/// replaced by a reset or rotation instead: 409).
pub async fn remove(scope: &Scope<'_>, key: &str, id: &str) -> Result<(), ManageError> {
    if id.starts_with(crate::domain::credentials::CLIENT_SECRET_PREFIX) {
        return super::revoke_secret(scope, key, id).await.map(|_| ());
    }
    let a = target(scope, key).await?;
    // The audit event says which key it was, public parts only.
    let gone = scope
        .db
        .list_credentials(&a.id)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(ManageError::CredentialNotFound)?;
    let shown = CredentialView::from(&gone);
    let ev = scope
        .actor
        .record("credential.removed", ("service_account", &a.id), scope.now)
        .in_org(&a.org_id)
        .with(
            json!({"credential": id, "type": gone.kind, "jwk": shown.jwk,
                     "jwks_uri": shown.jwks_uri, "issuer": shown.issuer,
                     "subject": shown.subject}),
        );
    let check = |s: &OrgSnapshot| scope.actor.check_in_write(Some(&a.id), false, s);
    let guard = scope.actor.guard(&a.org_id, false, &check);
    match scope
        .db
        .delete_credential(&a.id, id, &ev, guard.as_ref())
        .await?
    {
        ChangeOutcome::Done => Ok(()),
        ChangeOutcome::Refused(why) => Err(ManageError::Conflict(why)),
        ChangeOutcome::Stale => Err(ManageError::CredentialNotFound),
    }
}
