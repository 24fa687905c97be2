//! Client authentication and the account-state checks, in the order the
//! spec fixes: the secret first (so an unauthenticated caller learns
//! nothing about the account), then disabled, expired, source address.
use std::net::IpAddr;

use serde_json::json;

use super::OAuthError;
use crate::app::AppState;
use crate::crypto::secrets::SecretError;
use crate::db::AuditEvent;
use crate::domain::account::{ServiceAccount, Status};
use crate::domain::credentials::{ClientId, ClientSecret};

/// What a client presented, from the Basic header or the form body.
#[derive(Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: ClientSecret,
    pub via_basic: bool,
}

/// Verifies the client's secret. Unknown, deleted and wrong-secret clients
/// all pay one Argon2 verification and get the same answer.
pub async fn authenticate(
    state: &AppState,
    creds: &ClientCredentials,
    source_ip: Option<IpAddr>,
    now: i64,
) -> Result<ServiceAccount, OAuthError> {
    let fail = OAuthError::InvalidClient {
        basic: creds.via_basic,
    };
    let account = match ClientId::parse(&creds.client_id) {
        Some(id) => state
            .db
            .account_by_client_id(id.as_str())
            .await?
            .filter(|a| !a.is_deleted()),
        None => None,
    };
    let stored = account
        .as_ref()
        .and_then(|a| a.hash_for(creds.secret.expose(), now));
    let ok = state
        .verifier
        .verify(&creds.client_id, &creds.secret, stored)
        .await
        .map_err(|e| match e {
            SecretError::Overloaded => OAuthError::TemporarilyUnavailable,
            SecretError::Hash => OAuthError::ServerError,
        })?;
    match account {
        Some(a) if ok => Ok(a),
        Some(a) => {
            state.bookkeeper.record(credential_event(
                &a,
                "client.auth_failed",
                source_ip,
                now,
                json!({}),
            ));
            Err(fail)
        }
        None => Err(fail),
    }
}

/// May this (authenticated) account get tokens right now, from `source_ip`?
pub fn check_state(
    account: &ServiceAccount,
    source_ip: Option<IpAddr>,
    now: i64,
) -> Result<(), OAuthError> {
    if account.status == Status::Disabled {
        return Err(OAuthError::AccessDenied("the service account is disabled"));
    }
    if account.is_expired(now) {
        return Err(OAuthError::AccessDenied("the service account has expired"));
    }
    if !account.allowed_ips.permits(source_ip) {
        return Err(OAuthError::AccessDenied(
            "the service account may not be used from this address",
        ));
    }
    Ok(())
}

/// An audit event about a credential, acted by the account itself.
pub fn credential_event(
    a: &ServiceAccount,
    action: &str,
    source_ip: Option<IpAddr>,
    now: i64,
    details: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        org_id: Some(a.org_id.clone()),
        at: now,
        actor_type: "service_account".into(),
        actor_id: a.id.clone(),
        action: action.into(),
        target_type: Some("service_account".into()),
        target_id: Some(a.id.clone()),
        source_ip: source_ip.map(|ip| ip.to_string()),
        details,
    }
}

/// Authenticates a resource server (introspection, revocation). Unknown,
/// disabled and deleted servers and wrong secrets all get `invalid_client`.
pub async fn authenticate_resource_server(
    state: &AppState,
    creds: &ClientCredentials,
) -> Result<crate::domain::resource_server::ResourceServer, OAuthError> {
    use crate::domain::resource_server::RS_CLIENT_ID_PREFIX;
    let fail = OAuthError::InvalidClient {
        basic: creds.via_basic,
    };
    let rs = if creds.client_id.starts_with(RS_CLIENT_ID_PREFIX) && creds.client_id.len() <= 64 {
        state
            .db
            .find_resource_server(&creds.client_id)
            .await?
            .filter(|r| r.client_id == creds.client_id)
    } else {
        None
    };
    let stored = rs.as_ref().map(|r| r.secret_hash.as_str());
    let ok = state
        .verifier
        .verify(&creds.client_id, &creds.secret, stored)
        .await
        .map_err(|e| match e {
            SecretError::Overloaded => OAuthError::TemporarilyUnavailable,
            SecretError::Hash => OAuthError::ServerError,
        })?;
    match rs {
        Some(r) if ok && r.is_live() => Ok(r),
        _ => Err(fail),
    }
}
