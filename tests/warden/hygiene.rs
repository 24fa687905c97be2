//! Secrets hygiene: after a full life cycle against the real binary, logged
//! at `trace`, no secret, refresh token, access token or Authorization
//! header value appears in any log line, any database table, or the audit
//! log.
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

fn warden(args: &[&str], env: &[(&str, String)]) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("WARDEN_LOG", "trace")
        .output()
        .expect("run warden");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_or_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("w.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let base = format!("http://127.0.0.1:{port}");
    let env = vec![
        ("WARDEN_DATABASE_URL", format!("sqlite://{}", db.display())),
        (
            "WARDEN_KEYS_DIR",
            dir.path().join("keys").display().to_string(),
        ),
        ("WARDEN_LISTEN", format!("127.0.0.1:{port}")),
        ("WARDEN_FLUSH_INTERVAL", "200ms".to_owned()),
    ];
    let admin = warden(
        &[
            "accounts", "create", "--name", "admin", "--role", "admin", "--json",
        ],
        &env,
    );
    let rs = warden(
        &[
            "resource-servers",
            "create",
            "--name",
            "api",
            "--audience",
            "https://api.example.com",
            "--json",
        ],
        &env,
    );
    let log = dir.path().join("server.log");
    let mut server = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("WARDEN_LOG", "trace")
        .env("WARDEN_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("serve");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut secrets: Vec<String> = Vec::new();
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let (aid, asec) = (s(&admin, "client_id"), s(&admin, "client_secret"));
    let (rid, rsec) = (s(&rs, "client_id"), s(&rs, "client_secret"));
    secrets.extend([asec.clone(), rsec.clone()]);
    let token = |id: String, secret: String, extra: Vec<(&'static str, String)>| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let mut form = vec![("grant_type", "client_credentials".to_owned())];
            form.extend(extra);
            let v: Value = http
                .post(format!("{base}/oauth/token"))
                .basic_auth(id, Some(secret))
                .form(&form)
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("json");
            v
        }
    };
    let admin_tok = token(aid.clone(), asec.clone(), vec![("resource", base.clone())]).await;
    let at = s(&admin_tok, "access_token");
    secrets.extend([at.clone(), s(&admin_tok, "refresh_token")]);

    // Create, use, rotate, reset, refresh (including reuse), introspect,
    // revoke, fail authentication, delete.
    let created: Value = http
        .post(format!("{base}/api/v1/service-accounts"))
        .bearer_auth(&at)
        .json(&json!({"name": "ci", "roles": ["viewer"]}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let (cid, csec, id) = (
        s(&created, "client_id"),
        s(&created, "client_secret"),
        s(&created, "id"),
    );
    secrets.push(csec.clone());
    let t1 = token(
        cid.clone(),
        csec.clone(),
        vec![("resource", "https://api.example.com".into())],
    )
    .await;
    secrets.extend([s(&t1, "access_token"), s(&t1, "refresh_token")]);
    let rotated: Value = http
        .post(format!("{base}/api/v1/service-accounts/{id}/rotate-secret"))
        .bearer_auth(&at)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let rot = s(&rotated, "client_secret");
    secrets.push(rot.clone());
    let refreshed: Value = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(&cid, Some(&rot))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &s(&t1, "refresh_token")),
        ])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    secrets.extend([
        s(&refreshed, "access_token"),
        s(&refreshed, "refresh_token"),
    ]);
    let _ = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(&cid, Some(&rot))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &s(&t1, "refresh_token")),
        ])
        .send()
        .await;
    let _ = http
        .post(format!("{base}/oauth/introspect"))
        .basic_auth(&rid, Some(&rsec))
        .form(&[
            ("token", &s(&refreshed, "access_token")),
            ("source_ip", &"203.0.113.7".to_owned()),
        ])
        .send()
        .await;
    let _ = http
        .post(format!("{base}/oauth/revoke"))
        .basic_auth(&cid, Some(&rot))
        .form(&[("token", &s(&refreshed, "refresh_token"))])
        .send()
        .await;
    let reset: Value = http
        .post(format!("{base}/api/v1/service-accounts/{id}/reset-secret"))
        .bearer_auth(&at)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    secrets.push(s(&reset, "client_secret"));
    let wrong = "arm_sk_thisisnottherightsecretbutstillasecret".to_owned();
    secrets.push(wrong.clone());
    let _ = token(cid.clone(), wrong, vec![]).await;
    let _ = http
        .post(format!(
            "{base}/oauth/token?client_secret={}",
            s(&reset, "client_secret")
        ))
        .send()
        .await;
    // Trip the brute-force throttle, once with a well-formed wrong secret
    // and once with a live secret pasted into the client id field: the
    // throttle's log line and audit event must carry neither.
    let well_formed_wrong = warden::domain::credentials::ClientSecret::generate()
        .expose()
        .to_owned();
    secrets.push(well_formed_wrong.clone());
    let pasted = s(&reset, "client_secret");
    let mut throttled = 0;
    for _ in 0..12 {
        for id in [cid.clone(), pasted.clone()] {
            let r = token(id, well_formed_wrong.clone(), vec![]).await;
            throttled += usize::from(r["error"] == "temporarily_unavailable");
        }
    }
    assert!(throttled >= 2, "the throttle tripped");
    let _ = http
        .delete(format!("{base}/api/v1/service-accounts/{id}"))
        .bearer_auth(&at)
        .send()
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Graceful stop flushes the batched bookkeeping.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status();
    let _ = tokio::task::spawn_blocking(move || server.wait()).await;

    let logs = std::fs::read_to_string(&log).expect("read log");
    assert!(logs.lines().count() > 20, "trace logging produced output");
    let basic_values: Vec<String> = [(&aid, &asec), (&cid, &csec), (&rid, &rsec)]
        .iter()
        .map(|(i, s)| data_encoding::BASE64.encode(format!("{i}:{s}").as_bytes()))
        .collect();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open db");
    let mut tables = String::new();
    for t in [
        "orgs",
        "roles",
        "service_accounts",
        "refresh_tokens_spent",
        "refresh_families_revoked",
        "audit_events",
        "resource_servers",
        "revoked_access_tokens",
    ] {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {t}")))
            .fetch_all(&pool)
            .await
            .expect("dump");
        for r in rows {
            use sqlx::{Column, Row};
            for c in r.columns() {
                let v: Option<String> = r
                    .try_get::<Option<String>, _>(c.ordinal())
                    .ok()
                    .flatten()
                    .or_else(|| {
                        r.try_get::<Option<i64>, _>(c.ordinal())
                            .ok()
                            .flatten()
                            .map(|i| i.to_string())
                    });
                tables.push_str(&v.unwrap_or_default());
                tables.push('\n');
            }
        }
    }
    // Positive controls: the search looks at real content.
    assert!(
        tables.contains("service_account.secret_reset"),
        "the audit log was dumped"
    );
    assert!(
        tables.contains(&cid) && tables.contains(&rid),
        "accounts and resource servers were dumped"
    );
    assert!(
        logs.contains("too many failed authentications")
            && tables.contains("client.auth_throttled"),
        "the throttle logged and audited"
    );
    assert!(
        logs.contains("refresh token reuse"),
        "the server logged the life cycle"
    );
    for needle in secrets
        .iter()
        .chain(basic_values.iter())
        .filter(|s| !s.is_empty())
    {
        assert!(
            !logs.contains(needle.as_str()),
            "a secret or token appears in the logs: {}…",
            &needle[..12]
        );
        assert!(
            !tables.contains(needle.as_str()),
            "a secret or token appears in a table: {}…",
            &needle[..12]
        );
    }
}

