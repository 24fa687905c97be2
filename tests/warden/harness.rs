//! Spawns a real warden server on a random port against a fresh database
//! (a SQLite file in a temp dir, or a new database on the PostgreSQL named
//! by WARDEN_TEST_POSTGRES_URL) and a fresh keys directory.
use std::sync::Arc;

use reqwest::{Client, Response};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use warden::app::Application;
use warden::config::Config;
use warden::db::Db;
use warden::domain::account::AccountKind;
use warden::http::AppState;
use warden::manage::Actor;
use warden::manage::accounts::NewAccount;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each named async fn
/// taking a `Backend`, in modules `sqlite` and `postgres`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::harness::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::harness::without_postgres() {
                        return;
                    }
                    super::$name($crate::harness::Backend::Postgres).await
                }
            )*
        }
    };
}
pub(crate) use both_backends;

/// Whether PostgreSQL tests should be skipped: no `WARDEN_TEST_POSTGRES_URL`
/// (a plain `cargo test`), said on stderr. `./scripts/test` always provides
/// one and sets `WARDEN_TEST_REQUIRE_POSTGRES`, under which a missing URL
/// fails the test instead, so CI never skips them in silence.
pub fn without_postgres() -> bool {
    if std::env::var_os("WARDEN_TEST_POSTGRES_URL").is_some() {
        return false;
    }
    assert!(
        std::env::var_os("WARDEN_TEST_REQUIRE_POSTGRES").is_none(),
        "WARDEN_TEST_POSTGRES_URL is not set but WARDEN_TEST_REQUIRE_POSTGRES is"
    );
    eprintln!(
        "skipped: no WARDEN_TEST_POSTGRES_URL (./scripts/test starts a PostgreSQL and runs these)"
    );
    true
}

/// A fresh database URL for `backend`.
pub async fn fresh_database(backend: Backend, dir: &TempDir) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}/warden.db", dir.path().display()),
        Backend::Postgres => {
            let admin = std::env::var("WARDEN_TEST_POSTGRES_URL").unwrap_or_else(|_| {
                panic!("WARDEN_TEST_POSTGRES_URL is not set: run the suite with ./scripts/test, which starts PostgreSQL")
            });
            let name = format!("warden_{}", uuid::Uuid::new_v4().simple());
            let pool = sqlx::PgPool::connect(&admin)
                .await
                .expect("connect to WARDEN_TEST_POSTGRES_URL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&pool)
                .await
                .expect("create test database");
            pool.close().await;
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            format!("{base}/{name}")
        }
    }
}

/// The example role catalog (a risk tracker's roles and permissions).
pub const RISK_PLATFORM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/catalogs/risk-platform.toml"
);

/// The roles that catalog defines (global roles every org sees).
pub const RISK_PLATFORM_ROLES: &[&str] = &[
    "editor",
    "risk-viewer",
    "risk-editor",
    "incident-viewer",
    "incident-editor",
];

