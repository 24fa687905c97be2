//! The admin console (`/console`): a page for an org's people, served from
//! the binary. The page is static HTML, CSS and plain JavaScript
//! (`assets/`), which call the admin API with the session cookie: every
//! rule the API enforces holds for the console because the console *is*
//! an API client, with no second implementation of any rule.
//!
//! Security: server-side sessions (`manage::console`), a `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` and `__Host-` over https), a CSRF
//! token on every change, and a Content-Security-Policy with no inline
//! script or style and nothing from another origin.
mod session;
mod sso;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::http::AppState;

/// The header a change from the console carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const INDEX: &str = include_str!("assets/index.html");
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "views.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/views.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/pages.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("assets/favicon.svg"),
    ),
];

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/console", get(page))
        .route(
            "/console/",
            get(|| async { axum::response::Redirect::permanent("/console") }),
        )
        .route("/console/login", get(page))
        .route("/console/assets/{file}", get(asset))
        .route(
            "/console/session",
            get(session::whoami)
                .post(session::redeem)
                .delete(session::sign_out),
        )
        .route("/console/sso/start", get(sso::start))
        .route("/console/sso/callback", get(sso::callback))
        .layer(axum::middleware::map_response(harden))
}

/// Every console answer: the CSP and its companions; nothing cached but
/// the static assets.
async fn harden(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

/// The page: one document for every view (the script picks the view);
/// it says whether single sign-on is configured.
async fn page(State(state): State<Arc<AppState>>) -> Response {
    let sso = if state.config.console_sso.is_some() {
        "on"
    } else {
        "off"
    };
    let html = INDEX.replace("{{SSO}}", sso);
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, ..)| *name == file) {
        Some((_, kind, body)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// Is warden served over https (by its issuer URL)? Then cookies are
/// `Secure` and the session's carries the `__Host-` prefix.
fn secure(state: &AppState) -> bool {
    state.issuer.starts_with("https://")
}

fn cookie_name(state: &AppState) -> &'static str {
    if secure(state) {
        "__Host-warden_console"
    } else {
        "warden_console"
    }
}

/// The value of cookie `name` in the request, if sent once.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= 100)
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(state: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie(headers, cookie_name(state)).map(str::to_owned)
}

/// A `Set-Cookie` value: `HttpOnly` always, `Secure` over https.
fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    same_site: &str,
    max_age: i64,
) -> HeaderValue {
    let secure = if secure(state) { "; Secure" } else { "" };
    let v = format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
    );
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// Text for an HTML page.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