/// The SQLite database and its `-wal`/`-shm` files are created 0600; a
/// world-readable key file or keys directory, or database file, is
/// warned about at start; `/metrics` moves to `WARDEN_METRICS_LISTEN`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_private_and_metrics_can_move() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}/w.db", dir.path().display());
    let metrics_port = crate::replicas::free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let mut c = crate::replicas::Cluster::on_database(
        dir,
        &db,
        &[("WARDEN_METRICS_LISTEN", metrics_addr.as_str())],
    );
    let a = c.account("a", "viewer");
    c.start(1).await;
    crate::replicas::token_ok(&c.http, c.r(0), &a, crate::replicas::ISSUER).await;
    for f in ["w.db", "w.db-wal", "w.db-shm"] {
        assert_eq!(mode(&c.dir.path().join(f)), 0o600, "{f}");
    }
    let log = std::fs::read_to_string(&c.r(0).log).expect("log");
    assert!(!log.contains("readable by other users"), "{log}");
    assert!(!log.contains("open to other users"), "{log}");
    // /metrics is no longer on the public listener, but on its own.
    let public = c
        .http
        .get(c.r(0).url("/metrics"))
        .send()
        .await
        .expect("get");
    assert_eq!(public.status(), 404);
    let private = c
        .http
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .expect("get metrics");
    assert_eq!(private.status(), 200);
    let text = private.text().await.expect("text");
    assert!(text.contains("warden_http_requests_total"), "{text}");
    let other = c
        .http
        .get(format!("http://{metrics_addr}/oauth/token"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        other.status(),
        404,
        "the metrics listener serves nothing else"
    );

    // Loosen the directory and the database: a restart warns about each.
    c.replicas.clear();
    let keys = c.dir.path().join("keys");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(
        c.dir.path().join("w.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    c.start(1).await;
    let log = std::fs::read_to_string(&c.r(0).log).expect("log");
    assert!(
        log.contains("the keys directory is open to other users"),
        "{log}"
    );
    assert!(
        log.contains("the database file is readable by other users"),
        "{log}"
    );
    // A private key others can read: `serve` refuses to start (as OpenSSH
    // does), naming the file and the chmod to run.
    c.replicas.clear();
    let key = std::fs::read_dir(&keys)
        .expect("keys")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "key"))
        .expect("a private key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("serve")
        .envs(c.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("WARDEN_LISTEN", "127.0.0.1:0")
        .output()
        .expect("run warden");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("refusing to start") && err.contains(&key.display().to_string()),
        "{err}"
    );
    assert!(err.contains("chmod 600"), "{err}");
}

/// An empty keys directory as git checks it out (0755) is made private
/// (0700) without a word; the key made in it is 0600.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_keys_directory_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).expect("mkdir");
    std::fs::write(keys.join(".gitkeep"), "").expect("gitkeep");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let db = format!("sqlite://{}/w.db", dir.path().display());
    let mut c = crate::replicas::Cluster::on_database(dir, &db, &[]);
    c.start(1).await;
    let mode = std::fs::metadata(&keys).expect("keys").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let log = std::fs::read_to_string(&c.r(0).log).expect("log");
    assert!(!log.contains("open to other users"), "{log}");
}

