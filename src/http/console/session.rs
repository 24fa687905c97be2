//! `/console/session`: redeeming a sign-in link (POST), who is signed in
//! and the session's CSRF token (GET), signing out (DELETE).
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{CSRF_HEADER, cookie_name, session_cookie, set_cookie};
use crate::http::AppState;
use crate::http::admin::{ApiError, ApiJson};
use crate::manage::console::{self, SignedIn};
use crate::now_unix;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redeem {
    /// The token of a sign-in link (the part after `#token=`).
    token: String,
}

/// A request from another origin (a page elsewhere posting a link's token
/// to sign the browser in as someone else) is refused: browsers send
/// `Origin` with every POST and DELETE.
fn same_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let ours = url::Url::parse(&state.issuer)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    match origin {
        None => Ok(()),
        Some(o) if o == ours => Ok(()),
        Some(_) => Err(ApiError::Forbidden(
            "the console accepts this only from its own origin".into(),
        )),
    }
}

/// Answers a new session: its cookie, nothing else.
pub(super) fn signed_in(state: &AppState, s: &SignedIn, body: Response) -> Response {
    let max_age = s.expires_at - now_unix();
    let mut r = body;
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, cookie_name(state), &s.cookie, "/", "Strict", max_age),
    );
    r
}

pub async fn redeem(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Redeem>,
) -> Result<Response, ApiError> {
    same_origin(&state, &headers)?;
    let ip = crate::http::client_address(&state, peer, &headers);
    let token = body.token.trim();
    if token.is_empty() || token.len() > 100 {
        return Err(ApiError::Unauthorized);
    }
    match console::redeem_link(&state.db, token, ip, now_unix()).await? {
        Some(s) => Ok(signed_in(&state, &s, StatusCode::NO_CONTENT.into_response())),
        None => Err(ApiError::BadRequest(
            "this sign-in link is unknown, already used or expired: ask for a new one (warden console link)".into(),
        )),
    }
}

pub async fn whoami(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Not signed in is an answer, not an error: the page asks first.
    let signed_out = || Json(json!({"signed_in": false})).into_response();
    let Some(cookie) = session_cookie(&state, &headers) else {
        return Ok(signed_out());
    };
    let ip = crate::http::client_address(&state, peer, &headers);
    let Some(c) = console::session(&state.db, &cookie, ip, now_unix()).await? else {
        return Ok(signed_out());
    };
    let permissions = c.actor.authority.map(|a| a.permissions).unwrap_or_default();
    Ok(Json(json!({
        "signed_in": true,
        "subject": c.member.subject,
        "email": c.member.email,
        "org": c.org,
        "roles": c.member.roles,
        "permissions": permissions,
        "csrf_token": c.csrf,
        "expires_at": crate::manage::rfc3339(Some(c.expires_at)),
    }))
    .into_response())
}

pub async fn sign_out(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    same_origin(&state, &headers)?;
    let cookie = session_cookie(&state, &headers).ok_or(ApiError::Unauthorized)?;
    let ip = crate::http::client_address(&state, peer, &headers);
    let c = console::session(&state.db, &cookie, ip, now_unix())
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !crate::crypto::opaque::same(sent, &c.csrf) {
        return Err(ApiError::Forbidden(
            "signing out needs the session's CSRF token (X-CSRF-Token)".into(),
        ));
    }
    console::sign_out(&state.db, &cookie, &c, now_unix()).await?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, cookie_name(&state), "", "/", "Strict", 0),
    );
    Ok(r)
}
