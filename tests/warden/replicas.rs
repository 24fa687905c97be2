//! Several `warden serve` processes (the real binary) on one real
//! PostgreSQL and one keys directory, as behind a load balancer: what one
//! replica changes, the others enforce at the very next request.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, Response};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::harness::{Backend, fresh_database};

pub const ISSUER: &str = "http://warden.test";
const API: &str = "https://api.example.com";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One `warden serve` process.
pub struct Replica {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Replica {
    pub fn spawn(env: &[(String, String)], log: &Path) -> Self {
        let port = free_port();
        let file = std::fs::File::create(log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("WARDEN_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn warden serve");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log: log.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits until `/readyz` answers 200.
    pub async fn ready(&mut self, http: &Client) {
        let t0 = Instant::now();
        loop {
            if let Ok(r) = http.get(self.url("/readyz")).send().await
                && r.status() == 200
            {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "warden exited with {st}: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "replica never became ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A shared database and keys directory, and the replicas serving them.
pub struct Cluster {
    pub dir: TempDir,
    pub env: Vec<(String, String)>,
    pub replicas: Vec<Replica>,
    pub http: Client,
}

impl Cluster {
    /// A fresh PostgreSQL database; `extra` settings as (WARDEN_…, value).
    pub async fn new(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = fresh_database(Backend::Postgres, &dir).await;
        Self::on_database(dir, &db, extra)
    }

    pub fn on_database(dir: TempDir, db: &str, extra: &[(&str, &str)]) -> Self {
        let mut env: Vec<(String, String)> = vec![
            ("WARDEN_DATABASE_URL".into(), db.to_owned()),
            (
                "WARDEN_KEYS_DIR".into(),
                dir.path().join("keys").display().to_string(),
            ),
            ("WARDEN_ISSUER".into(), ISSUER.into()),
            ("WARDEN_FLUSH_INTERVAL".into(), "200ms".into()),
            ("WARDEN_KEY_RELOAD_INTERVAL".into(), "1s".into()),
            ("WARDEN_KEY_PUBLICATION_DELAY".into(), "3s".into()),
        ];
        for (k, v) in extra {
            env.retain(|(e, _)| e != k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        Self {
            dir,
            env,
            replicas: Vec::new(),
            http: Client::new(),
        }
    }

    /// Runs a CLI command against the shared database; returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let o = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run warden");
        assert!(
            o.status.success(),
            "warden {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).expect("utf-8")
    }

    pub fn cli_json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.cli(args)).expect("json")
    }

    /// Creates a credential account with one role, through the CLI.
    pub fn account(&self, name: &str, role: &str) -> Creds {
        Creds::from_json(&self.cli_json(&[
            "accounts", "create", "--name", name, "--role", role, "--json",
        ]))
    }

    /// Registers a resource server for `audience`, through the CLI.
    pub fn resource_server(&self, audience: &str) -> Creds {
        Creds::from_json(&self.cli_json(&[
            "resource-servers",
            "create",
            "--name",
            "api",
            "--audience",
            audience,
            "--json",
        ]))
    }

    pub async fn start(&mut self, n: usize) {
        let first = self.replicas.len();
        for i in first..first + n {
            let log = self.dir.path().join(format!("replica-{i}.log"));
            self.replicas.push(Replica::spawn(&self.env, &log));
        }
        let http = self.http.clone();
        for r in &mut self.replicas[first..] {
            r.ready(&http).await;
        }
    }

    pub fn r(&self, i: usize) -> &Replica {
        &self.replicas[i]
    }
}

pub struct Creds {
    pub id: String,
    pub client_id: String,
    pub secret: String,
}

impl Creds {
    pub fn from_json(v: &Value) -> Self {
        Self {
            id: v["id"].as_str().unwrap_or_default().to_owned(),
            client_id: v["client_id"].as_str().unwrap_or_default().to_owned(),
            secret: v["client_secret"].as_str().unwrap_or_default().to_owned(),
        }
    }
}

pub async fn token(http: &Client, r: &Replica, c: &Creds, resource: &str) -> Response {
    http.post(r.url("/oauth/token"))
        .basic_auth(&c.client_id, Some(&c.secret))
        .form(&[("grant_type", "client_credentials"), ("resource", resource)])
        .send()
        .await
        .expect("token request")
}

pub async fn token_ok(http: &Client, r: &Replica, c: &Creds, resource: &str) -> Value {
    let resp = token(http, r, c, resource).await;
    let st = resp.status();
    let body: Value = resp.json().await.expect("json");
    assert_eq!(st, 200, "{body}");
    body
}

pub async fn introspect(
    http: &Client,
    r: &Replica,
    rs: &Creds,
    token: &str,
    source_ip: Option<&str>,
) -> Value {
    let mut form = vec![("token", token)];
    if let Some(ip) = source_ip {
        form.push(("source_ip", ip));
    }
    let resp = http
        .post(r.url("/oauth/introspect"))
        .basic_auth(&rs.client_id, Some(&rs.secret))
        .form(&form)
        .send()
        .await
        .expect("introspect");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

async fn api(
    http: &Client,
    r: &Replica,
    method: &str,
    path: &str,
    bearer: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = http.request(m, r.url(path)).bearer_auth(bearer);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("api");
    let st = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (st, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn at(v: &Value) -> String {
    v["access_token"].as_str().unwrap_or_default().to_owned()
}

/// Disable, role removal, IP change and secret reset made through replica
/// A hold on replica B at the next request; `last used` is batched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_one_replica_hold_on_the_others() {
    if crate::harness::without_postgres() {
        return;
    }
    let mut c = Cluster::new(&[("WARDEN_FLUSH_INTERVAL", "1s")]).await;
    let root = c.account("root", "admin");
    let rs = c.resource_server(API);
    c.start(2).await;
    let (a, b, http) = (c.r(0), c.r(1), &c.http);
    let root_token = at(&token_ok(http, a, &root, ISSUER).await);

    // An account created through A works through B at once.
    let (st, x) = api(
        http,
        a,
        "POST",
        "/api/v1/service-accounts",
        &root_token,
        Some(json!({"name": "x", "roles": ["admin", "viewer"]})),
    )
    .await;
    assert_eq!(st, 201, "{x}");
    let x = Creds::from_json(&x);
    let t = at(&token_ok(http, b, &x, API).await);
    let v = introspect(http, a, &rs, &t, None).await;
    assert_eq!(v["active"], true);
    assert_eq!(v["roles"], json!(["admin", "viewer"]));
    let x_admin = at(&token_ok(http, b, &x, ISSUER).await);
    let (st, _) = api(http, b, "GET", "/api/v1/service-accounts", &x_admin, None).await;
    assert_eq!(st, 200);

    // Role removal on A: B's introspection and admin API see it next call.
    let path = format!("/api/v1/service-accounts/{}", x.id);
    let (st, _) = api(
        http,
        a,
        "PATCH",
        &path,
        &root_token,
        Some(json!({"roles": ["viewer"]})),
    )
    .await;
    assert_eq!(st, 200);
    let v = introspect(http, b, &rs, &t, None).await;
    assert_eq!(v["roles"], json!(["viewer"]), "{v}");
    let (st, _) = api(
        http,
        b,
        "POST",
        "/api/v1/service-accounts",
        &x_admin,
        Some(json!({"name": "n", "roles": ["viewer"]})),
    )
    .await;
    assert_eq!(st, 403, "the admin role is gone on B too");

    // Disable on A: inactive on B, tokens refused on B; enable restores.
    let (st, _) = api(
        http,
        a,
        "POST",
        &format!("{path}/disable"),
        &root_token,
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        introspect(http, b, &rs, &t, None).await,
        json!({"active": false})
    );
    assert_eq!(token(http, b, &x, API).await.status(), 403);
    let (st, _) = api(http, b, "GET", "/api/v1/service-accounts", &x_admin, None).await;
    assert_eq!(st, 401);
    let (st, _) = api(
        http,
        a,
        "POST",
        &format!("{path}/enable"),
        &root_token,
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(introspect(http, b, &rs, &t, None).await["active"], true);

    // IP allowlist change on A.
    let (st, _) = api(
        http,
        a,
        "PATCH",
        &path,
        &root_token,
        Some(json!({"allowed_ips": ["10.0.0.0/8"]})),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        introspect(http, b, &rs, &t, Some("127.0.0.1")).await["active"],
        false
    );
    assert_eq!(
        introspect(http, b, &rs, &t, Some("10.1.2.3")).await["active"],
        true
    );
    assert_eq!(
        token(http, b, &x, API).await.status(),
        403,
        "B sees 127.0.0.1"
    );
    let (st, _) = api(
        http,
        a,
        "PATCH",
        &path,
        &root_token,
        Some(json!({"allowed_ips": []})),
    )
    .await;
    assert_eq!(st, 200);

    // B has verified (and cached) the secret; a reset on A kills it on B.
    token_ok(http, b, &x, API).await;
    let (st, reset) = api(
        http,
        a,
        "POST",
        &format!("{path}/reset-secret"),
        &root_token,
        None,
    )
    .await;
    assert_eq!(st, 200, "{reset}");
    assert_eq!(
        token(http, b, &x, API).await.status(),
        401,
        "old secret dead on B"
    );
    let x2 = Creds {
        secret: reset["client_secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        ..x
    };
    token_ok(http, b, &x2, API).await;

    // `last used` is right without a write per request: count UPDATE
    // statements on service_accounts with a statement-level trigger.
    let db = &c.env[0].1;
    let pool = sqlx::PgPool::connect(db).await.expect("connect");
    for sql in [
        "CREATE TABLE update_statements (n integer NOT NULL)",
        "CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN INSERT INTO update_statements VALUES (1); RETURN NULL; END $$",
        "CREATE TRIGGER count_updates AFTER UPDATE ON service_accounts \
         FOR EACH STATEMENT EXECUTE FUNCTION count_update()",
    ] {
        sqlx::query(sql)
            .execute(&pool)
            .await
            .expect("trigger setup");
    }
    let (st, before) = api(http, a, "GET", &path, &root_token, None).await;
    assert_eq!(st, 200);
    let t0 = Instant::now();
    for i in 0..60 {
        token_ok(http, c.r(i % 2), &x2, API).await;
    }
    let issuing = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, after) = api(http, b, "GET", &path, &root_token, None).await;
    assert!(
        after["last_used_at"].as_str() >= before["last_used_at"].as_str()
            && !after["last_used_at"].is_null(),
        "{before} → {after}"
    );
    let updates: i64 = sqlx::query_scalar("SELECT count(*) FROM update_statements")
        .fetch_one(&pool)
        .await
        .expect("count");
    // One flush per replica per second at most while tokens were issued,
    // plus the one after: far from one per token.
    let bound = 2 * (issuing.as_secs() as i64 + 3);
    assert!(
        updates <= bound,
        "{updates} UPDATEs for 60 tokens (bound {bound})"
    );
    pool.close().await;
}

/// A permission an API stops declaring (through another process, the CLI)
/// leaves every replica's tokens at the next request: the declaration is
/// read in the token endpoint's one query, never cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_permission_changes_hold_on_every_replica() {
    if crate::harness::without_postgres() {
        return;
    }
    let mut c = Cluster::new(&[]).await;
    let x = c.account("x", "admin");
    let billing = "https://billing.example";
    c.cli_json(&[
        "resource-servers",
        "create",
        "--name",
        "billing",
        "--audience",
        billing,
        "--permission",
        "billing:read=Read invoices",
        "--permission",
        "billing:write",
        "--json",
    ]);
    c.start(2).await;
    let (a, b, http) = (c.r(0), c.r(1), &c.http);
    for r in [a, b] {
        let t = token_ok(http, r, &x, billing).await;
        assert_eq!(t["scope"], "billing:read billing:write");
    }
    let rs = c.cli_json(&[
        "resource-servers",
        "update",
        billing,
        "--remove-permission",
        "billing:read",
        "--json",
    ]);
    assert_eq!(
        rs["permissions"],
        json!([{"name": "billing:write", "description": ""}])
    );
    for r in [a, b] {
        let t = token_ok(http, r, &x, billing).await;
        assert_eq!(t["scope"], "billing:write", "at once, on every replica");
    }

    // A custom role and a global role edited through replica A: replica
    // B's tokens follow at the next request (the roles' permissions are
    // read with the account, never cached).
    c.cli_json(&[
        "roles",
        "create",
        "payer",
        "--permission",
        "billing:write",
        "--json",
    ]);
    let root = at(&token_ok(http, a, &x, ISSUER).await);
    let (st, r) = api(
        http,
        a,
        "POST",
        "/api/v1/roles",
        &root,
        Some(json!({"id": "invoicer", "permissions": ["billing:write"]})),
    )
    .await;
    assert_eq!(st, 201, "{r}");
    let (st, y) = api(
        http,
        a,
        "POST",
        "/api/v1/service-accounts",
        &root,
        Some(json!({"name": "y", "roles": ["invoicer", "payer"]})),
    )
    .await;
    assert_eq!(st, 201, "{y}");
    let y = Creds::from_json(&y);
    let rs = c.resource_server(API);
    let t = at(&token_ok(http, b, &y, API).await);
    let v = introspect(http, b, &rs, &t, None).await;
    assert_eq!(v["roles"], json!(["invoicer", "payer"]), "{v}");
    assert_eq!(v["scope"], "billing:write", "{v}");
    let narrow = json!({"permissions": ["org:read"]});
    let (st, r) = api(
        http,
        a,
        "PATCH",
        "/api/v1/roles/invoicer",
        &root,
        Some(narrow),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    let op = c.account("op", "operator");
    let op_token = at(&token_ok(http, a, &op, ISSUER).await);
    let narrow = json!({"permissions": ["org:read"]});
    let path = "/api/v1/global-roles/payer";
    let (st, r) = api(http, a, "PATCH", path, &op_token, Some(narrow)).await;
    assert_eq!(st, 200, "{r}");
    let r = token(http, b, &y, billing).await;
    let body: Value = r.json().await.unwrap_or_default();
    assert_eq!(
        body["scope"], "",
        "neither role grants billing:write now: {body}"
    );
    let d = token_ok(http, b, &y, API).await;
    assert_eq!(d["scope"], "org:read", "{d}");
    let v = introspect(http, b, &rs, &t, None).await;
    assert_eq!(v["scope"], "", "the token issued before loses it: {v}");
}

/// A refresh token presented to both replicas at once has one winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_race_across_replicas_has_one_winner() {
    if crate::harness::without_postgres() {
        return;
    }
    let mut c = Cluster::new(&[]).await;
    let x = c.account("x", "viewer");
    c.cli(&[
        "resource-servers",
        "create",
        "--name",
        "api",
        "--audience",
        API,
    ]);
    c.start(2).await;
    for round in 0..3 {
        let rt = token_ok(&c.http, c.r(0), &x, API).await["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let attempts = (0..10).map(|i| {
            c.http
                .post(c.r(i % 2).url("/oauth/token"))
                .basic_auth(&x.client_id, Some(&x.secret))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
                .send()
        });
        let results = futures::future::join_all(attempts).await;
        let codes: Vec<u16> = results
            .iter()
            .map(|r| r.as_ref().map(|r| r.status().as_u16()).unwrap_or(0))
            .collect();
        assert_eq!(
            codes.iter().filter(|c| **c == 200).count(),
            1,
            "round {round}: {codes:?}"
        );
        assert!(codes.iter().all(|c| *c == 200 || *c == 400), "{codes:?}");
    }
}

/// Replicas starting together on an empty database apply each migration
/// exactly once and all come up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_startups_migrate_once() {
    if crate::harness::without_postgres() {
        return;
    }
    let mut c = Cluster::new(&[]).await;
    let env = c.env.clone();
    let migrators: Vec<Child> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_warden"))
                .arg("migrate")
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn migrate")
        })
        .collect();
    // And three servers at the same moment.
    c.start(3).await;
    for m in migrators {
        let o = m.wait_with_output().expect("wait");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .expect("migrations")
        .count() as i64;
    let pool = sqlx::PgPool::connect(&c.env[0].1).await.expect("connect");
    let rows: Vec<(i64, i64, bool)> = sqlx::query_as(
        "SELECT version, count(*), bool_and(success) FROM _sqlx_migrations GROUP BY version",
    )
    .fetch_all(&pool)
    .await
    .expect("migrations table");
    assert_eq!(rows.len() as i64, files, "{rows:?}");
    assert!(rows.iter().all(|(_, n, ok)| *n == 1 && *ok), "{rows:?}");
    pool.close().await;
    let x = c.account("x", "viewer");
    c.cli(&[
        "resource-servers",
        "create",
        "--name",
        "api",
        "--audience",
        API,
    ]);
    for i in 0..3 {
        token_ok(&c.http, c.r(i), &x, API).await;
    }
}

/// Header and claims of a compact JWT, unverified.
fn peek(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next = || -> Value {
        serde_json::from_slice(
            &data_encoding::BASE64URL_NOPAD
                .decode(parts.next().unwrap_or("").as_bytes())
                .expect("b64"),
        )
        .expect("json")
    };
    (next(), next())
}

/// Verifies `token` with jsonwebtoken against `jwks`, as a resource
/// server would.
fn verifies_offline(jwks: &Value, token: &str) -> bool {
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
    let Ok(set) = serde_json::from_value::<JwkSet>(jwks.clone()) else {
        return false;
    };
    let Ok(header) = decode_header(token) else {
        return false;
    };
    let Some(jwk) = header.kid.as_deref().and_then(|k| set.find(k)) else {
        return false;
    };
    let Ok(key) = DecodingKey::from_jwk(jwk) else {
        return false;
    };
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[API]);
    decode::<Value>(token, &key, &v).is_ok()
}

async fn jwks(http: &Client, r: &Replica) -> (Value, String) {
    let resp = http
        .get(r.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks");
    let cc = resp
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (resp.json().await.expect("json"), cc)
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|k| k["kid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `warden keys rotate` to RS256 under two replicas: the new key is in
/// every replica's JWKS before any replica signs with it, and every token
/// issued before, during and after verifies at every moment, on every
/// replica, by introspection and offline. Pruning then retires the old key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_across_replicas() {
    if crate::harness::without_postgres() {
        return;
    }
    let mut c = Cluster::new(&[]).await;
    let x = c.account("x", "viewer");
    let rs = c.resource_server(API);
    c.start(2).await;
    let http = c.http.clone();
    let (first_jwks, cc) = jwks(&http, c.r(0)).await;
    // Publication delay 3 s minus reload interval 1 s.
    assert_eq!(cc, "public, max-age=2");
    let old_kid = kids(&first_jwks)[0].clone();

    let mut tokens: Vec<String> = Vec::new();
    for i in 0..2 {
        tokens.push(at(&token_ok(&http, c.r(i), &x, API).await));
    }
    let new_kid = c
        .cli(&["keys", "rotate", "--alg", "RS256"])
        .trim()
        .to_owned();
    let rotated_at = Instant::now();
    // First moment each replica published / signed with the new key.
    let mut published: BTreeMap<usize, Duration> = BTreeMap::new();
    let mut signed: BTreeMap<usize, Duration> = BTreeMap::new();
    while rotated_at.elapsed() < Duration::from_secs(7) {
        for i in 0..2 {
            let r = c.r(i);
            let (set, _) = jwks(&http, r).await;
            if kids(&set).contains(&new_kid) {
                published.entry(i).or_insert(rotated_at.elapsed());
            }
            let t = at(&token_ok(&http, r, &x, API).await);
            let (h, _) = peek(&t);
            if h["kid"] == new_kid.as_str() {
                assert_eq!(h["alg"], "RS256");
                signed.entry(i).or_insert(rotated_at.elapsed());
            } else {
                assert_eq!(h["kid"], old_kid.as_str());
            }
            tokens.push(t);
            // Every token so far verifies here, now: offline against this
            // replica's JWKS, and by introspection on this replica.
            for t in &tokens {
                assert!(
                    verifies_offline(&set, t),
                    "offline verification failed on replica {i}"
                );
            }
            for t in tokens.iter().rev().take(6) {
                let v = introspect(&http, r, &rs, t, None).await;
                assert_eq!(v["active"], true, "introspection on replica {i}");
            }
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(
        published.len(),
        2,
        "published on every replica: {published:?}"
    );
    assert_eq!(
        signed.len(),
        2,
        "both replicas moved to the new key: {signed:?}"
    );
    let last_published = published.values().max().copied().unwrap_or_default();
    let first_signed = signed.values().min().copied().unwrap_or_default();
    assert!(
        first_signed > last_published,
        "a replica signed ({first_signed:?}) before every replica published ({last_published:?})"
    );
    assert!(
        first_signed >= Duration::from_secs(2),
        "signed before the delay: {first_signed:?}"
    );

    // `keys prune` keeps the old key while its tokens may live.
    assert_eq!(c.cli(&["keys", "prune"]).trim(), "");
    assert!(kids(&jwks(&http, c.r(1)).await.0).contains(&old_kid));
    // Once its tokens have expired (simulated by pruning as of an hour
    // from now), it is removed, and every replica drops it on reload.
    let dir = c.dir.path().join("keys");
    let pruned =
        warden::crypto::keys::prune(&dir, 900, 1, warden::now_unix() + 3600).expect("prune");
    assert_eq!(pruned, vec![old_kid.clone()]);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    for i in 0..2 {
        let (set, _) = jwks(&http, c.r(i)).await;
        assert_eq!(kids(&set), vec![new_kid.clone()], "replica {i}");
        assert_eq!(
            introspect(&http, c.r(i), &rs, &tokens[0], None).await,
            json!({"active": false})
        );
        let last = tokens.last().cloned().unwrap_or_default();
        assert_eq!(
            introspect(&http, c.r(i), &rs, &last, None).await["active"],
            true
        );
    }
}

/// The automatic schedule on two replicas sharing the keys directory makes
/// one key per period (not one per replica), each published before use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_rotation_makes_one_key_per_period() {
    if crate::harness::without_postgres() {
        return;
    }
    let mut c = Cluster::new(&[
        ("WARDEN_KEY_ROTATION_INTERVAL", "3s"),
        // Twice the reload interval: replicas load a key a full reload
        // before it signs, even when a reload tick runs late.
        ("WARDEN_KEY_PUBLICATION_DELAY", "2s"),
        ("WARDEN_KEY_ALGORITHM", "EdDSA"),
    ])
    .await;
    let x = c.account("x", "viewer");
    let rs = c.resource_server(API);
    c.start(2).await;
    let http = c.http.clone();
    let t0 = Instant::now();
    let mut tokens = Vec::new();
    while t0.elapsed() < Duration::from_secs(8) {
        for i in 0..2 {
            tokens.push(at(&token_ok(&http, c.r(i), &x, API).await));
            for t in tokens.iter().rev().take(4) {
                assert_eq!(
                    introspect(&http, c.r(i), &rs, t, None).await["active"],
                    true
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dir = c.dir.path().join("keys");
    let mut created: Vec<i64> = std::fs::read_dir(&dir)
        .expect("keys dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("json"))
        .map(|p| {
            let v: Value =
                serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json");
            assert_eq!(v["alg"], "EdDSA");
            v["created_at"].as_i64().unwrap_or_default()
        })
        .collect();
    created.sort();
    assert!(created.len() >= 3, "rotated on schedule: {created:?}");
    assert!(
        created.windows(2).all(|w| w[1] - w[0] >= 3),
        "at most one key per period: {created:?}"
    );
    let signers: std::collections::BTreeSet<String> = tokens
        .iter()
        .map(|t| peek(t).0["kid"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(signers.len() >= 2, "tokens were signed by successive keys");
}
