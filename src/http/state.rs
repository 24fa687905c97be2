//! What the HTTP handlers share.
use crate::config::Config;

/// Everything a request handler needs, shared behind one `Arc`: the
/// OAuth flows' context, and what only the HTTP layer uses. It derefs to
/// the flows' context, so a handler reads `state.db` either way.
pub struct AppState {
    pub oauth: crate::oauth::Context,
    pub config: Config,
    /// Set when shutdown begins: readiness fails so load balancers stop
    /// sending new work while in-flight requests finish.
    pub draining: std::sync::atomic::AtomicBool,
    /// The JWKS `Cache-Control` value, derived from the key settings.
    pub jwks_cache_control: axum::http::HeaderValue,
    /// The console's single sign-on provider's authorization and token
    /// endpoints, from its discovery document, and when they were read.
    pub sso_endpoints: std::sync::Mutex<Option<(std::time::Instant, (String, String))>>,
    /// The metadata's `scopes_supported`: the admin plane's permissions
    /// and the role catalogs', as stored at start.
    pub scopes_supported: Vec<String>,
}

impl std::ops::Deref for AppState {
    type Target = crate::oauth::Context;
    fn deref(&self) -> &Self::Target {
        &self.oauth
    }
}
