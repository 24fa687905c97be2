//! Workload identity federation (issue 16): a workload presents a JWT from
//! an external issuer and gets a warden access token, with no secret
//! stored. The issuers are real and independent: node-oidc-provider as a
//! CI-style issuer (`tests/issuers/ci-issuer.mjs`: discovery, JWKS, JWT
//! access tokens carrying CI claims), and a second warden.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use data_encoding::BASE64URL_NOPAD as B64;
use serde_json::{Value, json};

use crate::harness::{Account, Backend, TestServer, both_backends};
use warden::manage::Actor;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

fn issuers_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/issuers")
}

/// Whether the issuer tests must be skipped: node-oidc-provider is not
/// installed (a plain `cargo test`), said on stderr. `./scripts/test`
/// installs it, and under it a missing install fails instead.
pub fn without_node_issuer() -> bool {
    if issuers_dir().join("node_modules/oidc-provider").exists() {
        return false;
    }
    assert!(
        std::env::var_os("WARDEN_TEST_REQUIRE_POSTGRES").is_none(),
        "tests/issuers/node_modules is missing under ./scripts/test"
    );
    eprintln!("skipped: node-oidc-provider is not installed (./scripts/test installs it)");
    true
}

/// node-oidc-provider, as a CI platform's token issuer.
pub struct CiIssuer {
    child: Child,
    pub issuer: String,
    http: reqwest::Client,
}

impl Drop for CiIssuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl CiIssuer {
    pub fn start() -> Self {
        let mut child = Command::new("node")
            .arg("ci-issuer.mjs")
            .current_dir(issuers_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts");
        let mut line = String::new();
        let out = child.stdout.take().expect("stdout");
        BufReader::new(out)
            .read_line(&mut line)
            .expect("issuer line");
        let v: Value = serde_json::from_str(&line).expect("issuer JSON");
        Self {
            child,
            issuer: v["issuer"].as_str().expect("issuer").to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// A real access token the provider issues to `workload` for
    /// `audience` (client_credentials, with its CI claims).
    pub async fn token(&self, workload: &str, audience: &str) -> String {
        let r = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth(workload, Some(format!("{workload}-secret")))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", audience),
                ("scope", "ci"),
            ])
            .send()
            .await
            .expect("issuer token");
        let v: Value = r.json().await.expect("json");
        v["access_token"].as_str().expect("access_token").to_owned()
    }

    /// A JWT with `claims` signed with the issuer's current key.
    pub async fn mint(&self, claims: Value) -> String {
        let v: Value = self.control("mint", Some(claims)).await;
        v["token"].as_str().expect("token").to_owned()
    }

    async fn control(&self, what: &str, body: Option<Value>) -> Value {
        let r = self
            .http
            .post(format!("{}/-/{what}", self.issuer))
            .body(body.map(|b| b.to_string()).unwrap_or_default())
            .send()
            .await
            .expect("issuer control");
        r.json().await.expect("json")
    }

    pub async fn rotate(&self) {
        self.control("rotate", None).await;
    }

    pub async fn set_down(&self, down: bool) {
        self.control(if down { "down" } else { "up" }, None).await;
    }

    /// How many JWKS requests it has served.
    pub async fn jwks_fetches(&self) -> u64 {
        let v: Value = self
            .http
            .get(format!("{}/-/stats", self.issuer))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json");
        v["jwks"].as_u64().expect("count")
    }
}

async fn federated_server(b: Backend) -> TestServer {
    TestServer::start_with(b, &[("federation_allow_http", "true")]).await
}

/// Adds a federated credential to `a`; the status and the answer.
pub async fn trust(s: &TestServer, admin: &str, a: &Account, body: Value) -> (u16, Value) {
    let mut body = body;
    body["type"] = json!("federated");
    let path = format!("/api/v1/service-accounts/{}/credentials", a.id);
    s.api("POST", &path, admin, Some(body)).await
}

/// Exchanges `jwt` at the token endpoint (`kind`: token exchange or
/// jwt-bearer), with `extra` form fields.
pub async fn exchange(
    s: &TestServer,
    kind: &str,
    jwt: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![("grant_type", kind)];
    if kind == TOKEN_EXCHANGE {
        form.extend([("subject_token", jwt), ("subject_token_type", JWT_TYPE)]);
    } else {
        form.push(("assertion", jwt));
    }
    form.extend_from_slice(extra);
    let r = s.post_form("/oauth/token", &form, None).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap_or_default();
    serde_json::from_slice(&B64.decode(payload.as_bytes()).unwrap_or_default()).unwrap_or_default()
}

/// The account's first credential of `kind` once its last use shows (it
/// is written in batches, about a second later), or as it last stood.
pub async fn used_credential(s: &TestServer, admin: &str, account: &str, kind: &str) -> Value {
    let path = format!("/api/v1/service-accounts/{account}/credentials");
    let mut used = Value::Null;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (_, list) = s.api("GET", &path, admin, None).await;
        used = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == kind)
            .cloned()
            .unwrap_or_default();
        if used["last_used_at"].is_string() {
            break;
        }
    }
    used
}

