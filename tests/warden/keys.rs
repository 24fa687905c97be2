//! Keys instead of secrets (issue 16): an account registers a public key
//! and authenticates at the token endpoint with a client assertion signed
//! by it (`private_key_jwt`, RFC 7523 §2.2), signed here by an independent
//! JWT library (jsonwebtoken).
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use data_encoding::BASE64URL_NOPAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::harness::{Account, Backend, TestServer, both_backends};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An ES256 key pair: its public JWK and its signing key.
pub struct Key {
    pub jwk: Value,
    signing: EncodingKey,
}

impl Key {
    /// The same key, its JWK without `kid` (assertions then name none).
    fn without_kid(&self) -> Key {
        let mut jwk = self.jwk.clone();
        jwk.as_object_mut().map(|m| m.remove("kid"));
        Key {
            jwk,
            signing: self.signing.clone(),
        }
    }
}

pub fn new_key(kid: &str) -> Key {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).expect("pair");
    let point = pair.public_key().as_ref();
    Key {
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid,
                    "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])}),
        signing: EncodingKey::from_ec_der(pkcs8.as_ref()),
    }
}

/// A client assertion for `client_id` signed by `key`, with `patch`
/// applied to the usual claims (a null removes one).
pub fn assertion(s: &TestServer, key: &Key, client_id: &str, patch: Value) -> String {
    assertion_typed(s, key, client_id, patch, Some("JWT"))
}

/// As `assertion`, with header `typ` (`None`: no `typ`).
pub fn assertion_typed(
    s: &TestServer,
    key: &Key,
    client_id: &str,
    patch: Value,
    typ: Option<&str>,
) -> String {
    let now = warden::now_unix();
    let mut claims = json!({"iss": client_id, "sub": client_id,
        "aud": format!("{}/oauth/token", s.issuer), "exp": now + 300, "iat": now,
        "jti": uuid::Uuid::new_v4().to_string()});
    for (k, v) in patch.as_object().into_iter().flatten() {
        match v {
            Value::Null => {
                claims.as_object_mut().map(|m| m.remove(k));
            }
            v => claims[k] = v.clone(),
        }
    }
    let mut header = Header::new(Algorithm::ES256);
    header.kid = key.jwk["kid"].as_str().map(str::to_owned);
    header.typ = typ.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, &key.signing).expect("sign")
}

pub async fn token_with(s: &TestServer, jwt: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", jwt),
    ];
    form.extend_from_slice(extra);
    let r = s.post_form("/oauth/token", &form, None).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A refresh, the client authenticated by an assertion signed with `key`.
async fn refresh_with(s: &TestServer, key: &Key, a: &Account, rt: &str) -> reqwest::Response {
    let jwt = assertion(s, key, &a.client_id, json!({}));
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", &jwt),
    ];
    s.post_form("/oauth/token", &form, None).await
}

pub async fn add_key(s: &TestServer, admin: &str, a: &Account, jwk: &Value) -> (u16, Value) {
    let path = format!("/api/v1/service-accounts/{}/credentials", a.id);
    let body = json!({"type": "public_key", "jwk": jwk});
    s.api("POST", &path, admin, Some(body)).await
}

