//! Neutral built-ins and role catalogs (issue 31): a fresh install holds
//! only the admin plane's roles; a catalog file brings a product's; a
//! database from before keeps every role and grant it had.
use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{Value, json};
use warden::db::Db;

use crate::harness::{Backend, TestServer, both_backends};

/// What warden's built-in roles held before they became neutral (the
/// table in src/domain/roles.rs at 2afccb8), `operator` aside (it holds
/// everything).
const OLD_BUILTINS: &[(&str, &[&str])] = &[
    (
        "admin",
        &[
            "audit:read",
            "incidents:read",
            "incidents:write",
            "org:manage",
            "org:read",
            "risks:read",
            "risks:write",
        ],
    ),
    (
        "editor",
        &[
            "incidents:read",
            "incidents:write",
            "org:read",
            "risks:read",
            "risks:write",
        ],
    ),
    ("viewer", &["incidents:read", "org:read", "risks:read"]),
    ("risk-viewer", &["risks:read"]),
    ("risk-editor", &["risks:read", "risks:write"]),
    ("incident-viewer", &["incidents:read"]),
    ("incident-editor", &["incidents:read", "incidents:write"]),
];

async fn scalar(s: &TestServer, sql: &str) -> i64 {
    let q = sqlx::AssertSqlSafe(sql.to_owned());
    match &s.db {
        Db::Sqlite(p) => sqlx::query_scalar::<_, i64>(q).fetch_one(&p.write).await,
        Db::Postgres(p) => sqlx::query_scalar::<_, i64>(q).fetch_one(p).await,
    }
    .expect("sql")
}

async fn exec(s: &TestServer, sql: &str) {
    let q = sqlx::AssertSqlSafe(sql.to_owned());
    match &s.db {
        Db::Sqlite(p) => sqlx::query(q).execute(&p.write).await.map(|_| ()),
        Db::Postgres(p) => sqlx::query(q).execute(p).await.map(|_| ()),
    }
    .expect("sql");
}

/// Every role the default org sees, with its permissions (sorted).
async fn role_table(s: &TestServer) -> BTreeMap<String, Vec<String>> {
    let (_, op) = s.caller(&["operator"]).await;
    let (st, list) = s.api("GET", "/api/v1/roles", &op, None).await;
    assert_eq!(st, 200, "{list}");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let mut p: Vec<String> = r["permissions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect();
            p.sort();
            (r["id"].as_str().unwrap_or_default().to_owned(), p)
        })
        .collect()
}

