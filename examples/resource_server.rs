//! A resource server (your API) protected by warden, as axum middleware.
//!
//! Two ways to check a bearer token, chosen with VALIDATION:
//! - `jwks` (default): verify the JWT offline against warden's JWKS. Fast,
//!   no call per request; a disable or role removal is seen only when the
//!   token expires (at most 15 minutes).
//! - `introspect`: ask warden on every request. One round trip, but the
//!   answer reflects the account's live state (disabled, roles, IP).
//!
//! ```sh
//! WARDEN_URL=http://127.0.0.1:8080 AUDIENCE=https://api.example.com \
//! RS_CLIENT_ID=arm_rs_... RS_CLIENT_SECRET=arm_sk_... VALIDATION=introspect \
//! cargo run --example resource_server
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/invoices
//! ```
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use tokio::sync::RwLock;

/// What the middleware learned about the caller.
#[derive(Clone, Debug)]
struct Caller {
    client_id: String,
    org: String,
    scope: Vec<String>,
}

struct Guard {
    warden: String,
    audience: String,
    introspect: Option<(String, String)>,
    http: reqwest::Client,
    jwks: RwLock<(JwkSet, Instant)>,
}

impl Guard {
    /// Offline: signature, `typ`, issuer, audience, expiry.
    async fn verify_jwt(&self, token: &str) -> Option<Value> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if !matches!(header.alg, Algorithm::ES256 | Algorithm::EdDSA)
            || header.typ.as_deref() != Some("at+jwt")
        {
            return None;
        }
        let kid = header.kid?;
        // An unknown kid means warden rotated keys: refetch, at most every 30 s.
        let stale = {
            let k = self.jwks.read().await;
            k.0.find(&kid).is_none() && k.1.elapsed() > Duration::from_secs(30)
        };
        if stale && let Ok(set) = fetch_jwks(&self.http, &self.warden).await {
            *self.jwks.write().await = (set, Instant::now());
        }
        let keys = self.jwks.read().await;
        let key = DecodingKey::from_jwk(keys.0.find(&kid)?).ok()?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&self.warden]);
        v.set_audience(&[&self.audience]);
        v.leeway = 30;
        jsonwebtoken::decode::<Value>(token, &key, &v)
            .ok()
            .map(|d| d.claims)
    }

    /// Live: ask warden, passing the address *our* caller came from.
    async fn introspect(&self, token: &str, source_ip: &str) -> Option<Value> {
        let (id, secret) = self.introspect.as_ref()?;
        let body: Value = self
            .http
            .post(format!("{}/oauth/introspect", self.warden))
            .basic_auth(id, Some(secret))
            .form(&[("token", token), ("source_ip", source_ip)])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (body["active"] == true).then_some(body)
    }
}

async fn fetch_jwks(http: &reqwest::Client, warden: &str) -> reqwest::Result<JwkSet> {
    http.get(format!("{warden}/.well-known/jwks.json"))
        .send()
        .await?
        .json()
        .await
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
        "invalid token",
    )
        .into_response()
}

async fn require_token(
    State(guard): State<Arc<Guard>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let Some(token) = token else {
        return unauthorized();
    };
    // Behind a proxy, use the client address your proxy vouches for
    // (the right-most untrusted X-Forwarded-For hop), never a raw header.
    let claims = match guard.introspect {
        Some(_) => guard.introspect(&token, &peer.ip().to_string()).await,
        None => guard.verify_jwt(&token).await,
    };
    let Some(c) = claims else {
        return unauthorized();
    };
    let caller = Caller {
        client_id: c["client_id"].as_str().unwrap_or_default().to_owned(),
        org: c["org"].as_str().unwrap_or_default().to_owned(),
        scope: c["scope"]
            .as_str()
            .unwrap_or_default()
            .split(' ')
            .map(str::to_owned)
            .collect(),
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

async fn list_invoices(Extension(caller): Extension<Caller>) -> Response {
    if !caller.scope.iter().any(|s| s == "invoices:read") {
        return (StatusCode::FORBIDDEN, "needs invoices:read").into_response();
    }
    // Tenancy is yours to enforce: only this org's data.
    Json(json!({"org": caller.org, "caller": caller.client_id, "invoices": []})).into_response()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let warden = env("WARDEN_URL", "http://127.0.0.1:8080");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let introspect = match env("VALIDATION", "jwks").as_str() {
        "introspect" => Some((
            std::env::var("RS_CLIENT_ID")?,
            std::env::var("RS_CLIENT_SECRET")?,
        )),
        _ => None,
    };
    let jwks = fetch_jwks(&http, &warden).await?;
    let guard = Arc::new(Guard {
        audience: env("AUDIENCE", "https://api.example.com"),
        warden,
        introspect,
        http,
        jwks: RwLock::new((jwks, Instant::now())),
    });
    let app = Router::new()
        .route("/invoices", get(list_invoices))
        .layer(middleware::from_fn_with_state(guard, require_token));
    let listener = tokio::net::TcpListener::bind(env("LISTEN", "127.0.0.1:3000")).await?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
