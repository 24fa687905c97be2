//! The OAuth flows, independent of HTTP: what the token endpoint decides
//! and why. Errors are the RFC 6749 §5.2 codes; `http::error` alone maps
//! them to status codes.
pub mod assertion;
mod audience;
pub use audience::refuse_issuer_as_default_audience;
pub mod client_auth;
pub mod federation;
pub mod inactive;
pub mod introspect;
mod issue;
pub mod issuers;
pub mod outbound;
pub mod revoke;
mod rs_auth;
mod throttle;
pub mod token;

use crate::db::DbError;

/// What the OAuth flows are given to work with: the issuer's identity and
/// token lifetimes, the database, the keys, and the shared caches and
/// throttles. The server (`app.rs`) builds it; nothing here reads the
/// configuration or knows of HTTP.
pub struct Context {
    pub issuer: String,
    /// The audience of tokens requested without `resource`.
    pub default_audience: String,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: i64,
    pub db: crate::db::Db,
    pub keys: crate::crypto::keys::KeyStore,
    pub verifier: crate::crypto::secrets::SecretVerifier,
    pub refresh: crate::crypto::refresh::RefreshCodec,
    pub bookkeeper: crate::bookkeeping::Bookkeeper,
    /// Access tokens whose signatures were already checked.
    pub verified: crate::crypto::verify::VerifiedTokens,
    /// Accounts' registered public keys, parsed once.
    pub jwks: crate::crypto::jose::JwkCache,
    /// External issuers' keys, for federated credentials.
    pub issuers: issuers::Issuers,
    /// Throttles failed client authentication at the token endpoint.
    pub client_limiter: crate::ratelimit::AuthLimiter,
    /// Throttles failed resource-server authentication (introspection,
    /// revocation).
    pub rs_limiter: crate::ratelimit::AuthLimiter,
    /// Federated grants may omit `client_id` (single-tenant deployments).
    pub federation_client_id_optional: bool,
    /// A client assertion's `aud` must be the issuer alone
    /// (`WARDEN_CLIENT_ASSERTION_AUDIENCE=strict`).
    pub client_assertion_audience_strict: bool,
}

/// RFC 6749 §5.2 errors (plus `invalid_target` from RFC 8707 and the
/// availability errors a client should retry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    InvalidRequest(String),
    /// `basic`: the client tried HTTP Basic, so the answer names that scheme.
    InvalidClient {
        basic: bool,
    },
    /// A service account's client id at an endpoint only resource
    /// servers may call (introspection). Said without checking the secret:
    /// the answer depends on the id's shape alone.
    NotAResourceServer,
    InvalidGrant(&'static str),
    /// Authenticated, but the account may not get tokens now (disabled,
    /// expired, source address not allowed). Answered with 403.
    AccessDenied(&'static str),
    UnsupportedGrantType,
    InvalidScope(String),
    InvalidTarget(&'static str),
    PayloadTooLarge,
    /// Too many failed authentications through this client id or address;
    /// retry after this many seconds. Answered with 429.
    TooManyAttempts(u64),
    TemporarilyUnavailable,
    ServerError,
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::PayloadTooLarge => "invalid_request",
            Self::InvalidClient { .. } | Self::NotAResourceServer => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::AccessDenied(_) => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget(_) => "invalid_target",
            Self::TemporarilyUnavailable | Self::TooManyAttempts(_) => "temporarily_unavailable",
            Self::ServerError => "server_error",
        }
    }

    /// A human-readable description: fixed text or sanitized input only.
    pub fn description(&self) -> String {
        match self {
            Self::InvalidRequest(d) | Self::InvalidScope(d) => d.clone(),
            Self::InvalidClient { .. } => "client authentication failed".into(),
            Self::NotAResourceServer => {
                "only resource servers (client ids arm_rs_…) may introspect tokens; \
                 register your API with `warden resource-servers create` and use its credentials"
                    .into()
            }
            Self::InvalidGrant(d) | Self::AccessDenied(d) | Self::InvalidTarget(d) => (*d).into(),
            Self::UnsupportedGrantType => "grant_type must be client_credentials, refresh_token, \
                 urn:ietf:params:oauth:grant-type:jwt-bearer or \
                 urn:ietf:params:oauth:grant-type:token-exchange"
                .into(),
            Self::PayloadTooLarge => "request body too large".into(),
            Self::TooManyAttempts(s) => {
                format!("too many failed authentication attempts from this address; retry in {s} s")
            }
            Self::TemporarilyUnavailable => {
                "the server is temporarily unable to handle the request; retry later".into()
            }
            Self::ServerError => "internal error".into(),
        }
    }
}

impl From<DbError> for OAuthError {
    fn from(e: DbError) -> Self {
        if e.is_transient() {
            tracing::warn!(error = %e, "database unavailable; answering 503");
            Self::TemporarilyUnavailable
        } else {
            tracing::error!(error = %e, "database error");
            Self::ServerError
        }
    }
}