pub struct TestServer {
    pub base: String,
    pub issuer: String,
    pub db_url: String,
    pub db: Db,
    pub state: Arc<AppState>,
    pub dir: TempDir,
    pub http: Client,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A credential account as created: its ids and its one-time secret.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub client_id: String,
    pub secret: String,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[]).await
    }

    pub async fn start_with(backend: Backend, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = fresh_database(backend, &dir).await;
        Self::start_on(backend, dir, &url, extra).await
    }

    /// Starts on an existing database and directory (to restart a server).
    pub async fn start_on(
        _backend: Backend,
        dir: TempDir,
        url: &str,
        extra: &[(&str, &str)],
    ) -> Self {
        let keys = dir.path().join("keys");
        let keys = keys.to_str().expect("utf-8 path").to_owned();
        let mut pairs: Vec<(&str, &str)> = vec![
            ("database_url", url),
            ("listen", "127.0.0.1:0"),
            ("keys_dir", &keys),
            ("flush_interval", "1s"),
            // Most tests speak of a risk tracker's roles: its catalog is
            // loaded unless a test says `("role_catalog", "")`.
            ("role_catalog", RISK_PLATFORM),
        ];
        pairs.extend_from_slice(extra);
        let config = Config::from_pairs(&pairs).expect("test config");
        let app = Application::build(config).await.expect("server starts");
        let addr = app.local_addr().expect("bound");
        let state = app.state();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        Self {
            base: format!("http://{addr}"),
            issuer: state.issuer.clone(),
            db_url: url.to_owned(),
            db: state.db.clone(),
            state,
            dir,
            http: Client::new(),
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// GETs `url` (a path on this server, or a whole URL) as JSON.
    pub async fn get_json(&self, url: &str) -> Value {
        let url = if url.starts_with('/') {
            self.url(url)
        } else {
            url.to_owned()
        };
        let r = self.http.get(url).send().await.expect("get");
        r.json().await.expect("json")
    }

    /// Graceful stop: drains and flushes bookkeeping. Returns the temp dir.
    pub async fn stop(mut self) -> TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("server task").expect("server ran");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn create_account(&self, roles: &[&str]) -> Account {
        self.create_account_with(roles, &[], None).await
    }

    pub async fn create_account_with(
        &self,
        roles: &[&str],
        allowed_ips: &[&str],
        expires_in: Option<&str>,
    ) -> Account {
        self.create_in_org("default", roles, allowed_ips, expires_in)
            .await
    }

    pub async fn create_in_org(
        &self,
        org: &str,
        roles: &[&str],
        allowed_ips: &[&str],
        expires_in: Option<&str>,
    ) -> Account {
        let req = NewAccount {
            org: org.into(),
            kind: AccountKind::Credential,
            name: "test account".into(),
            description: String::new(),
            integration: None,
            roles: roles.iter().map(|s| s.to_string()).collect(),
            allowed_ips: allowed_ips.iter().map(|s| s.to_string()).collect(),
            expires_in: expires_in.map(str::to_owned),
            expires_at: None,
            allowed_resources: Vec::new(),
            with_secret: true,
        };
        let (a, s) =
            warden::manage::accounts::create(&self.db, req, &Actor::operator(), warden::now_unix())
                .await
                .expect("create account");
        Account {
            id: a.id,
            client_id: a.client_id.expect("credential account"),
            secret: s.expect("secret").expose().to_owned(),
        }
    }

    /// POSTs a form; `basic` adds HTTP Basic credentials.
    pub async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Response {
        let mut req = self
            .http
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        req.body(body).send().await.expect("request sent")
    }

    /// client_credentials with Basic authentication.
    pub async fn token(&self, a: &Account, extra: &[(&str, &str)]) -> Response {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        self.post_form("/oauth/token", &form, Some((&a.client_id, &a.secret)))
            .await
    }

    /// A successful client_credentials response body.
    pub async fn token_ok(&self, a: &Account, extra: &[(&str, &str)]) -> Value {
        let r = self.token(a, extra).await;
        let status = r.status();
        let body: Value = r.json().await.expect("json");
        assert_eq!(status, 200, "token request failed: {body}");
        body
    }

    pub async fn refresh(&self, a: &Account, refresh_token: &str) -> Response {
        self.post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            Some((&a.client_id, &a.secret)),
        )
        .await
    }

    /// Runs a statement against the server's database (for states the
    /// API cannot produce yet, such as a past expiry).
    pub async fn sql(&self, sql: &str, id: &str) {
        let q = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.db {
            Db::Sqlite(p) => sqlx::query(q).bind(id).execute(&p.write).await.map(|_| ()),
            Db::Postgres(p) => sqlx::query(q).bind(id).execute(p).await.map(|_| ()),
        }
        .expect("sql");
    }
}

/// A registered resource server and its one-time secret.
#[derive(Debug, Clone)]
pub struct Rs {
    pub id: String,
    pub client_id: String,
    pub secret: String,
    pub audience: String,
}

