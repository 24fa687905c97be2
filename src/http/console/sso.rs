//! Single sign-on for the console with the operator's OpenID Connect
//! provider: the authorization code flow with PKCE (S256), `state` and
//! `nonce` (OpenID Connect Core §3.1). `state` is single-use and bound to
//! the browser that started the flow (a `SameSite=Lax` cookie, which the
//! provider's redirect back carries); the ID token is verified with the
//! provider's published keys (the same cache federation uses), for this
//! client, with this flow's nonce; the mapping rule then gives the org and
//! roles, or refuses the person.
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use data_encoding::BASE64;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{cookie, escape, set_cookie};
use crate::config::ConsoleSso;
use crate::crypto::jose::Unverified;
use crate::crypto::opaque::{new_token, pkce_challenge, same, token_hash};
use crate::db::console::SsoState;
use crate::domain::console::first_match;
use crate::http::AppState;
use crate::manage::ManageError;
use crate::manage::console::{Person, check_roles_exist, start as start_session};
use crate::now_unix;
use crate::oauth::issuers::{KeySource, MAX_VERIFY_ATTEMPTS};

const BINDING: &str = "warden_sso";
/// How long a person has to finish signing in at the provider.
const FLOW_TTL: i64 = 600;

fn redirect_uri(state: &AppState) -> String {
    format!("{}/console/sso/callback", state.issuer)
}

/// A page saying why signing in failed, with the way back.
fn failure(status: StatusCode, why: &str) -> Response {
    tracing::info!(reason = why, "console single sign-on refused");
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in failed · warden</title>\
         <link rel=\"stylesheet\" href=\"/console/assets/app.css\"><link rel=\"icon\" href=\"/console/assets/favicon.svg\"></head><body><main class=\"signin\">\
         <h1>Sign-in failed</h1><p role=\"alert\">{}</p><p><a href=\"/console/login\">Back to sign-in</a></p>\
         </main></body></html>",
        escape(why)
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

/// How long the provider's discovery document is trusted before it is
/// read again.
const DISCOVERY_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// The provider's endpoints, from its discovery document (read at most
/// every five minutes, so sign-in attempts do not make warden fetch it).
async fn endpoints(state: &AppState, sso: &ConsoleSso) -> Result<(String, String), String> {
    let cached = |s: &AppState| {
        let c = s.sso_endpoints.lock().unwrap_or_else(|e| e.into_inner());
        c.as_ref()
            .filter(|(at, _)| at.elapsed() < DISCOVERY_TTL)
            .map(|(_, e)| e.clone())
    };
    if let Some(e) = cached(state) {
        return Ok(e);
    }
    let e = discover(state, sso).await?;
    *state
        .sso_endpoints
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some((std::time::Instant::now(), e.clone()));
    Ok(e)
}

/// Reads the provider's discovery document, which must name the
/// configured issuer.
async fn discover(state: &AppState, sso: &ConsoleSso) -> Result<(String, String), String> {
    let url = format!("{}/.well-known/openid-configuration", sso.issuer);
    let (doc, _) =
        state.issuers.outbound().get_json(&url).await.map_err(|e| {
            format!("the sign-in provider's discovery document could not be read: {e}")
        })?;
    if doc.get("issuer").and_then(Value::as_str) != Some(sso.issuer.as_str()) {
        return Err("the sign-in provider's discovery document names another issuer".into());
    }
    let get = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
    match (get("authorization_endpoint"), get("token_endpoint")) {
        (Some(a), Some(t)) if a.starts_with("https://") || a.starts_with("http://") => Ok((a, t)),
        _ => Err("the sign-in provider's discovery document lacks its endpoints".into()),
    }
}

/// Sends the browser to the provider.
pub async fn start(State(state): State<Arc<AppState>>) -> Response {
    let Some(sso) = &state.config.console_sso else {
        return failure(StatusCode::NOT_FOUND, "single sign-on is not configured");
    };
    let (authorize, _) = match endpoints(&state, sso).await {
        Ok(e) => e,
        Err(why) => return failure(StatusCode::BAD_GATEWAY, &why),
    };
    let (flow, browser) = (new_token(), new_token());
    let pending = SsoState {
        browser: token_hash(&browser),
        nonce: new_token(),
        verifier: new_token(),
        expires_at: now_unix() + FLOW_TTL,
    };
    if state.db.put_sso_state(&flow, &pending).await.is_err() {
        return failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable; try again",
        );
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &sso.client_id)
        .append_pair("redirect_uri", &redirect_uri(&state))
        .append_pair("scope", &sso.scopes)
        .append_pair("state", &flow)
        .append_pair("nonce", &pending.nonce)
        .append_pair("code_challenge", &pkce_challenge(&pending.verifier))
        .append_pair("code_challenge_method", "S256")
        .finish();
    let sep = if authorize.contains('?') { '&' } else { '?' };
    let mut r = Redirect::to(&format!("{authorize}{sep}{query}")).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, BINDING, &browser, "/console/sso", "Lax", FLOW_TTL),
    );
    r
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    /// The issuer of the answer (RFC 9207), when the provider names it.
    iss: Option<String>,
}

