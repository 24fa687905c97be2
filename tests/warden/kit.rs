//! The resource-server kit (`warden-resource`) against a real warden:
//! offline verification through the issuer's metadata and JWKS.
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Header, encode};
use serde_json::{Value, json};
use warden_resource::{Config, Error, Verifier};

use crate::harness::{Backend, TestServer, both_backends};
use crate::offline::server_key;

const API: &str = "https://api.example.com";

fn verifier(s: &TestServer, refetch: Duration) -> Verifier {
    let mut c = Config::new(&s.issuer, API);
    c.allow_http = true;
    c.refetch_interval = refetch;
    Verifier::new(c).expect("verifier")
}

/// The claims of a genuine token, re-signed by the server's key with
/// another header: to present a token that only its header makes wrong.
fn resign(s: &TestServer, token: &str, typ: &str, kid: Option<&str>) -> String {
    let payload = token.split('.').nth(1).expect("payload");
    let claims: Value = serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(payload.as_bytes())
            .expect("b64"),
    )
    .expect("json");
    let (own_kid, key) = server_key(s);
    let mut h = Header::new(Algorithm::ES256);
    h.typ = Some(typ.into());
    h.kid = Some(kid.unwrap_or(&own_kid).to_owned());
    encode(&h, &claims, &key).expect("sign")
}

async fn a_genuine_token_verifies_and_nothing_else_does(b: Backend) {
    let s = TestServer::start(b).await;
    s.create_api(API, &[("invoices:read", "Read invoices")])
        .await;
    s.role("invoice-reader", &["invoices:read"]).await;
    let a = s.create_account(&["invoice-reader"]).await;
    let t = s.token_ok(&a, &[("resource", API)]).await;
    let token = t["access_token"].as_str().unwrap_or_default().to_owned();
    let v = verifier(&s, Duration::from_secs(30));
    let claims = v.verify(&token).await.expect("genuine");
    assert_eq!(claims.client_id, a.client_id);
    assert_eq!(claims.scope, "invoices:read");
    assert_eq!(v.jwks_fetches(), 1);
    // Cached: no second fetch.
    v.verify(&token).await.expect("again");
    assert_eq!(v.jwks_fetches(), 1);
    // Another audience: said so.
    let other = s.token_ok(&a, &[]).await;
    let other = other["access_token"].as_str().unwrap_or_default();
    assert!(matches!(v.verify(other).await, Err(Error::WrongAudience)));
    // Tampered, typ confusion (a client assertion's `JWT`, an ID token's
    // `JWT` too), garbage: invalid.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = data_encoding::BASE64URL_NOPAD.encode(
        json!({"iss": s.issuer, "aud": API, "scope": "invoices:write"})
            .to_string()
            .as_bytes(),
    );
    for bad in [
        parts.join("."),
        resign(&s, &token, "JWT", None),
        "not-a-token".to_owned(),
    ] {
        assert!(
            matches!(v.verify(&bad).await, Err(Error::InvalidToken)),
            "{bad}"
        );
    }
    // The same header as warden's, re-signed: accepted (the check above
    // is the typ, not the re-signing).
    assert!(v.verify(&resign(&s, &token, "at+jwt", None)).await.is_ok());
    // Another issuer's verifier refuses it.
    let mut c = Config::new("http://127.0.0.1:9", API);
    c.allow_http = true;
    let elsewhere = Verifier::new(c).expect("verifier");
    assert!(matches!(
        elsewhere.verify(&token).await,
        Err(Error::Unavailable(_))
    ));
}

/// A thousand concurrent requests with a key id the issuer never
/// published cost at most one JWKS fetch between them.
async fn an_unknown_kid_storm_costs_one_fetch(b: Backend) {
    let s = TestServer::start(b).await;
    s.create_resource_server(API).await;
    let a = s.create_account(&["viewer"]).await;
    let t = s.token_ok(&a, &[("resource", API)]).await;
    let token = t["access_token"].as_str().unwrap_or_default().to_owned();
    let v = Arc::new(verifier(&s, Duration::from_secs(2)));
    v.verify(&token).await.expect("genuine");
    // Past the refetch interval: an unknown kid may cause a fetch now.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let before = v.jwks_fetches();
    let forged = resign(&s, &token, "at+jwt", Some("a-key-nobody-published"));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (v, t) = (v.clone(), forged.clone());
            tokio::spawn(async move { v.verify(&t).await })
        })
        .collect();
    for task in tasks {
        assert!(matches!(
            task.await.expect("task"),
            Err(Error::InvalidToken)
        ));
    }
    assert_eq!(v.jwks_fetches() - before, 1, "{}", v.jwks_fetches());
    // The genuine token still verifies, from the cache.
    v.verify(&token).await.expect("genuine");
}

both_backends!(
    a_genuine_token_verifies_and_nothing_else_does,
    an_unknown_kid_storm_costs_one_fetch,
);