impl TestServer {
    pub async fn create_resource_server(&self, audience: &str) -> Rs {
        self.create_api(audience, &[]).await
    }

    /// A resource server declaring `permissions` (name, description).
    pub async fn create_api(&self, audience: &str, permissions: &[(&str, &str)]) -> Rs {
        let declared = permissions
            .iter()
            .map(|(name, description)| warden::domain::roles::ApiPermission {
                name: (*name).to_owned(),
                description: (*description).to_owned(),
            })
            .collect();
        let (r, s) = warden::manage::resource_servers::create(
            &self.db,
            "api",
            audience,
            declared,
            &self.issuer,
            &Actor::operator(),
            warden::now_unix(),
        )
        .await
        .expect("create resource server");
        Rs {
            id: r.id,
            client_id: r.client_id,
            secret: s.expose().to_owned(),
            audience: r.audience,
        }
    }

    /// Introspects `token` as `rs`; asserts 200 and returns the body.
    pub async fn introspect(&self, rs: &Rs, token: &str, source_ip: Option<&str>) -> Value {
        let mut form = vec![("token", token)];
        if let Some(ip) = source_ip {
            form.push(("source_ip", ip));
        }
        let r = self
            .post_form(
                "/oauth/introspect",
                &form,
                Some((&rs.client_id, &rs.secret)),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        r.json().await.expect("json")
    }

    pub async fn is_active(&self, rs: &Rs, token: &str, source_ip: Option<&str>) -> bool {
        let body = self.introspect(rs, token, source_ip).await;
        match body["active"].as_bool() {
            Some(true) => true,
            Some(false) => {
                assert_eq!(
                    body,
                    serde_json::json!({"active": false}),
                    "inactive answers say nothing else"
                );
                false
            }
            None => panic!("no `active` in {body}"),
        }
    }
}

impl TestServer {
    /// An access token for the admin API (aud = issuer).
    pub async fn admin_token(&self, a: &Account) -> String {
        let body = self
            .token_ok(a, &[("resource", &self.issuer.clone())])
            .await;
        body["access_token"].as_str().unwrap_or_default().to_owned()
    }

    /// Calls the admin API; returns status and JSON body (Null if empty).
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(m, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("send");
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = r.text().await.expect("body");
        if status >= 400 {
            assert_eq!(
                ctype, "application/problem+json",
                "errors are problem documents: {text}"
            );
        }
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).expect("json body")
            },
        )
    }
}

/// Asserts an OAuth error response and returns its body.
pub async fn expect_error(r: Response, status: u16, code: &str) -> Value {
    let got = r.status().as_u16();
    let cc = r
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    let body: Value = r.json().await.expect("error body is JSON");
    assert_eq!(got, status, "unexpected status, body {body}");
    assert_eq!(body["error"], code, "unexpected error code, body {body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.contains('\n')),
        "{body}"
    );
    assert_eq!(cc.as_deref(), Some("no-store"));
    body
}

/// The credentials in an admin-API or CLI answer that carries a secret.
pub fn account_from(v: &Value) -> Account {
    Account {
        id: v["id"].as_str().unwrap_or_default().into(),
        client_id: v["client_id"].as_str().unwrap_or_default().into(),
        secret: v["client_secret"].as_str().unwrap_or_default().into(),
    }
}

impl TestServer {
    /// An account with `roles` and an admin-API token for it.
    pub async fn caller(&self, roles: &[&str]) -> (Account, String) {
        let a = self.create_account(roles).await;
        let t = self.admin_token(&a).await;
        (a, t)
    }

    /// A custom role in the default org, created by the operator.
    pub async fn role(&self, id: &str, permissions: &[&str]) {
        let perms: Vec<String> = permissions.iter().map(|p| p.to_string()).collect();
        warden::manage::roles::create(
            &self.db,
            Some("default"),
            id,
            "",
            &perms,
            &warden::manage::Actor::operator(),
            warden::now_unix(),
        )
        .await
        .expect("role");
    }
}