/// The provider's redirect back: checks the flow, redeems the code,
/// verifies the ID token, applies the mapping rule, starts the session.
pub async fn callback(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(cb): Query<Callback>,
) -> Response {
    let Some(sso) = &state.config.console_sso else {
        return failure(StatusCode::NOT_FOUND, "single sign-on is not configured");
    };
    match finish(&state, sso, peer, &headers, cb).await {
        Ok(r) => r,
        Err((status, why)) => failure(status, &why),
    }
}

type Refusal = (StatusCode, String);

fn refuse(why: impl Into<String>) -> Refusal {
    (StatusCode::FORBIDDEN, why.into())
}

async fn finish(
    state: &Arc<AppState>,
    sso: &ConsoleSso,
    peer: SocketAddr,
    headers: &HeaderMap,
    cb: Callback,
) -> Result<Response, Refusal> {
    let unavailable = |_| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable; try again".to_owned(),
        )
    };
    let flow = cb
        .state
        .filter(|s| s.len() <= 100)
        .ok_or_else(|| refuse("the provider's answer has no state"))?;
    let pending = state
        .db
        .take_sso_state(&flow)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| refuse("this sign-in expired or was already used: start again"))?;
    let browser = cookie(headers, BINDING).unwrap_or_default();
    if !same(&token_hash(browser), &pending.browser) {
        return Err(refuse(
            "this sign-in was started in another browser: start again",
        ));
    }
    let now = now_unix();
    if pending.expires_at <= now {
        return Err(refuse("this sign-in took too long: start again"));
    }
    // RFC 9207: an answer naming another issuer is a mix-up attack.
    if cb.iss.as_deref().is_some_and(|i| i != sso.issuer) {
        return Err(refuse("the answer comes from another issuer"));
    }
    if let Some(e) = cb.error {
        let d = cb.error_description.unwrap_or_default();
        return Err(refuse(format!("the provider refused: {e} {d}")));
    }
    let code = cb
        .code
        .ok_or_else(|| refuse("the provider's answer has no code"))?;
    let claims = id_token(state, sso, &code, &pending).await?;
    let rule = first_match(&sso.rules, &claims)
        .ok_or_else(|| refuse("no rule of this console admits your account: ask the operator"))?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 255);
    let sub = sub.ok_or_else(|| refuse("the ID token has no subject"))?;
    // Shown in the console and the audit log like an account's name.
    if sub.trim() != sub || crate::domain::text::validate_person_name("sub", sub, 255).is_err() {
        return Err(refuse(
            "the ID token's subject holds characters the console does not accept (control, \
             bidi or zero-width characters, or surrounding spaces)",
        ));
    }
    if sub.starts_with("link:") {
        return Err(refuse("this subject is reserved for sign-in links"));
    }
    check_roles_exist(&state.db, &rule.org, &rule.roles)
        .await
        .map_err(|e| {
            refuse(format!(
                "the mapping rule for org `{}` is wrong: {e}",
                rule.org
            ))
        })?;
    // Only a verified address names the person (on pages and in the
    // audit log): an unverified one is whatever they typed.
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .filter(|_| claims.get("email_verified") == Some(&Value::Bool(true)));
    let person = Person {
        org: &rule.org,
        subject: sub,
        email,
        roles: Some(&rule.roles),
        source_ip: crate::http::client_address(state, peer, headers),
        method: "sso",
    };
    let signed = start_session(&state.db, &person, now)
        .await
        .map_err(|e| match e {
            ManageError::Forbidden(why) => (StatusCode::FORBIDDEN, why),
            ManageError::Conflict(why) => (StatusCode::CONFLICT, why),
            other => (StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
        })?;
    // A page of ours moves on to the console: a redirect would carry on
    // the provider's cross-site navigation, on which the SameSite=Strict
    // session cookie is not sent.
    let page = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                <meta http-equiv=\"refresh\" content=\"0;url=/console\"><title>Signed in · warden</title>\
                <link rel=\"stylesheet\" href=\"/console/assets/app.css\"><link rel=\"icon\" href=\"/console/assets/favicon.svg\"></head><body><main class=\"signin\">\
                <p>Signed in. <a href=\"/console\">Continue to the console</a></p></main></body></html>";
    let body = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    let mut r = super::session::signed_in(state, &signed, body);
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, BINDING, "", "/console/sso", "Lax", 0),
    );
    Ok(r)
}