async fn a_key_pair_replaces_the_secret(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.caller(&["admin"]).await;
    let a = s.create_account(&["risk-editor"]).await;
    let key = new_key("k1");
    let (st, cred) = add_key(&s, &admin, &a, &key.jwk).await;
    assert_eq!(st, 201, "{cred}");
    assert_eq!(cred["type"], "public_key");
    assert_eq!(cred["jwk"]["kid"], "k1");
    let path = format!("/api/v1/service-accounts/{}/credentials", a.id);
    let (_, list) = s.api("GET", &path, &admin, None).await;
    let kinds: Vec<&str> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(kinds, ["secret", "public_key"], "{list}");

    // A token, with no secret sent; the client id is the assertion's sub.
    let jwt = assertion(&s, &key, &a.client_id, json!({}));
    let (st, t) = token_with(&s, &jwt, &[]).await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["scope"], "risks:read risks:write");
    // Once only, on every path.
    let (st, e) = token_with(&s, &jwt, &[]).await;
    assert_eq!(
        (st, e["error"].clone()),
        (401, json!("invalid_client")),
        "replay"
    );
    // Its last use shows on the key (batched, about a second later).
    let mut used = Value::Null;
    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let (_, list) = s.api("GET", &path, &admin, None).await;
        used = list["items"][1].clone();
        if used["last_used_at"].is_string() {
            break;
        }
    }
    assert!(used["last_used_at"].is_string(), "{used}");
    assert_eq!(used["last_used_ip"], "127.0.0.1", "{used}");
    // With client_id in the form too, and for a refresh.
    let jwt = assertion(&s, &key, &a.client_id, json!({"aud": s.issuer.clone()}));
    let (st, t) = token_with(&s, &jwt, &[("client_id", &a.client_id)]).await;
    assert_eq!(st, 200, "{t}");
    let rt = t["refresh_token"].as_str().unwrap_or_default().to_owned();
    let r = refresh_with(&s, &key, &a, &rt).await;
    assert_eq!(r.status(), 200);

    // The state table applies: disabled is 403 once authenticated.
    let (st, _) = s
        .api(
            "POST",
            &format!("/api/v1/service-accounts/{}/disable", a.id),
            &admin,
            None,
        )
        .await;
    assert_eq!(st, 200);
    let jwt = assertion(&s, &key, &a.client_id, json!({}));
    assert_eq!(token_with(&s, &jwt, &[]).await.0, 403);
    let (st, _) = s
        .api(
            "POST",
            &format!("/api/v1/service-accounts/{}/enable", a.id),
            &admin,
            None,
        )
        .await;
    assert_eq!(st, 200);

    // Removed: its assertions are refused.
    let cred_path = format!("{path}/{}", cred["id"].as_str().unwrap_or(""));
    assert_eq!(s.api("DELETE", &cred_path, &admin, None).await.0, 204);
    assert_eq!(s.api("DELETE", &cred_path, &admin, None).await.0, 404);
    let jwt = assertion(&s, &key, &a.client_id, json!({}));
    assert_eq!(token_with(&s, &jwt, &[]).await.0, 401);
}

