//! HTTP: routes, middleware, and the only place responses are shaped.
pub(crate) mod admin;
mod authorize;
pub(crate) mod console;
mod error;
pub mod form;
mod health;
mod introspect;
pub(crate) mod metrics;
mod oauth_request;
mod observe;
pub(crate) mod openapi;
mod state;

pub use state::AppState;
mod token;
pub mod wellknown;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;

pub fn router(state: Arc<AppState>) -> Router {
    let metadata = wellknown::metadata_body(&state);
    let openapi = openapi::document(&state.issuer);
    let access_log = state.config.access_log;
    metrics::handle();
    // Routes that wait on the database or Argon2 get a deadline; the rest
    // answer from memory at once and skip the timer it would cost.
    let waiting = Router::new()
        .route("/oauth/token", post(token::token))
        .route("/oauth/introspect", post(introspect::introspect))
        .route("/oauth/revoke", post(introspect::revoke))
        .merge(admin::router())
        .merge(console::router())
        .route("/readyz", get(health::readyz))
        .route_layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            state.config.request_timeout,
        ));
    Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(wellknown::metadata).with_state(metadata.clone()),
        )
        .route(
            "/.well-known/openid-configuration",
            get(wellknown::metadata).with_state(metadata),
        )
        .route("/.well-known/jwks.json", get(wellknown::jwks))
        .route(
            "/oauth/authorize",
            get(authorize::authorize).post(authorize::authorize),
        )
        .route(
            "/api/v1/openapi.json",
            get(wellknown::json_doc).with_state(openapi),
        )
        .route("/healthz", get(health::healthz))
        .merge(public_metrics(&state))
        .merge(waiting)
        // Before the route layer, so a 405 is tracked like any answer.
        .method_not_allowed_fallback(method_not_allowed)
        // A route layer, so the route template (MatchedPath) is known.
        .route_layer(metrics::TrackLayer)
        .fallback(not_found)
        .with_state(state)
        .layer(observe::ObserveLayer { access_log })
}

/// `/metrics` on the public listener, unless `metrics_listen` moves it.
fn public_metrics(state: &AppState) -> Router<Arc<AppState>> {
    match state.config.metrics_listen {
        Some(_) => Router::new(),
        None => Router::new().route("/metrics", get(metrics::render)),
    }
}

/// The router of the separate metrics listener (`metrics_listen`).
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics::render))
        .fallback(not_found)
        .with_state(state)
}

async fn method_not_allowed() -> impl IntoResponse {
    error::problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method Not Allowed",
        "this endpoint does not take that method (see Allow)",
    )
}

async fn not_found() -> impl IntoResponse {
    error::problem(StatusCode::NOT_FOUND, "Not Found", "no such endpoint")
}

/// The caller's address: the TCP peer, or behind a trusted proxy the
/// right-most untrusted `X-Forwarded-For` hop. The one place every endpoint
/// (token, introspection, revocation, the admin API) takes it from.
pub fn client_address(
    state: &AppState,
    peer: std::net::SocketAddr,
    headers: &axum::http::HeaderMap,
) -> Option<std::net::IpAddr> {
    let xff: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !xff.is_empty() && state.config.trusted_proxies.is_empty() {
        warn_untrusted_forwarding(peer);
    }
    crate::domain::ip::client_ip(peer.ip(), &xff, &state.config.trusted_proxies)
}

/// Requests carry `X-Forwarded-For` but no proxy is trusted: behind a
/// balancer every request then comes from the balancer's address, so one
/// attacker's failures throttle everyone and allowlists see the balancer.
/// Said once per process, on the first such request.
fn warn_untrusted_forwarding(peer: std::net::SocketAddr) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::AcqRel) {
        tracing::warn!(
            peer = %peer.ip(),
            "requests carry X-Forwarded-For but WARDEN_TRUSTED_PROXIES is empty: if warden runs \
             behind a load balancer, set it to the balancer's own addresses, or every client \
             shares the balancer's address for throttling and allowlists"
        );
    }
}