/// `serve` refuses a misspelt setting (one a did-you-mean names), so a
/// `WARDEN_DATABSE_URL` never runs on a fresh file; an unrelated
/// `WARDEN_*` name is a warning, and CLI commands only warn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_setting_stops_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str], var: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .current_dir(dir.path())
            .env("WARDEN_LISTEN", "127.0.0.1:0")
            .env("WARDEN_KEYS_DIR", dir.path().join("keys"))
            .env(var, "sqlite://elsewhere.db")
            .output()
            .expect("run warden")
    };
    let out = run(&["serve"], "WARDEN_DATABSE_URL");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("WARDEN_DATABSE_URL") && err.contains("did you mean WARDEN_DATABASE_URL"),
        "{err}"
    );
    assert!(
        !dir.path().join("warden.db").exists(),
        "no database is created before the refusal"
    );
    let out = run(&["orgs", "list"], "WARDEN_DATABSE_URL");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: WARDEN_DATABSE_URL"), "{err}");
}

/// A default audience equal to the issuer, with or without a trailing
/// slash, would make every token asked for without `resource` an
/// admin-API token: refused at start, naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_audience_is_never_the_issuer() {
    for aud in [
        "https://auth.example.com",
        "https://auth.example.com/",
        "HTTPS://auth.example.com",
        // Other spellings of it (found by review: the admin API matches
        // audiences by their normalized key).
        "https://auth.example.com:443/.",
        "HTTPS://AUTH.example.com:/%2e/",
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = format!("sqlite://{}/w.db", dir.path().display());
        let keys = dir.path().join("keys").display().to_string();
        let config = warden::config::Config::from_pairs(&[
            ("database_url", &db),
            ("keys_dir", &keys),
            ("listen", "127.0.0.1:0"),
            ("issuer", "https://auth.example.com"),
            ("default_audience", aud),
        ])
        .expect("config");
        let err = warden::app::Application::build(config)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("WARDEN_DEFAULT_AUDIENCE"), "{aud}: {err:?}");
    }
}