async fn bad_assertions_are_refused(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.caller(&["admin"]).await;
    let a = s.create_account(&["viewer"]).await;
    let other = s.create_account(&["viewer"]).await;
    let key = new_key("k1");
    assert_eq!(add_key(&s, &admin, &a, &key.jwk).await.0, 201);
    let stranger = new_key("k1");
    let id = a.client_id.as_str();
    let later = warden::now_unix() + 2 * 3600;
    let cases = [
        ("another key", assertion(&s, &stranger, id, json!({}))),
        (
            "wrong aud",
            assertion(&s, &key, id, json!({"aud": "https://elsewhere"})),
        ),
        (
            "sub is another client",
            assertion(&s, &key, &other.client_id, json!({})),
        ),
        (
            "iss differs",
            assertion(&s, &key, id, json!({"iss": other.client_id})),
        ),
        (
            "expired",
            assertion(&s, &key, id, json!({"exp": warden::now_unix() - 120})),
        ),
        (
            "too far ahead",
            assertion(&s, &key, id, json!({"exp": later})),
        ),
        ("no jti", assertion(&s, &key, id, json!({"jti": null}))),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, jwt) in cases {
        let (st, e) = token_with(&s, &jwt, &[]).await;
        assert_eq!(
            (st, e["error"].clone()),
            (401, json!("invalid_client")),
            "{what}: {e}"
        );
    }
    // A tampered signature, and `none`.
    let good = assertion(&s, &key, id, json!({}));
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged = B64.encode(
        json!({"iss": id, "sub": id, "aud": s.issuer, "exp": warden::now_unix() + 60, "jti": "x"})
            .to_string()
            .as_bytes(),
    );
    parts[1] = &forged;
    assert_eq!(
        token_with(&s, &parts.join("."), &[]).await.0,
        401,
        "tampered"
    );
    let none = format!("{}.{}.", B64.encode(br#"{"alg":"none"}"#), forged);
    assert_eq!(token_with(&s, &none, &[]).await.0, 401, "alg none");
    // One method at a time; the type must be the JWT bearer one.
    let jwt = assertion(&s, &key, id, json!({}));
    let (st, e) = token_with(&s, &jwt, &[("client_secret", &a.secret)]).await;
    assert_eq!(
        (st, e["error"].clone()),
        (400, json!("invalid_request")),
        "{e}"
    );
    let r = s
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", "urn:example:saml"),
                ("client_assertion", &jwt),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), 400);
    // The key is not accepted as anything but itself: private or
    // symmetric keys, unknown types.
    for bad in [
        json!({"kty": "oct", "k": "c2VjcmV0"}),
        json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
        json!({"kty": "EC", "crv": "P-256", "x": key.jwk["x"], "y": key.jwk["y"], "d": "AA"}),
        // A point of small order: anyone could sign for it (R = identity, S = 0).
        json!({"kty": "OKP", "crv": "Ed25519", "x": "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
    ] {
        let (st, p) = add_key(&s, &admin, &a, &bad).await;
        assert_eq!((st, p["field"].clone()), (422, json!("jwk")), "{bad}: {p}");
    }
    // Adding a key is acting on the account: a caller holding less is refused.
    s.role("keeper", &["org:read", "org:manage"]).await;
    let (_, keeper) = s.caller(&["keeper"]).await;
    let admin_acct = s.create_account(&["admin"]).await;
    let (st, p) = add_key(&s, &keeper, &admin_acct, &new_key("k2").jwk).await;
    assert_eq!(st, 403, "{p}");
}

/// An account made without a secret has only the keys added to it.
async fn an_account_without_a_secret(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.caller(&["admin"]).await;
    let body = json!({"name": "ci", "roles": ["viewer"], "with_secret": false});
    let (st, v) = s
        .api("POST", "/api/v1/service-accounts", &admin, Some(body))
        .await;
    assert_eq!(st, 201, "{v}");
    assert!(v.get("client_secret").is_none(), "{v}");
    assert_eq!(v["secrets"], json!([]));
    let a = Account {
        id: v["id"].as_str().unwrap_or_default().to_owned(),
        client_id: v["client_id"].as_str().unwrap_or_default().to_owned(),
        secret: String::new(),
    };
    let path = format!("/api/v1/service-accounts/{}/credentials", a.id);
    assert_eq!(
        s.api("GET", &path, &admin, None).await.1["items"],
        json!([])
    );
    let key = new_key("ci");
    assert_eq!(add_key(&s, &admin, &a, &key.jwk).await.0, 201);
    let jwt = assertion(&s, &key, &a.client_id, json!({}));
    let (st, t) = token_with(&s, &jwt, &[]).await;
    assert_eq!(
        (st, t["scope"].clone()),
        (200, json!("incidents:read org:read risks:read"))
    );
    // It revokes its own refresh token with an assertion too.
    let rt = t["refresh_token"].as_str().unwrap_or_default().to_owned();
    let jwt = assertion(&s, &key, &a.client_id, json!({}));
    let form = [
        ("token", rt.as_str()),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", jwt.as_str()),
    ];
    assert_eq!(
        s.post_form("/oauth/revoke", &form, None).await.status(),
        200
    );
    let r = refresh_with(&s, &key, &a, &rt).await;
    assert_eq!(r.status(), 400, "revoked");
    // No secret works, not even an empty one.
    let r = s
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some((&a.client_id, "")),
        )
        .await;
    assert_eq!(r.status(), 401);
}

/// During a rotation, each secret's own last use shows which one is still
/// in use.
async fn each_secret_shows_its_last_use(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.caller(&["admin"]).await;
    let a = s.create_account(&["viewer"]).await;
    s.token_ok(&a, &[]).await;
    let rotate = format!("/api/v1/service-accounts/{}/rotate-secret", a.id);
    let (st, v) = s.api("POST", &rotate, &admin, None).await;
    assert_eq!(st, 200, "{v}");
    let new_prefix = v["secrets"][0]["prefix"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!("/api/v1/service-accounts/{}/credentials", a.id);
    let mut list = Value::Null;
    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        list = s.api("GET", &path, &admin, None).await.1;
        if list["items"][1]["last_used_at"].is_string() {
            break;
        }
    }
    let items = list["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2, "{list}");
    assert_eq!(items[0]["prefix"], new_prefix.as_str(), "{list}");
    assert!(
        items[0]["last_used_at"].is_null(),
        "the new one is unused: {list}"
    );
    assert!(
        items[1]["last_used_at"].is_string(),
        "the old one was used: {list}"
    );
    assert_eq!(items[1]["last_used_ip"], "127.0.0.1");
    // A secret is a credential like the others: the old one is ended
    // through the same path; the current one is replaced by a reset (409).
    let old = format!("{path}/{}", items[1]["id"].as_str().unwrap_or_default());
    assert_eq!(s.api("DELETE", &old, &admin, None).await.0, 204);
    assert_eq!(s.api("DELETE", &old, &admin, None).await.0, 404);
    let current = format!("{path}/{new_prefix}");
    assert_eq!(s.api("DELETE", &current, &admin, None).await.0, 409);
    let (_, list) = s.api("GET", &path, &admin, None).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
}

/// A resource server signs its own assertions at introspection and
/// revocation (`private_key_jwt`), with keys the operator registers.
async fn a_resource_server_signs_with_a_key(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, op) = s.caller(&["operator"]).await;
    let rs = s.create_resource_server("https://api.example.com").await;
    let key = new_key("rs-1");
    let path = format!("/api/v1/resource-servers/{}", rs.id);
    let mut private = key.jwk.clone();
    private["d"] = json!("AAAA");
    let (st, e) = s
        .api(
            "PATCH",
            &path,
            &op,
            Some(json!({"jwks": {"keys": [private]}})),
        )
        .await;
    assert_eq!(st, 422, "a private key: {e}");
    let (st, view) = s
        .api(
            "PATCH",
            &path,
            &op,
            Some(json!({"jwks": {"keys": [key.jwk]}})),
        )
        .await;
    assert_eq!(st, 200, "{view}");
    assert_eq!(view["jwks"]["keys"][0]["kid"], "rs-1");

    let a = s.create_account(&["viewer"]).await;
    let t = s
        .token_ok(&a, &[("resource", "https://api.example.com")])
        .await;
    let token = t["access_token"].as_str().unwrap_or_default().to_owned();
    let introspect_url = format!("{}/oauth/introspect", s.issuer);
    let call = |path: &'static str, jwt: String| {
        let s = &s;
        let token = token.clone();
        async move {
            let form = [
                ("token", token.as_str()),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", jwt.as_str()),
            ];
            let r = s.post_form(path, &form, None).await;
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let jwt = assertion(&s, &key, &rs.client_id, json!({"aud": introspect_url}));
    let (st, v) = call("/oauth/introspect", jwt.clone()).await;
    assert_eq!((st, v["active"].clone()), (200, json!(true)), "{v}");
    // Once only; another key; an account posing as a resource server.
    assert_eq!(call("/oauth/introspect", jwt).await.0, 401, "replay");
    let stranger = new_key("rs-1");
    let jwt = assertion(&s, &stranger, &rs.client_id, json!({}));
    assert_eq!(call("/oauth/introspect", jwt).await.0, 401, "another key");
    let jwt = assertion(&s, &key, &a.client_id, json!({}));
    let (st, e) = call("/oauth/introspect", jwt).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (401, Some("invalid_client")),
        "{e}"
    );

    // It revokes with an assertion too; the token is then inactive.
    let jwt = assertion(&s, &key, &rs.client_id, json!({}));
    assert_eq!(call("/oauth/revoke", jwt).await.0, 200);
    assert!(!s.is_active(&rs, &token, None).await);

    // Its keys removed: refused from the next request on.
    let (st, _) = s
        .api("PATCH", &path, &op, Some(json!({"jwks": {"keys": []}})))
        .await;
    assert_eq!(st, 200);
    let jwt = assertion(&s, &key, &rs.client_id, json!({}));
    assert_eq!(call("/oauth/introspect", jwt).await.0, 401);
}

/// Each signature check costs CPU: an assertion that names no `kid` is
/// tried against a few keys only (found by a review: a published set of
/// two thousand keys cost 120 ms a request).
async fn a_kidless_assertion_is_tried_against_few_keys(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.caller(&["admin"]).await;
    let a = s.create_account(&["viewer"]).await;
    let keys: Vec<Key> = (1..=5).map(|i| new_key(&format!("k{i}"))).collect();
    for k in &keys {
        assert_eq!(add_key(&s, &admin, &a, &k.jwk).await.0, 201);
    }
    let last = &keys[4];
    let unnamed = last.without_kid();
    let jwt = assertion(&s, &unnamed, &a.client_id, json!({}));
    assert_eq!(
        token_with(&s, &jwt, &[]).await.0,
        401,
        "the fifth key, unnamed"
    );
    let jwt = assertion(&s, last, &a.client_id, json!({}));
    assert_eq!(
        token_with(&s, &jwt, &[]).await.0,
        200,
        "the fifth key, by kid"
    );
    let jwt = assertion(&s, &keys[0].without_kid(), &a.client_id, json!({}));
    assert_eq!(
        token_with(&s, &jwt, &[]).await.0,
        200,
        "the first key, unnamed"
    );
}

both_backends!(
    a_kidless_assertion_is_tried_against_few_keys,
    a_resource_server_signs_with_a_key,
    each_secret_shows_its_last_use,
    a_key_pair_replaces_the_secret,
    bad_assertions_are_refused,
    an_account_without_a_secret
);
