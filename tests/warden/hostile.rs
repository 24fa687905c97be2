//! Hostile access tokens at introspection and at the admin API's bearer
//! check. Many are signed with the server's *real* key, so the only thing
//! wrong with them is the one property under test. Every one must be
//! `{"active": false}` (introspection) or 401 (admin API); none may be
//! fetched from (`jku`/`x5u`), crash the server or answer 500.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use data_encoding::BASE64URL_NOPAD;
use serde_json::{Value, json};

use crate::harness::{Backend, TestServer, both_backends};

const API: &str = "https://api.example.com";

fn b64(v: &[u8]) -> String {
    BASE64URL_NOPAD.encode(v)
}

/// The server's signing key as an aws-lc-rs key pair.
fn server_key(s: &TestServer) -> (String, EcdsaKeyPair) {
    let (kid, pem) = crate::offline::server_key_pem(s);
    let pem = pem::parse(pem).expect("pem");
    let kp =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pem.contents()).expect("pkcs8");
    (kid, kp)
}

enum Sig<'a> {
    /// ES256 with this key pair.
    Es256(&'a EcdsaKeyPair),
    /// HMAC-SHA256 keyed with these bytes.
    Hs256(&'a [u8]),
    /// This literal signature segment.
    Raw(&'a str),
}

fn forge(header: &Value, claims: &Value, sig: Sig) -> String {
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let s = match sig {
        Sig::Es256(kp) => b64(kp
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .expect("sign")
            .as_ref()),
        Sig::Hs256(k) => b64(hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, k),
            signing_input.as_bytes(),
        )
        .as_ref()),
        Sig::Raw(s) => s.to_owned(),
    };
    format!("{signing_input}.{s}")
}

/// `v` with `extra`'s members set on it; a `null` member removes the key.
fn patched(mut v: Value, extra: Value) -> Value {
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            if x.is_null() {
                m.remove(k);
            } else {
                m.insert(k.clone(), x.clone());
            }
        }
    }
    v
}

/// Counts connections to a listener that must never be contacted.
async fn tripwire() -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/jwks.json", l.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((_c, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
        }
    });
    (url, hits)
}