fn sorted_scope(t: &Value) -> Vec<String> {
    let mut v: Vec<String> = t["scope"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

fn owned(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| (*s).to_owned()).collect()
}

async fn metadata_scopes(s: &TestServer) -> Vec<String> {
    let m = s
        .get_json(&s.url("/.well-known/oauth-authorization-server"))
        .await;
    let mut v: Vec<String> = m["scopes_supported"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    v.sort();
    v
}

/// Without a catalog, warden knows the admin plane and nothing else: no
/// product role, permission or scope, and none can be granted.
async fn a_fresh_install_is_neutral(b: Backend) {
    let s = TestServer::start_with(b, &[("role_catalog", "")]).await;
    let roles = role_table(&s).await;
    let ids: Vec<&str> = roles.keys().map(String::as_str).collect();
    assert_eq!(ids, ["admin", "operator", "viewer"], "{roles:?}");
    assert_eq!(
        roles["admin"],
        owned(&["audit:read", "org:manage", "org:read"])
    );
    assert_eq!(roles["viewer"], owned(&["org:read"]));
    assert_eq!(
        metadata_scopes(&s).await,
        owned(&["audit:read", "org:manage", "org:read", "platform:manage"])
    );
    for table in ["catalog_permissions", "role_additions", "global_roles"] {
        let n = scalar(&s, &format!("SELECT COUNT(*) FROM {table}")).await;
        assert_eq!(n, 0, "{table}");
    }
    let (_, admin) = s.caller(&["admin"]).await;
    let (st, p) = s
        .api(
            "POST",
            "/api/v1/service-accounts",
            &admin,
            Some(json!({"name": "old habits", "roles": ["risk-editor"]})),
        )
        .await;
    assert_eq!(st, 422, "{p}");
    let (st, p) = s
        .api(
            "POST",
            "/api/v1/roles",
            &admin,
            Some(json!({"id": "reader", "permissions": ["risks:read"]})),
        )
        .await;
    assert_eq!(st, 422, "{p}");
    // A viewer's token for the default audience carries the admin plane's
    // read permission only.
    let v = s.create_account(&["viewer"]).await;
    assert_eq!(
        sorted_scope(&s.token_ok(&v, &[]).await),
        owned(&["org:read"])
    );
}

/// With examples/catalogs/risk-platform.toml loaded, every role holds
/// exactly what the built-ins held, and tokens carry it.
async fn the_example_catalog_is_the_old_built_ins(b: Backend) {
    let s = TestServer::start(b).await;
    let roles = role_table(&s).await;
    for (id, perms) in OLD_BUILTINS {
        assert_eq!(roles.get(*id), Some(&owned(perms)), "{id}: {roles:?}");
    }
    for (id, perms) in OLD_BUILTINS.iter().filter(|(id, _)| *id != "admin") {
        let a = s.create_account(&[id]).await;
        assert_eq!(
            sorted_scope(&s.token_ok(&a, &[]).await),
            owned(perms),
            "{id}"
        );
    }
    let scopes = metadata_scopes(&s).await;
    for p in [
        "risks:read",
        "risks:write",
        "incidents:read",
        "incidents:write",
    ] {
        assert!(scopes.iter().any(|s| s == p), "{p}: {scopes:?}");
    }
}

/// A database from before neutral built-ins (its accounts naming
/// `risk-editor`, `editor`, `viewer`; an org role holding `risks:read`)
/// keeps every role and grant on upgrade, with no catalog loaded.
async fn an_old_database_keeps_every_role_and_grant(b: Backend) {
    let s = TestServer::start(b).await;
    let mut accounts = Vec::new();
    for (id, _) in OLD_BUILTINS {
        accounts.push((id.to_string(), s.create_account(&[id]).await));
    }
    s.role("risk-reporter", &["risks:read", "org:read"]).await;
    accounts.push((
        "risk-reporter".into(),
        s.create_account(&["risk-reporter"]).await,
    ));
    let mut before = BTreeMap::new();
    for (id, a) in &accounts {
        before.insert(id.clone(), sorted_scope(&s.token_ok(a, &[]).await));
    }
    // Back to the state of a database migrated by the last release: no
    // catalog tables, no global roles (the risk roles were built in), the
    // default org created at 0.
    for sql in [
        "DELETE FROM global_roles",
        "DROP TABLE catalog_permissions",
        "DROP TABLE role_additions",
        "DELETE FROM _sqlx_migrations WHERE version = 16",
        "UPDATE orgs SET created_at = 0 WHERE id = 'default'",
    ] {
        exec(&s, sql).await;
    }
    let url = s.db_url.clone();
    let dir = s.stop().await;
    let s = TestServer::start_on(b, dir, &url, &[("role_catalog", "")]).await;
    let roles = role_table(&s).await;
    for (id, perms) in OLD_BUILTINS {
        assert_eq!(roles.get(*id), Some(&owned(perms)), "{id}: {roles:?}");
    }
    for (id, a) in &accounts {
        let now = sorted_scope(&s.token_ok(a, &[]).await);
        assert_eq!(Some(&now), before.get(id), "{id}");
    }
    // The default org has a real creation time now.
    let created = scalar(&s, "SELECT created_at FROM orgs WHERE id = 'default'").await;
    assert!(created > 1_700_000_000, "{created}");
    // Loading the example catalog on top changes nothing.
    let url = s.db_url.clone();
    let dir = s.stop().await;
    let s = TestServer::start_on(b, dir, &url, &[]).await;
    assert_eq!(role_table(&s).await, roles);
}

/// Applying a catalog creates, then brings roles to the file's definition
/// (holders follow), never writes twice, and refuses a file it cannot
/// apply with one line naming the file and the line.
async fn a_catalog_is_applied_once_and_follows_the_file(b: Backend) {
    let files = tempfile::tempdir().expect("tempdir");
    let path = files.path().join("billing.toml");
    let v1 = r#"
[[permissions]]
name = "invoices:read"
description = "Read invoices"

[[permissions]]
name = "invoices:write"

[[roles]]
id = "billing-clerk"
description = "Reads and writes invoices"
permissions = ["invoices:read", "invoices:write"]

[additions]
viewer = ["invoices:read"]
"#;
    std::fs::write(&path, v1).expect("write");
    let shown = path.display().to_string();
    let s = TestServer::start_with(b, &[("role_catalog", &shown)]).await;
    let clerk = s.create_account(&["billing-clerk"]).await;
    let t = s.token_ok(&clerk, &[]).await;
    assert_eq!(
        sorted_scope(&t),
        owned(&["invoices:read", "invoices:write"])
    );
    let viewer = s.create_account(&["viewer"]).await;
    let t = s.token_ok(&viewer, &[]).await;
    assert_eq!(sorted_scope(&t), owned(&["invoices:read", "org:read"]));
    let events = "SELECT COUNT(*) FROM audit_events WHERE actor_id LIKE 'catalog:%billing.toml'";
    let n = scalar(&s, events).await;
    assert_eq!(n, 4, "two permissions, a role, an addition");
    // The same file again: nothing is written.
    let url = s.db_url.clone();
    let dir = s.stop().await;
    let s = TestServer::start_on(b, dir, &url, &[("role_catalog", &shown)]).await;
    assert_eq!(scalar(&s, events).await, n);
    // The file changes: the role follows, and its holder with it.
    std::fs::write(&path, v1.replace(r#", "invoices:write"]"#, "]")).expect("write");
    let url = s.db_url.clone();
    let dir = s.stop().await;
    let s = TestServer::start_on(b, dir, &url, &[("role_catalog", &shown)]).await;
    let t = s.token_ok(&clerk, &[]).await;
    assert_eq!(sorted_scope(&t), owned(&["invoices:read"]));
    assert!(scalar(&s, events).await > n);

    // A file it cannot apply: `warden migrate` says why in one line and
    // fails; nothing of it is written.
    let keys = s.dir.path().join("keys");
    for (bad, says) in [
        ("[[roles]]\nid = \"x\"\npermisions = []\n", "line 3"),
        (
            "[[roles]]\nid = \"admin\"\npermissions = [\"org:read\"]\n",
            "admin",
        ),
        (
            "[[roles]]\nid = \"ops\"\npermissions = [\"platform:manage\"]\n",
            "platform:manage",
        ),
        (
            "[[roles]]\nid = \"ghost\"\npermissions = [\"nothing:here\"]\n",
            "nothing:here",
        ),
    ] {
        let bad_path = files.path().join("bad.toml");
        std::fs::write(&bad_path, bad).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("migrate")
            .env("WARDEN_DATABASE_URL", &url)
            .env("WARDEN_KEYS_DIR", &keys)
            .env("WARDEN_ROLE_CATALOG", &bad_path)
            .output()
            .expect("run warden");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: {err}");
        let line = err
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default();
        assert!(line.contains("bad.toml") && line.contains(says), "{err}");
        assert_eq!(err.matches("error:").count(), 1, "{err}");
    }
    let roles = role_table(&s).await;
    assert!(!roles.contains_key("x") && !roles.contains_key("ghost"));
    assert!(!roles.contains_key("ops"), "{roles:?}");
}

/// Replicas starting together on one database each apply the catalog;
/// however their writes interleave, both start and the roles are the
/// file's, once.
async fn replicas_starting_together_apply_it_once(b: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = crate::harness::fresh_database(b, &dir).await;
    // Migrated first (migrating itself is PostgreSQL's to serialize: one
    // SQLite file serves one warden), with no catalog yet.
    Db::connect(&url)
        .await
        .expect("db")
        .migrate()
        .await
        .expect("migrate");
    for _ in 0..3 {
        let (d1, d2) = (
            tempfile::tempdir().expect("d1"),
            tempfile::tempdir().expect("d2"),
        );
        let (s1, s2) = tokio::join!(
            TestServer::start_on(b, d1, &url, &[]),
            TestServer::start_on(b, d2, &url, &[])
        );
        assert_eq!(role_table(&s1).await, role_table(&s2).await);
        s1.stop().await;
        s2.stop().await;
    }
    let created = "SELECT COUNT(*) FROM audit_events WHERE action = 'role.created'";
    let s = TestServer::start_on(b, tempfile::tempdir().expect("d"), &url, &[]).await;
    assert_eq!(
        scalar(&s, created).await,
        5,
        "each catalog role created once"
    );
}

/// No tenant can stop a catalog: an org's own role with a catalog role's
/// id leaves that one role out (logged) and the rest applies; a catalog
/// that cannot be applied stops `serve` and `migrate` but not the
/// break-glass commands, which warn and go on.
async fn a_tenant_cannot_block_a_catalog_and_break_glass_always_works(b: Backend) {
    let files = tempfile::tempdir().expect("tempdir");
    let path = files.path().join("billing.toml");
    std::fs::write(
        &path,
        "[[permissions]]\nname = \"invoices:read\"\n\n\
         [[roles]]\nid = \"billing-clerk\"\npermissions = [\"invoices:read\"]\n\n\
         [[roles]]\nid = \"billing-auditor\"\npermissions = [\"invoices:read\"]\n",
    )
    .expect("write");
    let s = TestServer::start_with(b, &[("role_catalog", "")]).await;
    // An org admin made a role of that id first.
    s.role("billing-clerk", &["org:read"]).await;
    let url = s.db_url.clone();
    let dir = s.stop().await;
    let shown = path.display().to_string();
    let s = TestServer::start_on(b, dir, &url, &[("role_catalog", &shown)]).await;
    let roles = role_table(&s).await;
    assert_eq!(
        roles.get("billing-clerk"),
        Some(&owned(&["org:read"])),
        "the org's own"
    );
    assert_eq!(
        roles.get("billing-auditor"),
        Some(&owned(&["invoices:read"]))
    );
    // A catalog that cannot be applied: migrate fails, disable works.
    let keys = s.dir.path().join("keys");
    let a = s.create_account(&["viewer"]).await;
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .env("WARDEN_DATABASE_URL", &url)
            .env("WARDEN_KEYS_DIR", &keys)
            .env("WARDEN_ROLE_CATALOG", files.path().join("missing.toml"))
            .output()
            .expect("run warden")
    };
    let o = run(&["migrate"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(&["accounts", "disable", &a.client_id, "--json"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning:") && err.contains("missing.toml"),
        "{err}"
    );
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["status"], "disabled");
}

both_backends!(
    a_fresh_install_is_neutral,
    the_example_catalog_is_the_old_built_ins,
    an_old_database_keeps_every_role_and_grant,
    a_catalog_is_applied_once_and_follows_the_file,
    replicas_starting_together_apply_it_once,
    a_tenant_cannot_block_a_catalog_and_break_glass_always_works,
);
