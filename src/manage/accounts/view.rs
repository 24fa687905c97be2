//! How the API and the CLI show an account.
use crate::domain::account::{AccountKind, ServiceAccount};
use crate::domain::credentials::ClientSecret;
use crate::manage::rfc3339;

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
    /// The APIs (audience URIs) it may get tokens for; empty: every API.
    pub allowed_resources: Vec<String>,
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
            // An account created without a secret has none until a reset.
            if a.secret_hash.is_some() {
                secrets.push(SecretView {
                    prefix: a.secret_prefix.clone(),
                    created_at: ts(a.secret_created_at),
                    expires_at: None,
                });
            }
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
            allowed_resources: a.allowed_resources.clone(),
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