/// Every hostile variant of `genuine` that needs no outside listener.
async fn hostile_tokens(s: &TestServer, genuine: &str) -> Vec<(String, String)> {
    let parts: Vec<&str> = genuine.split('.').collect();
    let base: Value =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(parts[1].as_bytes()).expect("b64"))
            .expect("claims");
    let real_header: Value =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(parts[0].as_bytes()).expect("b64"))
            .expect("header");
    let (kid, key) = server_key(s);
    assert_eq!(real_header["kid"], kid);
    let h = |extra: Value| patched(json!({"alg": "ES256", "typ": "at+jwt", "kid": kid}), extra);
    let c = |extra: Value| patched(base.clone(), extra);
    let now = warden::now_unix();
    let jwks_text = s
        .http
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .text()
        .await
        .expect("jwks body");
    let jwks: Value = serde_json::from_str(&jwks_text).expect("jwks json");
    let jwk_text = jwks["keys"][0].to_string();
    let attacker = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("gen");
    let attacker_pub = attacker.public_key().as_ref().to_vec();
    let attacker_jwk = json!({
        "kty": "EC", "crv": "P-256",
        "x": b64(&attacker_pub[1..33]), "y": b64(&attacker_pub[33..65]),
    });

    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, t: String| out.push((name.to_owned(), t));

    // alg: none, in any capitalisation, with and without a signature.
    for alg in ["none", "None", "NONE", "nOnE"] {
        add(
            &format!("alg {alg}, empty signature"),
            forge(&h(json!({"alg": alg})), &c(json!({})), Sig::Raw("")),
        );
        add(
            &format!("alg {alg}, genuine signature"),
            forge(&h(json!({"alg": alg})), &c(json!({})), Sig::Raw(parts[2])),
        );
    }
    // HS256 keyed with the published public key in the forms an attacker
    // would try.
    for (what, k) in [
        ("JWKS document", jwks_text.as_bytes().to_vec()),
        ("JWK", jwk_text.as_bytes().to_vec()),
        (
            "x coordinate",
            BASE64URL_NOPAD
                .decode(jwks["keys"][0]["x"].as_str().unwrap_or("").as_bytes())
                .unwrap_or_default(),
        ),
    ] {
        for alg in ["HS256", "hs256"] {
            add(
                &format!("{alg} keyed with the {what}"),
                forge(&h(json!({"alg": alg})), &c(json!({})), Sig::Hs256(&k)),
            );
        }
    }
    // Other algorithms named over a genuine ES256 signature.
    for alg in ["RS256", "ES384", "PS256", "ES256K", "EdDSA", "es256"] {
        add(
            &format!("alg {alg} over an ES256 signature"),
            forge(&h(json!({"alg": alg})), &c(json!({})), Sig::Es256(&key)),
        );
    }
    // Unknown, long and path-like key ids, signed with the real key.
    for bad_kid in [
        "nope".to_owned(),
        "a".repeat(5000),
        format!("../keys/{kid}"),
        format!("{kid}.key"),
        format!("{kid}/../{kid}"),
        "/etc/passwd".to_owned(),
        format!("{kid}\u{0}"),
        String::new(),
    ] {
        add(
            &format!("kid {:.40}", bad_kid),
            forge(&h(json!({"kid": bad_kid})), &c(json!({})), Sig::Es256(&key)),
        );
    }
    add(
        "kid missing",
        forge(&h(json!({"kid": null})), &c(json!({})), Sig::Es256(&key)),
    );
    add(
        "kid as a number",
        forge(&h(json!({"kid": 7})), &c(json!({})), Sig::Es256(&key)),
    );
    // crit, wrong typ.
    add(
        "crit header",
        forge(
            &h(json!({"crit": ["exp"]})),
            &c(json!({})),
            Sig::Es256(&key),
        ),
    );
    add(
        "crit empty",
        forge(&h(json!({"crit": []})), &c(json!({})), Sig::Es256(&key)),
    );
    for typ in [
        json!("JWT"),
        json!(null),
        json!("at+jwt "),
        json!(["at+jwt"]),
    ] {
        add(
            &format!("typ {typ}"),
            forge(&h(json!({"typ": typ})), &c(json!({})), Sig::Es256(&key)),
        );
    }
    // Claims, each wrong in one way, genuinely signed.
    for (what, extra) in [
        ("exp as a string", json!({"exp": (now + 600).to_string()})),
        ("exp missing", json!({"exp": null})),
        ("exp as a float string", json!({"exp": "9e99"})),
        ("exp huge float", json!({"exp": 1e300})),
        ("expired beyond leeway", json!({"exp": now - 31})),
        ("nbf beyond leeway", json!({"nbf": now + 120})),
        ("iat beyond leeway", json!({"iat": now + 120})),
        ("nbf missing", json!({"nbf": null})),
        ("foreign iss", json!({"iss": "https://evil.example"})),
        (
            "iss with a trailing slash",
            json!({"iss": format!("{}/", s.issuer)}),
        ),
        ("iss missing", json!({"iss": null})),
        (
            "sub of no account",
            json!({"sub": "00000000-0000-0000-0000-000000000000"}),
        ),
        ("roles as a string", json!({"roles": "admin"})),
    ] {
        add(what, forge(&h(json!({})), &c(extra), Sig::Es256(&key)));
    }
    // Structural garbage.
    for (what, t) in [
        ("two segments", "a.b".to_owned()),
        ("four segments", format!("{genuine}.x")),
        ("empty segments", "..".to_owned()),
        ("non-base64", "!!.!!.!!".to_owned()),
        (
            "header not JSON",
            format!("{}.{}.{}", b64(b"nope"), parts[1], parts[2]),
        ),
        (
            "header an array",
            format!("{}.{}.{}", b64(b"[1,2]"), parts[1], parts[2]),
        ),
        (
            "deeply nested header",
            format!(
                "{}.{}.{}",
                b64(format!("{}{}", "[".repeat(300), "]".repeat(300)).as_bytes()),
                parts[1],
                parts[2]
            ),
        ),
        ("genuine with padding", format!("{genuine}==")),
        (
            "signature truncated",
            genuine[..genuine.len() - 4].to_owned(),
        ),
    ] {
        add(what, t);
    }
    // An attacker's own key, announced in the header.
    add(
        "attacker key in jwk header",
        forge(
            &h(json!({"jwk": attacker_jwk})),
            &c(json!({})),
            Sig::Es256(&attacker),
        ),
    );
    out
}

/// `base` plus tokens signed by an attacker whose header points at a key
/// URL (`jku`, `x5u`): `jku` is a listener that counts connections.
async fn with_jku(
    base: &[(String, String)],
    s: &TestServer,
    jku: &str,
    genuine: &str,
) -> Vec<(String, String)> {
    let parts: Vec<&str> = genuine.split('.').collect();
    let claims: Value =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(parts[1].as_bytes()).expect("b64"))
            .expect("claims");
    let attacker = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("gen");
    let (kid, _) = server_key(s);
    let mut out = base.to_vec();
    for (what, header) in [
        (
            "jku to an attacker JWKS",
            json!({"alg": "ES256", "typ": "at+jwt", "kid": "evil", "jku": jku}),
        ),
        (
            "jku with the real kid",
            json!({"alg": "ES256", "typ": "at+jwt", "kid": kid, "jku": jku}),
        ),
        (
            "x5u to an attacker certificate",
            json!({"alg": "ES256", "typ": "at+jwt", "kid": "evil", "x5u": jku}),
        ),
    ] {
        out.push((
            what.to_owned(),
            forge(&header, &claims, Sig::Es256(&attacker)),
        ));
    }
    out
}

