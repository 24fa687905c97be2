//! HTTP: routes, middleware, and the only place responses are shaped.
pub(crate) mod admin;
mod error;
pub mod form;
mod health;
mod introspect;
pub(crate) mod metrics;
mod openapi;
mod token;
pub mod wellknown;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::app::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: Arc<AppState>) -> Router {
    let metadata = wellknown::metadata_body(&state);
    let openapi = openapi::document(&state.issuer);
    metrics::handle();
    // Routes that wait on the database or Argon2 get a deadline; the rest
    // answer from memory at once and skip the timer it would cost.
    let waiting = Router::new()
        .route("/oauth/token", post(token::token))
        .route("/oauth/introspect", post(introspect::introspect))
        .route("/oauth/revoke", post(introspect::revoke))
        .merge(admin::router())
        .route("/readyz", get(health::readyz))
        .route_layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ));
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(wellknown::metadata).with_state(metadata.clone()))
        .route("/.well-known/openid-configuration", get(wellknown::metadata).with_state(metadata))
        .route("/.well-known/jwks.json", get(wellknown::jwks))
        .route("/api/v1/openapi.json", get(wellknown::json_doc).with_state(openapi))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::render))
        .merge(waiting)
        // A route layer, so the route template (MatchedPath) is known.
        .route_layer(axum::middleware::from_fn(metrics::track))
        .fallback(not_found)
        .with_state(state)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            // Spans carry the path only: a query string could hold
            // credentials a misbehaving client put there.
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, RandomRequestId))
}

/// Request ids are random UUIDs (v4) drawn from the process's CSPRNG
/// rather than a system call each, as tower-http's `MakeRequestUuid` does.
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(crate::domain::credentials::random_bytes())
            .into_uuid();
        let mut buf = uuid::Uuid::encode_buffer();
        let text = id.hyphenated().encode_lower(&mut buf);
        HeaderValue::from_str(text).ok().map(RequestId::new)
    }
}

async fn not_found() -> impl IntoResponse {
    error::problem(StatusCode::NOT_FOUND, "Not Found", "no such endpoint")
}