/// Redeems the code at the provider's token endpoint and verifies the ID
/// token it answers with; its claims.
async fn id_token(
    state: &AppState,
    sso: &ConsoleSso,
    code: &str,
    pending: &SsoState,
) -> Result<Map<String, Value>, Refusal> {
    let gateway = |why: String| (StatusCode::BAD_GATEWAY, why);
    let (_, token_endpoint) = endpoints(state, sso).await.map_err(gateway)?;
    let (form, basic) = token_request(state, sso, code, pending);
    let answer = state
        .issuers
        .outbound()
        .post_form(&token_endpoint, form, basic)
        .await
        .map_err(|e| {
            gateway(format!(
                "the provider's token endpoint refused the code: {e}"
            ))
        })?;
    let jwt = answer
        .get("id_token")
        .and_then(Value::as_str)
        .ok_or_else(|| gateway("the provider answered no ID token".into()))?;
    let jws = Unverified::decode(jwt)
        .ok_or_else(|| refuse("the ID token is not a JWT warden accepts"))?;
    let keys = state
        .issuers
        .keys(KeySource::Issuer(&sso.issuer), jws.kid.as_deref())
        .await;
    let claims: Map<String, Value> = keys
        .iter()
        .take(MAX_VERIFY_ATTEMPTS)
        .find_map(|k| jws.verify(k))
        .ok_or_else(|| {
            refuse("the ID token's signature does not verify with the provider's keys")
        })?;
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    if text("iss") != Some(sso.issuer.as_str()) {
        return Err(refuse("the ID token is from another issuer"));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == sso.client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&sso.client_id)),
        _ => false,
    };
    if !aud_ok || text("azp").is_some_and(|azp| azp != sso.client_id) {
        return Err(refuse("the ID token is for another client"));
    }
    if !text("nonce").is_some_and(|n| same(n, &pending.nonce)) {
        return Err(refuse("the ID token's nonce is not this sign-in's"));
    }
    crate::oauth::federation::check_times(&claims, now_unix()).map_err(refuse)?;
    Ok(claims)
}

/// The token request's form, and its Basic credentials when warden's client
/// has a secret (client_secret_basic: both parts form-encoded first, RFC
/// 6749 §2.3.1); a public client sends its `client_id` in the form.
fn token_request(
    state: &AppState,
    sso: &ConsoleSso,
    code: &str,
    pending: &SsoState,
) -> (String, Option<String>) {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", &redirect_uri(state))
        .append_pair("code_verifier", &pending.verifier);
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let basic =
        match &sso.client_secret {
            Some(secret) => Some(BASE64.encode(
                format!("{}:{}", enc(&sso.client_id), enc(secret.expose_secret())).as_bytes(),
            )),
            None => {
                form.append_pair("client_id", &sso.client_id);
                None
            }
        };
    (form.finish(), basic)
}