async fn hostile_tokens_are_inactive_and_never_fetched(b: Backend) {
    let s = TestServer::start(b).await;
    let rs = s.create_resource_server(API).await;
    let a = s.create_account(&["viewer"]).await;
    let admin = s.create_account(&["admin"]).await;
    let (jku, hits) = tripwire().await;

    // At introspection (aud = the resource server).
    let genuine = s.token_ok(&a, &[("resource", API)]).await["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(s.is_active(&rs, &genuine, None).await, "positive control");
    let cases = with_jku(&hostile_tokens(&s, &genuine).await, &s, &jku, &genuine).await;
    assert!(cases.len() > 50);
    for (what, t) in &cases {
        assert!(
            !s.is_active(&rs, t, None).await,
            "introspection accepted: {what}"
        );
    }

    // At the admin API's bearer check (aud = the issuer).
    let genuine = s.admin_token(&admin).await;
    let (st, _) = s
        .api("GET", "/api/v1/service-accounts", &genuine, None)
        .await;
    assert_eq!(st, 200, "positive control");
    let cases = with_jku(&hostile_tokens(&s, &genuine).await, &s, &jku, &genuine).await;
    for (what, t) in &cases {
        let r = s
            .http
            .get(s.url("/api/v1/service-accounts"))
            .header("authorization", format!("Bearer {t}"))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 401, "admin API accepted: {what}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a header URL was fetched");
}

/// Tokens far beyond any real size are refused before any decoding: the
/// body cap answers 413 at introspection, the header cap 431 at the admin
/// API, and a token just under the caps is simply inactive.
async fn oversized_tokens_are_refused_cheaply(b: Backend) {
    let s = TestServer::start(b).await;
    let rs = s.create_resource_server(API).await;
    let admin = s.create_account(&["admin"]).await;
    let _ = s.admin_token(&admin).await;
    let big = format!(
        "{}.{}.{}",
        "e".repeat(5000),
        "e".repeat(5000),
        "e".repeat(4000)
    );
    assert!(!s.is_active(&rs, &big, None).await);
    // No pooled connections from here on: the server closes a connection
    // after refusing an oversized request, and a client reusing it would
    // fail on its own side.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let mega = "A".repeat(1 << 20);
    let sent = http
        .post(s.url("/oauth/introspect"))
        .basic_auth(&rs.client_id, Some(&rs.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={mega}"))
        .send()
        .await;
    match sent {
        Ok(r) => {
            assert_eq!(r.status(), 413);
            let body: Value = r.json().await.expect("json");
            assert_eq!(body["error"], "invalid_request");
        }
        // The server answers 413 as soon as the body passes its limit and
        // closes; a client still writing the rest may see only the reset.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    for t in [&big, &mega] {
        let sent = http
            .get(s.url("/api/v1/service-accounts"))
            .header("authorization", format!("Bearer {t}"))
            .send()
            .await;
        match sent {
            Ok(r) => assert!(
                matches!(r.status().as_u16(), 401 | 431),
                "got {}",
                r.status()
            ),
            // Beyond hyper's read buffer the server answers 431 and closes
            // while the client is still writing: a broken pipe, not a
            // response, is then all the client sees.
            Err(e) => assert!(t.len() > 500_000 && e.is_request(), "{e}"),
        }
    }
    // The server is unharmed.
    let r = http.get(s.url("/healthz")).send().await.expect("health");
    assert_eq!(r.status(), 200);
}

/// A token signed by a key that has since been pruned from the keys
/// directory is dead everywhere, even if introspection had cached it.
async fn tokens_of_a_pruned_key_are_dead(b: Backend) {
    let s = TestServer::start(b).await;
    let rs = s.create_resource_server(API).await;
    let a = s.create_account(&["viewer"]).await;
    let admin = s.create_account(&["admin"]).await;
    let old = s.token_ok(&a, &[("resource", API)]).await["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let old_admin = s.admin_token(&admin).await;
    assert!(s.is_active(&rs, &old, None).await);
    let (kid, _) = server_key(&s);
    let dir = s.dir.path().join("keys");
    let now = warden::now_unix();
    warden::crypto::keys::create_key(&dir, warden::crypto::keys::Alg::ES256, now, now - 1)
        .expect("new key");
    std::fs::remove_file(dir.join(format!("{kid}.json"))).expect("prune sidecar");
    std::fs::remove_file(dir.join(format!("{kid}.key"))).expect("prune key");
    s.state.keys.reload(warden::now_unix()).expect("reload");
    assert!(
        !s.is_active(&rs, &old, None).await,
        "cached verification outlived its key"
    );
    let (st, _) = s
        .api("GET", "/api/v1/service-accounts", &old_admin, None)
        .await;
    assert_eq!(st, 401);
    // New tokens use the new key and work.
    let new = s.token_ok(&a, &[("resource", API)]).await["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(s.is_active(&rs, &new, None).await);
}

both_backends!(
    hostile_tokens_are_inactive_and_never_fetched,
    oversized_tokens_are_refused_cheaply,
    tokens_of_a_pruned_key_are_dead,
);