/// The CI workload `repo-app`'s trust: its subject, warden's issuer as the
/// audience, and the repository's and owner's ids (not their names).
fn repo_app_trust(ci: &CiIssuer, s: &TestServer) -> Value {
    json!({"issuer": ci.issuer, "subject": "repo-app", "audience": s.issuer,
           "claims": {"repository_id": "1001", "repository_owner_id": "77"}})
}

async fn a_ci_workload_gets_a_token_without_a_secret(b: Backend) {
    if without_node_issuer() {
        return;
    }
    let ci = CiIssuer::start();
    let s = federated_server(b).await;
    let (_, admin) = s.caller(&["admin"]).await;
    let a = s.create_account(&["viewer"]).await;
    let (st, cred) = trust(&s, &admin, &a, repo_app_trust(&ci, &s)).await;
    assert_eq!(st, 201, "{cred}");
    assert_eq!(cred["type"], "federated");
    assert_eq!(cred["claims"]["repository_id"], "1001");

    // The CI job's own token, exchanged (RFC 8693): an access token only.
    let ci_token = ci.token("repo-app", &s.issuer).await;
    let (st, t) = exchange(
        &s,
        TOKEN_EXCHANGE,
        &ci_token,
        &[("client_id", &a.client_id)],
    )
    .await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(
        t["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert!(t.get("refresh_token").is_none(), "{t}");
    let at = t["access_token"].as_str().unwrap_or_default();
    assert_eq!(claims_of(at)["sub"], a.client_id.as_str());
    assert_eq!(claims_of(at)["scope"], t["scope"]);

    // The same token as a jwt-bearer assertion (RFC 7523 §2.1): a CI token
    // may be exchanged more than once while it lives.
    let (st, t) = exchange(
        &s,
        JWT_BEARER,
        &ci_token,
        &[("scope", "viewer"), ("client_id", &a.client_id)],
    )
    .await;
    assert_eq!(st, 200, "{t}");
    assert!(t.get("issued_token_type").is_none() && t.get("refresh_token").is_none());

    // The keys were fetched once, not per request.
    assert_eq!(ci.jwks_fetches().await, 1);
    // The audit log says which credential and which external token.
    let mut via = Value::Null;
    for _ in 0..30 {
        let q = "/api/v1/audit-events?action=token.issued";
        let (_, events) = s.api("GET", q, &admin, None).await;
        via = events["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["details"]["grant_type"] == TOKEN_EXCHANGE)
            .map(|e| e["details"]["federated"].clone())
            .unwrap_or_default();
        if via.is_object() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(via["credential"], cred["id"], "{via}");
    assert_eq!(via["subject"], "repo-app");
    assert_eq!(via["issuer"], ci.issuer.as_str());
    assert!(via["jti"].is_string(), "{via}");

    // The credential shows its last use.
    let used = used_credential(&s, &admin, &a.id, "federated").await;
    assert!(used["last_used_at"].is_string(), "{used}");
    assert_eq!(used["last_used_ip"], "127.0.0.1");

    // The fork: another repository's token (its own subject) is refused;
    // and one claiming the same subject with another repository id too.
    let fork = ci.token("repo-fork", &s.issuer).await;
    let (st, e) = exchange(&s, TOKEN_EXCHANGE, &fork, &[("client_id", &a.client_id)]).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_request")),
        "{e}"
    );
    let (st, e) = exchange(&s, JWT_BEARER, &fork, &[("client_id", &a.client_id)]).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
    let same_name = ci
        .mint(
            json!({"sub": "repo-app", "aud": s.issuer, "repository_id": "2002",
                     "repository_owner_id": "77"}),
        )
        .await;
    let (st, e) = exchange(&s, JWT_BEARER, &same_name, &[("client_id", &a.client_id)]).await;
    assert_eq!(st, 400, "{e}");
    assert!(
        e["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("claims"),
        "{e}"
    );
}

async fn federated_tokens_are_checked(b: Backend) {
    if without_node_issuer() {
        return;
    }
    let ci = CiIssuer::start();
    // Many refusals of one issuer and subject follow: not throttled here.
    let s = TestServer::start_with(
        b,
        &[
            ("federation_allow_http", "true"),
            ("auth_failures_per_client", "1000/1m"),
            // Id-less matching (a single-tenant deployment's choice) is
            // what the ambiguity checks below exercise.
            ("federation_client_id", "optional"),
        ],
    )
    .await;
    let (_, admin) = s.caller(&["admin"]).await;
    let a = s.create_account(&["viewer"]).await;
    assert_eq!(trust(&s, &admin, &a, repo_app_trust(&ci, &s)).await.0, 201);
    let good = json!({"sub": "repo-app", "aud": s.issuer, "repository_id": "1001",
                      "repository_owner_id": "77"});
    let with = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().into_iter().flatten() {
            c[k] = v.clone();
        }
        c
    };
    let now = warden::now_unix();
    let ok = ci.mint(good.clone()).await;
    assert_eq!(exchange(&s, JWT_BEARER, &ok, &[]).await.0, 200);
    let mut tampered = ok.clone().into_bytes();
    let at = tampered.len() - 5;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap_or_default();
    let header = B64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{header}.{}.", ok.split('.').nth(1).unwrap_or_default());
    let cases = [
        (
            "wrong audience",
            ci.mint(with(json!({"aud": "https://other.example"}))).await,
        ),
        (
            "wrong subject",
            ci.mint(with(json!({"sub": "repo-other"}))).await,
        ),
        (
            "claim mismatch",
            ci.mint(with(json!({"repository_owner_id": "78"}))).await,
        ),
        (
            "claim missing",
            ci.mint(with(json!({"repository_owner_id": null}))).await,
        ),
        (
            "expired",
            ci.mint(with(json!({"exp": now - 120, "iat": now - 420})))
                .await,
        ),
        ("too old", ci.mint(with(json!({"iat": now - 7200}))).await),
        ("no exp", ci.mint(with(json!({"exp": null}))).await),
        (
            "not yet valid",
            ci.mint(with(json!({"nbf": now + 600}))).await,
        ),
        ("tampered signature", tampered),
        ("alg none", unsigned),
        (
            "warden's own issuer",
            ci.mint(with(json!({"iss": s.issuer}))).await,
        ),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, jwt) in &cases {
        let (st, e) = exchange(&s, JWT_BEARER, jwt, &[]).await;
        assert_eq!(
            (st, e["error"].as_str()),
            (400, Some("invalid_grant")),
            "{what}: {e}"
        );
    }

    // Token exchange's own rules (RFC 8693 §2.1).
    for (what, extra) in [
        (
            "id_token type",
            vec![(
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            )],
        ),
        ("actor token", vec![("actor_token", ok.as_str())]),
        (
            "refresh token asked",
            vec![(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )],
        ),
    ] {
        let mut form = vec![
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", ok.as_str()),
        ];
        if !extra.iter().any(|(k, _)| *k == "subject_token_type") {
            form.push(("subject_token_type", JWT_TYPE));
        }
        form.extend(extra);
        let r = s.post_form("/oauth/token", &form, None).await;
        assert_eq!(r.status(), 400, "{what}");
    }
    // No client authentication on these grants; a client_id alone must be
    // the account's.
    let (st, e) = exchange(&s, JWT_BEARER, &ok, &[("client_secret", "x")]).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_request")));
    let other = s.create_account(&["viewer"]).await;
    let (st, _) = exchange(&s, JWT_BEARER, &ok, &[("client_id", &other.client_id)]).await;
    assert_eq!(st, 400);
    let (st, _) = exchange(&s, JWT_BEARER, &ok, &[("client_id", &a.client_id)]).await;
    assert_eq!(st, 200);

    // Two accounts trusting the same token: ambiguous, unless the form's
    // client_id picks one.
    assert_eq!(
        trust(&s, &admin, &other, repo_app_trust(&ci, &s)).await.0,
        201
    );
    let (st, e) = exchange(&s, JWT_BEARER, &ok, &[]).await;
    assert_eq!(st, 400, "{e}");
    assert!(
        e["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("more than one")
    );
    let (st, t) = exchange(&s, JWT_BEARER, &ok, &[("client_id", &other.client_id)]).await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(
        claims_of(t["access_token"].as_str().unwrap_or_default())["sub"],
        other.client_id.as_str()
    );
    // Another org trusting the same token many times over cannot stop an
    // account that names itself: past 16 candidates a request must name
    // its account, and then only that account's credentials are read.
    for n in 0..2 {
        let squatter = s.create_account(&["viewer"]).await;
        for i in 0..8 {
            let mut t = repo_app_trust(&ci, &s);
            t["audience"] = json!(format!("https://squat-{n}-{i}.example"));
            assert_eq!(trust(&s, &admin, &squatter, t).await.0, 201);
        }
    }
    let (st, e) = exchange(&s, JWT_BEARER, &ok, &[]).await;
    assert_eq!(st, 400, "{e}");
    assert!(
        e["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("too many"),
        "{e}"
    );
    let (st, e) = exchange(&s, JWT_BEARER, &ok, &[("client_id", &other.client_id)]).await;
    assert_eq!(st, 200, "{e}");

    // The live state applies: disabled and expired accounts get 403.
    let disable = format!("/api/v1/service-accounts/{}/disable", other.id);
    assert_eq!(s.api("POST", &disable, &admin, None).await.0, 200);
    let (st, e) = exchange(&s, JWT_BEARER, &ok, &[("client_id", &other.client_id)]).await;
    assert_eq!(st, 403, "{e}");
    s.sql(
        "UPDATE service_accounts SET expires_at = 1 WHERE id = $1",
        &a.id,
    )
    .await;
    let (st, e) = exchange(&s, JWT_BEARER, &ok, &[("client_id", &a.client_id)]).await;
    assert_eq!(st, 403, "{e}");

    // A token naming an issuer nobody registered: refused, never fetched.
    let before = ci.jwks_fetches().await;
    let stranger = ci
        .mint(with(json!({"iss": "https://unregistered.example"})))
        .await;
    assert_eq!(exchange(&s, JWT_BEARER, &stranger, &[]).await.0, 400);
    assert_eq!(ci.jwks_fetches().await, before);
}

async fn issuer_keys_rotate_and_outages_stay_contained(b: Backend) {
    if without_node_issuer() {
        return;
    }
    let ci = CiIssuer::start();
    let s = federated_server(b).await;
    let (_, admin) = s.caller(&["admin"]).await;
    let a = s.create_account(&["viewer"]).await;
    assert_eq!(trust(&s, &admin, &a, repo_app_trust(&ci, &s)).await.0, 201);
    let token = || ci.token("repo-app", &s.issuer);
    assert_eq!(
        exchange(
            &s,
            JWT_BEARER,
            &token().await,
            &[("client_id", &a.client_id)]
        )
        .await
        .0,
        200
    );
    assert_eq!(ci.jwks_fetches().await, 1);

    // The issuer rotates its key. Unknown kids refetch at most once per
    // interval: right after the first fetch, none is made.
    ci.rotate().await;
    let rotated = token().await;
    for _ in 0..5 {
        assert_eq!(
            exchange(&s, JWT_BEARER, &rotated, &[("client_id", &a.client_id)])
                .await
                .0,
            400
        );
    }
    assert_eq!(ci.jwks_fetches().await, 1);
    // Once the interval has passed, the new key is fetched and used.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (st, e) = exchange(&s, JWT_BEARER, &rotated, &[("client_id", &a.client_id)]).await;
    assert_eq!(st, 200, "{e}");
    assert_eq!(ci.jwks_fetches().await, 2);

    // The issuer goes down: its known key keeps working from the cache.
    let fresh = token().await;
    ci.set_down(true).await;
    assert_eq!(
        exchange(&s, JWT_BEARER, &fresh, &[("client_id", &a.client_id)])
            .await
            .0,
        200
    );
    ci.set_down(false).await;

    // An issuer that accepts connections and never answers: a token
    // naming it waits for the fetch's deadline, and meanwhile the healthy
    // issuer's tokens are answered.
    let hanging = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hanging_url = format!("http://{}", hanging.local_addr().expect("addr"));
    let mut hang = repo_app_trust(&ci, &s);
    hang["issuer"] = json!(hanging_url);
    assert_eq!(trust(&s, &admin, &a, hang).await.0, 201);
    let slow_jwt = ci
        .mint(
            json!({"iss": hanging_url, "sub": "repo-app", "aud": s.issuer,
                     "repository_id": "1001", "repository_owner_id": "77"}),
        )
        .await;
    let (base, id) = (s.base.clone(), a.client_id.clone());
    let slow = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{base}/oauth/token"))
            .form(&[
                ("grant_type", JWT_BEARER),
                ("assertion", slow_jwt.as_str()),
                ("client_id", id.as_str()),
            ])
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        exchange(
            &s,
            JWT_BEARER,
            &token().await,
            &[("client_id", &a.client_id)]
        )
        .await
        .0,
        200
    );
    assert!(
        !slow.is_finished(),
        "the hanging issuer's request is still waiting"
    );
    assert_eq!(slow.await.ok().and_then(Result::ok), Some(400));
    drop(hanging);
}

/// Warden to warden: an account of one warden (the issuer) gets a token
/// for the other's audience, which the other exchanges for one of its own.
async fn another_warden_is_an_issuer(b: Backend) {
    let upstream = TestServer::start(b).await;
    let s = federated_server(b).await;
    let _ = upstream.create_resource_server(&s.issuer).await;
    let workload = upstream.create_account(&["viewer"]).await;
    let (_, admin) = s.caller(&["admin"]).await;
    let a = s.create_account(&["viewer"]).await;
    let body = json!({"issuer": upstream.issuer, "subject": workload.client_id,
                      "audience": s.issuer, "claims": {"org": "default"}});
    let (st, c) = trust(&s, &admin, &a, body).await;
    assert_eq!(st, 201, "{c}");
    let t = upstream
        .token_ok(&workload, &[("resource", s.issuer.as_str())])
        .await;
    let upstream_token = t["access_token"].as_str().unwrap_or_default();
    let (st, mine) = exchange(
        &s,
        TOKEN_EXCHANGE,
        upstream_token,
        &[("client_id", &a.client_id)],
    )
    .await;
    assert_eq!(st, 200, "{mine}");
    let claims = claims_of(mine["access_token"].as_str().unwrap_or_default());
    assert_eq!(claims["iss"], s.issuer.as_str());
    assert_eq!(claims["sub"], a.client_id.as_str());
    // The upstream token for another audience is refused.
    let t = upstream.token_ok(&workload, &[]).await;
    let (st, _) = exchange(
        &s,
        TOKEN_EXCHANGE,
        t["access_token"].as_str().unwrap_or_default(),
        &[],
    )
    .await;
    assert_eq!(st, 400);
}

async fn federated_credentials_are_validated(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.caller(&["admin"]).await;
    let a = s.create_account(&["viewer"]).await;
    let base = json!({"issuer": "https://token.actions.githubusercontent.com",
                      "subject": "repo:acme/app:ref:refs/heads/main", "audience": s.issuer});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (what, body) in [
        (
            "plain http without the setting",
            with("issuer", json!("http://ci.example")),
        ),
        (
            "issuer with a query",
            with("issuer", json!("https://ci.example/?x=1")),
        ),
        ("no subject", with("subject", Value::Null)),
        ("reserved claim", with("claims", json!({"sub": "x"}))),
        ("nested claim", with("claims", json!({"a": {"b": 1}}))),
        ("a jwk too", with("jwk", json!({"kty": "EC"}))),
        ("this warden", with("issuer", json!(s.issuer))),
        ("a float claim", with("claims", json!({"run": 1.5}))),
    ] {
        let (st, e) = trust(&s, &admin, &a, body).await;
        assert_eq!(st, 422, "{what}: {e}");
    }
    // A jwks_uri follows the same rules as an issuer, and is the key's
    // only source.
    let keys = format!("/api/v1/service-accounts/{}/credentials", a.id);
    for (what, body) in [
        (
            "http",
            json!({"type": "public_key", "jwks_uri": "http://keys.example/jwks"}),
        ),
        (
            "not a URL",
            json!({"type": "public_key", "jwks_uri": "keys"}),
        ),
        (
            "both",
            json!({"type": "public_key", "jwks_uri": "https://keys.example/jwks",
                        "jwk": {"kty": "EC"}}),
        ),
    ] {
        let (st, e) = s.api("POST", &keys, &admin, Some(body)).await;
        assert_eq!(st, 422, "{what}: {e}");
    }
    let (st, c) = trust(&s, &admin, &a, base.clone()).await;
    assert_eq!(st, 201, "{c}");
    assert_eq!(c["issuer"], "https://token.actions.githubusercontent.com");
    assert_eq!(c["claims"], json!({}));
    // Audited, with what it trusts.
    let (_, events) = s
        .api(
            "GET",
            "/api/v1/audit-events?action=credential.added",
            &admin,
            None,
        )
        .await;
    assert_eq!(
        events["items"][0]["details"]["subject"], "repo:acme/app:ref:refs/heads/main",
        "{events}"
    );
    // A viewer may not add one.
    let (_, viewer) = s.caller(&["viewer"]).await;
    assert_eq!(trust(&s, &viewer, &a, base).await.0, 403);

    // Failures are throttled like wrong secrets, but an unsigned token's
    // issuer and subject are a stranger's choice: they count against the
    // address only, never against the workload they name (before, a few
    // forged tokens locked a real workload out of its shared egress
    // address).
    let s = TestServer::start_with(
        b,
        &[
            ("auth_failures_per_client", "3/1m"),
            ("auth_failures_per_ip", "6/1m"),
        ],
    )
    .await;
    let claims =
        json!({"iss": "https://ci.example", "sub": "repo:acme/app", "exp": 4_000_000_000u64});
    let forged = format!(
        "{}.{}.{}",
        B64.encode(br#"{"alg":"ES256","typ":"JWT"}"#),
        B64.encode(claims.to_string().as_bytes()),
        B64.encode(&[7u8; 64])
    );
    for i in 0..6 {
        let (st, e) = exchange(&s, JWT_BEARER, &forged, &[("client_id", &a.client_id)]).await;
        assert_eq!(st, 400, "forged token {i}: {e}");
    }
    let (st, e) = exchange(&s, JWT_BEARER, &forged, &[("client_id", &a.client_id)]).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (429, Some("temporarily_unavailable")),
        "{e}"
    );
}

/// Runs `node openid-client.mjs` with `args` and `env`; its JSON output.
async fn openid_client(args: &[&str], env: &[(&str, String)]) -> Value {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("openid-client.mjs")
            .args(&args)
            .envs(env)
            .current_dir(issuers_dir())
            .output()
            .expect("node runs")
    })
    .await
    .expect("joined");
    assert!(
        out.status.success(),
        "openid-client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// openid-client's private_key_jwt (a real client library: discovery,
/// then client_credentials with an assertion it signs).
async fn openid_client_signs_with_a_key(b: Backend) {
    if without_node_issuer() {
        return;
    }
    let s = TestServer::start(b).await;
    let (_, admin) = s.caller(&["admin"]).await;
    let a = s.create_account(&["viewer"]).await;
    let pair = openid_client(&["keygen"], &[]).await;
    let path = format!("/api/v1/service-accounts/{}/credentials", a.id);
    let body = json!({"type": "public_key", "jwk": pair["public"]});
    let (st, c) = s.api("POST", &path, &admin, Some(body)).await;
    assert_eq!(st, 201, "{c}");
    let env = [
        ("ISSUER", s.issuer.clone()),
        ("CLIENT_ID", a.client_id.clone()),
        ("PRIVATE_JWK", pair["private"].to_string()),
    ];
    let t = openid_client(&["token"], &env).await;
    assert_eq!(
        t["token_type"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("bearer"),
        "{t}"
    );
    assert_eq!(
        claims_of(t["access_token"].as_str().unwrap_or_default())["sub"],
        a.client_id.as_str()
    );
    // The key's last use shows.
    let used = used_credential(&s, &admin, &a.id, "public_key").await;
    assert!(used["last_used_at"].is_string(), "{used}");
}

/// A client that publishes its keys at a `jwks_uri` (here the CI
/// issuer's JWKS, whose key signs the assertions): warden fetches them when
/// an assertion names a `kid` it has not seen, and follows the client's
/// rotation.
async fn a_key_published_at_a_jwks_uri(b: Backend) {
    if without_node_issuer() {
        return;
    }
    let ci = CiIssuer::start();
    let s = federated_server(b).await;
    let (_, admin) = s.caller(&["admin"]).await;
    let a = s.create_account(&["viewer"]).await;
    let path = format!("/api/v1/service-accounts/{}/credentials", a.id);
    let jwks_uri = format!("{}/jwks", ci.issuer);
    let body = json!({"type": "public_key", "jwks_uri": jwks_uri});
    let (st, c) = s.api("POST", &path, &admin, Some(body)).await;
    assert_eq!(st, 201, "{c}");
    assert_eq!(c["jwks_uri"], jwks_uri.as_str());
    let token_endpoint = format!("{}/oauth/token", s.issuer);
    let claims = json!({"iss": a.client_id, "sub": a.client_id, "aud": token_endpoint});
    let assert_with = |jwt: &str| {
        [
            ("grant_type", "client_credentials".to_owned()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ),
            ("client_assertion", jwt.to_owned()),
        ]
    };
    let post = |form: [(&'static str, String); 3]| {
        let s = &s;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            s.post_form("/oauth/token", &form, None)
                .await
                .status()
                .as_u16()
        }
    };
    let jwt = ci.mint(claims.clone()).await;
    assert_eq!(post(assert_with(&jwt)).await, 200);
    assert_eq!(post(assert_with(&jwt)).await, 401, "replay");
    assert_eq!(ci.jwks_fetches().await, 1);
    let jwt = ci.mint(claims.clone()).await;
    assert_eq!(post(assert_with(&jwt)).await, 200, "the key is cached");
    assert_eq!(ci.jwks_fetches().await, 1);
    // The client rotates: its new kid is fetched, once the interval since
    // the last fetch has passed.
    ci.rotate().await;
    let jwt = ci.mint(claims.clone()).await;
    assert_eq!(post(assert_with(&jwt)).await, 401);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let jwt = ci.mint(claims.clone()).await;
    assert_eq!(post(assert_with(&jwt)).await, 200);
    assert_eq!(ci.jwks_fetches().await, 2);
    // Removed: refused from the next request on.
    let cred = format!("{path}/{}", c["id"].as_str().unwrap_or_default());
    assert_eq!(s.api("DELETE", &cred, &admin, None).await.0, 204);
    let jwt = ci.mint(claims).await;
    assert_eq!(post(assert_with(&jwt)).await, 401);
}

/// A workload's token reaches only the account it names: by default a
/// federated grant must carry `client_id`. Before, another org's copy of
/// the same trust made the id-less exchange ambiguous, and once the first
/// org's trust was removed the workload got a token of the *other* org's
/// account.
async fn a_workload_never_reaches_an_org_it_did_not_choose(b: Backend) {
    if without_node_issuer() {
        return;
    }
    let ci = CiIssuer::start();
    let s = federated_server(b).await;
    let (_, admin) = s.caller(&["admin"]).await;
    let a = s.create_account(&["viewer"]).await;
    let (st, mine) = trust(&s, &admin, &a, repo_app_trust(&ci, &s)).await;
    assert_eq!(st, 201, "{mine}");
    warden::manage::orgs::create(&s.db, "other", None, &Actor::operator(), warden::now_unix())
        .await
        .expect("org");
    let other_admin = s.create_in_org("other", &["admin"], &[], None).await;
    let other_admin = s.admin_token(&other_admin).await;
    let copycat = s.create_in_org("other", &["viewer"], &[], None).await;
    let (st, c) = trust(&s, &other_admin, &copycat, repo_app_trust(&ci, &s)).await;
    assert_eq!(st, 201, "{c}");

    let jwt = ci.token("repo-app", &s.issuer).await;
    let (st, e) = exchange(&s, JWT_BEARER, &jwt, &[]).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
    assert!(
        e["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("client_id"),
        "{e}"
    );
    let (st, t) = exchange(&s, TOKEN_EXCHANGE, &jwt, &[("client_id", &a.client_id)]).await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(
        claims_of(t["access_token"].as_str().unwrap_or_default())["org"],
        "default"
    );

    // The first org's trust lapses: nothing reaches the other org.
    let path = format!(
        "/api/v1/service-accounts/{}/credentials/{}",
        a.id,
        mine["id"].as_str().unwrap_or_default()
    );
    assert_eq!(s.api("DELETE", &path, &admin, None).await.0, 204);
    for extra in [vec![], vec![("client_id", a.client_id.as_str())]] {
        let (st, e) = exchange(&s, JWT_BEARER, &jwt, &extra).await;
        assert_eq!(st, 400, "{extra:?}: {e}");
    }
}

both_backends!(
    a_workload_never_reaches_an_org_it_did_not_choose,
    a_key_published_at_a_jwks_uri,
    openid_client_signs_with_a_key,
    a_ci_workload_gets_a_token_without_a_secret,
    federated_tokens_are_checked,
    issuer_keys_rotate_and_outages_stay_contained,
    another_warden_is_an_issuer,
    federated_credentials_are_validated
);
