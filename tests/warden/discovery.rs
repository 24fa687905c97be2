//! Metadata, JWKS, health, and the keys directory a first start creates.
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::harness::{Backend, TestServer, both_backends};
use crate::jwt::jwks;

async fn metadata_describes_the_server(b: Backend) {
    let s = TestServer::start(b).await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let m: Value = s
            .http
            .get(s.url(path))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(m["issuer"], s.issuer.as_str());
        assert_eq!(m["token_endpoint"], format!("{}/oauth/token", s.issuer));
        assert_eq!(m["jwks_uri"], format!("{}/.well-known/jwks.json", s.issuer));
        assert_eq!(
            m["grant_types_supported"],
            serde_json::json!([
                "client_credentials",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "urn:ietf:params:oauth:grant-type:token-exchange"
            ])
        );
        assert_eq!(
            m["token_endpoint_auth_methods_supported"],
            serde_json::json!([
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt"
            ])
        );
        assert_eq!(
            m["token_endpoint_auth_signing_alg_values_supported"],
            serde_json::json!(["ES256", "ES384", "PS256", "RS256", "EdDSA"])
        );
        // Nothing warden does not do: an authorization endpoint that
        // supports no response type (the MCP SDKs need one named), and no
        // ID tokens.
        assert_eq!(
            m["authorization_endpoint"],
            format!("{}/oauth/authorize", s.issuer)
        );
        assert_eq!(m["response_types_supported"], serde_json::json!([]));
        for absent in [
            "id_token_signing_alg_values_supported",
            "subject_types_supported",
            "userinfo_endpoint",
        ] {
            assert!(m.get(absent).is_none(), "{absent}");
        }
    }
}

async fn jwks_publishes_the_signing_key(b: Backend) {
    let s = TestServer::start(b).await;
    let r = s
        .http
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap_or("")
            .contains("max-age=")
    );
    let set = jwks(&s).await;
    assert_eq!(set.keys.len(), 1);
    let raw = s.get_json("/.well-known/jwks.json").await;
    let k = &raw["keys"][0];
    assert_eq!(k["kty"], "EC");
    assert_eq!(k["crv"], "P-256");
    assert_eq!(k["alg"], "ES256");
    assert_eq!(k["use"], "sig");
    assert!(k.get("d").is_none(), "no private part in the JWKS");

    // The first start created the key: private file 0600, dir 0700.
    let dir = s.dir.path().join("keys");
    assert_eq!(
        std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777,
        0o700
    );
    let mut private = 0;
    for e in std::fs::read_dir(&dir).expect("read keys") {
        let p = e.expect("entry").path();
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext == "key" || ext == "secret" {
            private += 1;
            assert_eq!(
                std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
                0o600,
                "{}",
                p.display()
            );
        }
    }
    assert_eq!(private, 2, "one signing key and the refresh-token key");
}

async fn keys_survive_a_restart(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["viewer"]).await;
    let body = s.token_ok(&a, &[]).await;
    let url = s.db_url.clone();
    let dir = s.stop().await;
    let s2 = TestServer::start_on(b, dir, &url, &[]).await;
    // Same key, same refresh key: old tokens still verify and refresh.
    let token = body["access_token"].as_str().unwrap_or_default();
    let set = jwks(&s2).await;
    let kid = jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("kid");
    assert!(set.find(&kid).is_some());
    let r = s2
        .refresh(&a, body["refresh_token"].as_str().unwrap_or_default())
        .await;
    assert_eq!(r.status(), 200);
}

async fn health_and_readiness(b: Backend) {
    let s = TestServer::start(b).await;
    let r = s.http.get(s.url("/healthz")).send().await.expect("get");
    assert_eq!(r.status(), 200);
    let r = s.http.get(s.url("/readyz")).send().await.expect("get");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["status"], "ready");
    // Readiness follows the database.
    s.db.close().await;
    let r = s.http.get(s.url("/readyz")).send().await.expect("get");
    assert_eq!(r.status(), 503);
    let r = s.http.get(s.url("/healthz")).send().await.expect("get");
    assert_eq!(r.status(), 200);
}

async fn metrics_in_prometheus_format(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["viewer"]).await;
    let t = s.token_ok(&a, &[]).await;
    let _ = s
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some((&a.client_id, "arm_sk_wrong")),
        )
        .await;
    // An invented method is counted as `other`, never as its own series.
    let brew = reqwest::Method::from_bytes(b"BREW").expect("method");
    let r = s
        .http
        .request(brew, s.url("/oauth/token"))
        .send()
        .await
        .expect("brew");
    assert_eq!(r.status(), 405);
    for _ in 0..3 {
        let r = s
            .http
            .get(s.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("jwks");
        assert_eq!(r.status(), 200);
    }
    let r = s.http.get(s.url("/metrics")).send().await.expect("get");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/plain")
    );
    let text = r.text().await.expect("body");
    for needle in [
        "warden_http_requests_total{",
        "route=\"/oauth/token\"",
        "warden_http_request_duration_seconds_bucket{",
        "outcome=\"2xx\"",
        "outcome=\"4xx\"",
        "warden_tokens_total{grant=\"client_credentials\",result=\"issued\"}",
        "warden_client_auth_failures_total{endpoint=\"token\"}",
        "warden_db_pool_connections{state=\"open\"}",
        "warden_db_inline_fallbacks_total 0",
        "warden_signing_key_age_seconds{",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from /metrics:\n{text}"
        );
    }
    assert!(!text.contains("BREW"), "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
    // Handles are cached per thread: every request still counts (the
    // recorder is shared by the servers of this test process, hence >=).
    let jwks_count: f64 = text
        .lines()
        .filter(|l| {
            l.starts_with("warden_http_requests_total{")
                && l.contains("route=\"/.well-known/jwks.json\"")
                && l.contains("status=\"200\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(jwks_count >= 3.0, "{text}");
    for secret in [
        a.secret.as_str(),
        t["access_token"].as_str().unwrap_or("x"),
        t["refresh_token"].as_str().unwrap_or("x"),
    ] {
        assert!(!text.contains(secret));
    }
}

/// Every response carries `x-request-id`: the caller's own when it is
/// short printable ASCII, otherwise a fresh UUID.
async fn request_ids_are_returned(b: Backend) {
    let s = TestServer::start(b).await;
    let get = |id: Option<&'static str>| {
        let mut r = s.http.get(s.url("/.well-known/jwks.json"));
        if let Some(id) = id {
            r = r.header("x-request-id", id);
        }
        r.send()
    };
    let r = get(Some("trace-abc.123")).await.expect("get");
    assert_eq!(r.headers()["x-request-id"], "trace-abc.123");
    let mut seen = std::collections::HashSet::new();
    for bad in [None, Some("has space"), Some("")] {
        let r = get(bad).await.expect("get");
        let id = r.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4);
        assert!(seen.insert(id), "ids repeat");
    }
    // Errors carry one too.
    let r = s
        .http
        .get(s.url("/no/such/thing"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    assert!(r.headers().contains_key("x-request-id"));
}

both_backends!(
    request_ids_are_returned,
    metadata_describes_the_server,
    metrics_in_prometheus_format,
    jwks_publishes_the_signing_key,
    keys_survive_a_restart,
    health_and_readiness
);
