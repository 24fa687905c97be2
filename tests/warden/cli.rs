//! The `warden` binary: account commands, configuration errors, keys.
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::harness::{
    Account, Backend, RISK_PLATFORM_ROLES, TestServer, both_backends, fresh_database,
};

fn warden(url: &str, keys: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .env("WARDEN_DATABASE_URL", url)
        .env("WARDEN_KEYS_DIR", keys)
        .env_remove("WARDEN_LOG")
        .output()
        .expect("run warden")
}

fn json_of(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("stdout is JSON")
}

/// Exit 2 with exactly one line on stderr.
fn assert_usage_error(o: &Output, mentions: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(mentions), "`{mentions}` in: {err}");
}

async fn account_lifecycle_from_the_cli(b: Backend) {
    let s = TestServer::start(b).await;
    let keys = s.dir.path().join("keys");
    let url = s.db_url.clone();
    let created = json_of(&warden(
        &url,
        &keys,
        &[
            "accounts",
            "create",
            "--name",
            "first admin",
            "--role",
            "admin",
            "--json",
        ],
    ));
    let (id, client_id) = (
        created["id"].as_str().unwrap_or(""),
        created["client_id"].as_str().unwrap_or(""),
    );
    assert!(client_id.starts_with("arm_sa_"));
    assert!(
        created["client_secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("arm_sk_"))
    );
    assert_eq!(created["roles"], serde_json::json!(["admin"]));
    assert_eq!(created["expires_at"], Value::Null);

    // The account works against the running server.
    let a = Account {
        id: id.into(),
        client_id: client_id.into(),
        secret: created["client_secret"].as_str().unwrap_or("").into(),
    };
    s.token_ok(&a, &[]).await;

    let shown = json_of(&warden(
        &url,
        &keys,
        &["accounts", "show", client_id, "--json"],
    ));
    assert_eq!(shown["id"], id);
    assert!(
        shown.get("client_secret").is_none(),
        "show never prints a secret"
    );

    assert_eq!(
        json_of(&warden(&url, &keys, &["accounts", "disable", id, "--json"]))["status"],
        "disabled"
    );
    assert_eq!(s.token(&a, &[]).await.status(), 403);
    let o = warden(&url, &keys, &["accounts", "reset-secret", id, "--json"]);
    assert_usage_error(&o, "enable");
    assert_eq!(
        json_of(&warden(
            &url,
            &keys,
            &["accounts", "enable", client_id, "--json"]
        ))["status"],
        "active"
    );

    let reset = json_of(&warden(
        &url,
        &keys,
        &["accounts", "reset-secret", client_id, "--json"],
    ));
    let new_secret = reset["client_secret"].as_str().unwrap_or("");
    assert!(new_secret.starts_with("arm_sk_") && new_secret != a.secret);
    assert_eq!(reset["client_id"], client_id);
    assert_eq!(s.token(&a, &[]).await.status(), 401);
    let a2 = Account {
        secret: new_secret.into(),
        ..a.clone()
    };
    s.token_ok(&a2, &[]).await;

    // On a terminal (a pseudo-terminal made by util-linux `script`) the
    // operator is asked first, and anything but yes keeps the account.
    {
        use std::io::Write;
        let cmd = format!("{} accounts delete {id}", env!("CARGO_BIN_EXE_warden"));
        let mut child = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("WARDEN_DATABASE_URL", &url)
            .env("WARDEN_KEYS_DIR", &keys)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("script (util-linux)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"n\n")
            .expect("answer");
        let o = child.wait_with_output().expect("wait");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("[y/N]"), "asked: {out}");
        assert_eq!(o.status.code(), Some(2), "{out}");
        let still = json_of(&warden(&url, &keys, &["accounts", "show", id, "--json"]));
        assert_eq!(still["status"], "active", "not deleted");
    }
    // A script (no terminal) deletes without being asked, as SPEC's
    // break-glass command always has.
    let deleted = json_of(&warden(&url, &keys, &["accounts", "delete", id, "--json"]));
    assert!(deleted["deleted_at"].is_string());
    assert_eq!(s.token(&a2, &[]).await.status(), 401);
    let listed = json_of(&warden(&url, &keys, &["accounts", "list", "--json"]));
    assert!(
        listed
            .as_array()
            .is_some_and(|l| l.iter().all(|x| x["id"] != id))
    );
    let listed = json_of(&warden(
        &url,
        &keys,
        &["accounts", "list", "--include-deleted", "--json"],
    ));
    assert!(
        listed
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x["id"] == id))
    );
    assert_usage_error(
        &warden(&url, &keys, &["accounts", "enable", id]),
        "deleted account cannot be enabled",
    );

    // Every operator action is in the audit log, attributed, without secrets.
    let events = s.db.audit_for_target(id).await.expect("audit");
    let actions: Vec<&str> = events
        .iter()
        .filter(|e| e.actor_type == "operator")
        .map(|e| e.action.as_str())
        .collect();
    for want in [
        "service_account.created",
        "service_account.disabled",
        "service_account.enabled",
        "service_account.secret_reset",
        "service_account.deleted",
    ] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    for e in &events {
        let details = e.details.to_string();
        assert!(!details.contains(&a.secret) && !details.contains(new_secret));
    }
}

async fn bad_cli_input_is_exit_2_with_one_line(b: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = fresh_database(b, &dir).await;
    let keys = dir.path().join("keys");
    let create = |extra: &[&str]| {
        let mut args = vec!["accounts", "create", "--json"];
        args.extend_from_slice(extra);
        warden(&url, &keys, &args)
    };
    assert_usage_error(
        &create(&["--name", "x", "--role", "no-such-role"]),
        "no-such-role",
    );
    assert_usage_error(
        &create(&["--name", "x", "--role", "viewer", "--expires-in", "7d"]),
        "expires_in",
    );
    assert_usage_error(
        &create(&[
            "--name",
            "x",
            "--role",
            "viewer",
            "--allowed-ips",
            "10.0.0.0/33",
        ]),
        "allowed_ips",
    );
    assert_usage_error(
        &create(&[
            "--name",
            "x",
            "--role",
            "viewer",
            "--allowed-ips",
            "010.1.2.3",
        ]),
        "allowed_ips",
    );
    assert_usage_error(&create(&["--name", "", "--role", "viewer"]), "name");
    assert_usage_error(
        &create(&["--name", "x", "--role", "viewer", "--org", "nowhere"]),
        "nowhere",
    );
    assert_usage_error(&create(&["--role", "viewer"]), "--name");
    assert_usage_error(
        &warden(&url, &keys, &["accounts", "show", "arm_sa_nothere"]),
        "not found",
    );
    assert_usage_error(&warden(&url, &keys, &["orgs", "create", "Bad Slug"]), "org");
    // Nothing was created by any of that.
    assert_eq!(
        json_of(&warden(&url, &keys, &["accounts", "list", "--json"])),
        serde_json::json!([])
    );

    // Organizations.
    let o = warden(&url, &keys, &["orgs", "create", "acme"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_usage_error(
        &warden(&url, &keys, &["orgs", "create", "acme"]),
        "already exists",
    );
    let c = json_of(&create(&[
        "--name",
        "acme ci",
        "--role",
        "viewer",
        "--org",
        "acme",
        "--allowed-ips",
        "10.0.0.0/8,192.168.1.4",
        "--expires-in",
        "90d",
    ]));
    assert_eq!(c["org"], "acme");
    assert_eq!(
        c["allowed_ips"],
        serde_json::json!(["10.0.0.0/8", "192.168.1.4/32"])
    );
    assert!(c["expires_at"].is_string());
}

fn invalid_configuration_names_the_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (var, value) in [
        ("WARDEN_ACCESS_TOKEN_TTL", "soon"),
        ("WARDEN_LISTEN", "localhost"),
        ("WARDEN_DATABASE_URL", "mysql://x"),
        ("WARDEN_TRUSTED_PROXIES", "10.0.0.0/8,nope"),
        ("WARDEN_LOG_FORMAT", "yaml"),
        ("WARDEN_ISSUER", "not a url"),
        ("WARDEN_AUDIT_TOKEN_EVENTS", "some"),
        ("WARDEN_AUDIT_RETENTION", "1h"),
        ("WARDEN_REQUEST_TIMEOUT", "10ms"),
        ("WARDEN_METRICS_LISTEN", "metrics"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["serve"])
            .current_dir(dir.path())
            .env(var, value)
            .output()
            .expect("run");
        assert_usage_error(&o, var);
    }
    // The same keys from a TOML file, named by file and key.
    let file = dir.path().join("warden.toml");
    std::fs::write(&file, "access_token_ttl = \"2 weeks\"\n").expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["--config", file.to_str().unwrap_or(""), "migrate"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_usage_error(&o, "access_token_ttl");
    std::fs::write(&file, "no_such_key = 1\n").expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["--config", file.to_str().unwrap_or(""), "migrate"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_usage_error(&o, "no_such_key");
    // A valid file is used; the environment wins over it.
    let db = dir.path().join("from-file.db");
    std::fs::write(
        &file,
        format!("database_url = \"sqlite://{}\"\n", db.display()),
    )
    .expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["--config", file.to_str().unwrap_or(""), "migrate"])
        .current_dir(dir.path())
        .env_remove("WARDEN_DATABASE_URL")
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(db.exists());
}

#[test]
fn config_errors() {
    invalid_configuration_names_the_variable();
}

#[test]
fn keys_rotate_list_prune() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/w.db", dir.path().display());
    let keys = dir.path().join("keys");
    let list = |k: &std::path::Path| json_of(&warden(&url, k, &["keys", "list", "--json"]));
    let first = list(&keys);
    assert_eq!(first.as_array().map(Vec::len), Some(1));
    assert_eq!(first[0]["state"], "signing");
    let o = warden(&url, &keys, &["keys", "rotate", "--activate-in", "0s"]);
    assert!(o.status.success());
    // Activation is at least a second after the current key's.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let after = list(&keys);
    assert_eq!(after.as_array().map(Vec::len), Some(2));
    let new_kid = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert!(after.as_array().is_some_and(|l| {
        l.iter()
            .any(|k| k["kid"] == new_kid.as_str() && k["state"] == "signing")
    }));
    // The rotation said when the key shows and when it signs.
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains("JWKS within") && said.contains("signing from"),
        "{said}"
    );
    // The old key signed tokens that may still be live: not pruned yet,
    // and the command says why nothing went.
    let o = warden(&url, &keys, &["keys", "prune"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing to prune"));
    assert_eq!(list(&keys).as_array().map(Vec::len), Some(2));
    let states: Vec<String> = list(&keys)
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|k| k["state"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        states
            .iter()
            .all(|s| ["signing", "upcoming", "retired"].contains(&s.as_str()))
    );
    assert_usage_error(
        &warden(&url, &keys, &["keys", "rotate", "--alg", "HS256"]),
        "--alg",
    );
}

async fn resource_servers_from_the_cli(b: Backend) {
    let s = TestServer::start(b).await;
    let keys = s.dir.path().join("keys");
    let url = s.db_url.clone();
    let api = "https://api.example.com";
    let rs = json_of(&warden(
        &url,
        &keys,
        &[
            "resource-servers",
            "create",
            "--name",
            "API",
            "--audience",
            api,
            "--json",
        ],
    ));
    for k in ["id", "client_id", "client_secret", "audience"] {
        assert!(rs[k].is_string(), "{k} in {rs}");
    }
    assert!(
        rs["client_id"]
            .as_str()
            .is_some_and(|c| c.starts_with("arm_rs_"))
    );
    assert_eq!(rs["audience"], api);
    assert_usage_error(
        &warden(
            &url,
            &keys,
            &[
                "resource-servers",
                "create",
                "--name",
                "dup",
                "--audience",
                api,
            ],
        ),
        "already exists",
    );
    assert_usage_error(
        &warden(
            &url,
            &keys,
            &[
                "resource-servers",
                "create",
                "--name",
                "x",
                "--audience",
                "not a uri",
            ],
        ),
        "audience",
    );

    // The new resource server introspects a token requested for it.
    let a = s.create_account(&["viewer"]).await;
    let t = s.token_ok(&a, &[("resource", api)]).await;
    let r = crate::harness::Rs {
        id: rs["id"].as_str().unwrap_or("").into(),
        client_id: rs["client_id"].as_str().unwrap_or("").into(),
        secret: rs["client_secret"].as_str().unwrap_or("").into(),
        audience: api.into(),
    };
    assert!(
        s.is_active(&r, t["access_token"].as_str().unwrap_or(""), None)
            .await
    );

    let shown = json_of(&warden(
        &url,
        &keys,
        &["resource-servers", "show", api, "--json"],
    ));
    assert_eq!(shown["id"], rs["id"]);
    assert!(shown.get("client_secret").is_none());
    let listed = json_of(&warden(
        &url,
        &keys,
        &["resource-servers", "list", "--json"],
    ));
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let id = rs["id"].as_str().unwrap_or("");
    assert_eq!(
        json_of(&warden(
            &url,
            &keys,
            &["resource-servers", "disable", id, "--json"]
        ))["status"],
        "disabled"
    );
    let resp = s
        .post_form(
            "/oauth/introspect",
            &[("token", "x")],
            Some((&r.client_id, &r.secret)),
        )
        .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        json_of(&warden(
            &url,
            &keys,
            &["resource-servers", "enable", id, "--json"]
        ))["status"],
        "active"
    );
    assert!(
        json_of(&warden(
            &url,
            &keys,
            &["resource-servers", "delete", id, "--json"]
        ))["deleted_at"]
            .is_string()
    );
    let resp = s
        .post_form(
            "/oauth/introspect",
            &[("token", "x")],
            Some((&r.client_id, &r.secret)),
        )
        .await;
    assert_eq!(resp.status(), 401);
}

/// The verbs a new user looks for, each reading the same configuration as
/// `serve`: rotate and update accounts, reset and rename resource servers,
/// list and show orgs, list and create roles; unknown names are one line,
/// exit 2; a read never creates a database; each success names the
/// database used.
async fn the_whole_command_set(b: Backend) {
    let s = TestServer::start(b).await;
    let keys = s.dir.path().join("keys");
    let url = s.db_url.clone();
    let w = |args: &[&str]| warden(&url, &keys, args);
    let a = json_of(&w(&[
        "accounts", "create", "--name", "ci", "--role", "viewer", "--json",
    ]));
    let id = a["id"].as_str().unwrap_or("").to_owned();
    let ok = w(&["accounts", "show", &id]);
    assert!(
        String::from_utf8_lossy(&ok.stderr).contains("database:"),
        "the database used is said"
    );
    // rotate-secret: both secrets work.
    let rotated = json_of(&w(&[
        "accounts",
        "rotate-secret",
        "--grace",
        "1h",
        "--json",
        &id,
    ]));
    assert_eq!(rotated["secrets"].as_array().map(Vec::len), Some(2));
    let old = Account {
        id: id.clone(),
        client_id: a["client_id"].as_str().unwrap_or("").into(),
        secret: a["client_secret"].as_str().unwrap_or("").into(),
    };
    let new = Account {
        secret: rotated["client_secret"].as_str().unwrap_or("").into(),
        ..old.clone()
    };
    s.token_ok(&old, &[]).await;
    s.token_ok(&new, &[]).await;
    // update: only what is passed changes.
    let updated = json_of(&w(&[
        "accounts",
        "update",
        &id,
        "--description",
        "nightly",
        "--role",
        "risk-viewer",
        "--allowed-ips",
        "10.0.0.0/8,192.0.2.7",
        "--expires-in",
        "30d",
        "--json",
    ]));
    assert_eq!(updated["name"], "ci");
    assert_eq!(updated["description"], "nightly");
    assert_eq!(updated["roles"], serde_json::json!(["risk-viewer"]));
    assert_eq!(
        updated["allowed_ips"],
        serde_json::json!(["10.0.0.0/8", "192.0.2.7/32"])
    );
    assert!(updated["expires_at"].is_string());
    let cleared = json_of(&w(&[
        "accounts",
        "update",
        &id,
        "--allowed-ips",
        "",
        "--json",
    ]));
    assert_eq!(cleared["allowed_ips"], serde_json::json!([]));
    assert_usage_error(&w(&["accounts", "update", &id, "--role", "nope"]), "nope");
    // Resource servers: reset-secret and rename.
    let rs = json_of(&w(&[
        "resource-servers",
        "create",
        "--name",
        "Billing",
        "--audience",
        "https://billing.example",
        "--json",
    ]));
    let rs_id = rs["client_id"].as_str().unwrap_or("").to_owned();
    let reset = json_of(&w(&["resource-servers", "reset-secret", &rs_id, "--json"]));
    assert!(
        reset["client_secret"]
            .as_str()
            .is_some_and(|x| x != rs["client_secret"])
    );
    // rotate-secret: the reset secret keeps working beside the new one.
    let rotated = json_of(&w(&[
        "resource-servers",
        "rotate-secret",
        "--grace",
        "1h",
        &rs_id,
        "--json",
    ]));
    assert_eq!(
        rotated["secrets"].as_array().map(Vec::len),
        Some(2),
        "{rotated}"
    );
    let introspects = |secret: &str| {
        let secret = secret.to_owned();
        let rs_id = rs_id.clone();
        let s = &s;
        async move {
            s.post_form(
                "/oauth/introspect",
                &[("token", "x")],
                Some((&rs_id, &secret)),
            )
            .await
            .status()
            .as_u16()
        }
    };
    for v in [&reset, &rotated] {
        assert_eq!(
            introspects(v["client_secret"].as_str().unwrap_or("")).await,
            200
        );
    }
    assert_eq!(
        introspects(rs["client_secret"].as_str().unwrap_or("")).await,
        401
    );
    let again = json_of(&w(&["resource-servers", "reset-secret", &rs_id, "--json"]));
    for v in [&reset, &rotated] {
        assert_eq!(
            introspects(v["client_secret"].as_str().unwrap_or("")).await,
            401
        );
    }
    assert_eq!(
        introspects(again["client_secret"].as_str().unwrap_or("")).await,
        200
    );
    let renamed = json_of(&w(&[
        "resource-servers",
        "update",
        "https://billing.example",
        "--name",
        "Billing API",
        "--json",
    ]));
    assert_eq!(renamed["name"], "Billing API");
    let shown = json_of(&w(&["resource-servers", "show", &rs_id, "--json"]));
    assert_eq!(shown["name"], "Billing API");
    // Orgs and roles.
    assert!(
        w(&["orgs", "create", "acme", "--name", "Acme"])
            .status
            .success()
    );
    let orgs = json_of(&w(&["orgs", "list", "--json"]));
    assert!(
        orgs.as_array()
            .is_some_and(|l| l.iter().any(|o| o["slug"] == "acme"))
    );
    let acme = json_of(&w(&["orgs", "show", "acme", "--json"]));
    assert_eq!(acme["name"], "Acme");
    let role = json_of(&w(&[
        "roles",
        "create",
        "auditor",
        "--permission",
        "audit:read",
        "--org",
        "acme",
        "--json",
    ]));
    assert_eq!(role["id"], "auditor");
    let roles = json_of(&w(&["roles", "list", "--org", "acme", "--json"]));
    assert!(
        roles
            .as_array()
            .is_some_and(|l| l.iter().any(|r| r["id"] == "auditor"))
    );
    assert!(
        roles
            .as_array()
            .is_some_and(|l| l.iter().any(|r| r["id"] == "admin"))
    );
    // Without --org: a global role, listed in every org, changed and
    // deleted by the operator.
    let g = json_of(&w(&[
        "roles",
        "create",
        "reader",
        "--permission",
        "org:read",
        "--json",
    ]));
    assert_eq!(g["global"], true);
    let in_acme = json_of(&w(&["roles", "list", "--org", "acme", "--json"]));
    assert!(
        in_acme
            .as_array()
            .is_some_and(|l| l.iter().any(|r| r["id"] == "reader" && r["global"] == true))
    );
    let globals = json_of(&w(&["roles", "list", "--global", "--json"]));
    // The operator's reader beside the catalog's roles, and only globals.
    let ids: Vec<&str> = globals
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["global"] == true)
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(
        ids.len(),
        globals.as_array().map_or(0, Vec::len),
        "{globals}"
    );
    assert!(ids.contains(&"reader"), "{globals}");
    assert_eq!(ids.len(), 1 + RISK_PLATFORM_ROLES.len(), "{globals}");
    let g = json_of(&w(&[
        "roles",
        "update",
        "reader",
        "--add-permission",
        "audit:read",
        "--remove-permission",
        "org:read",
        "--json",
    ]));
    assert_eq!(g["permissions"], serde_json::json!(["audit:read"]));
    let shown = json_of(&w(&["roles", "show", "auditor", "--org", "acme", "--json"]));
    assert_eq!(shown["permissions"], serde_json::json!(["audit:read"]));
    assert_usage_error(
        &w(&["roles", "create", "auditor", "--permission", "org:read"]),
        "acme",
    );
    assert!(w(&["roles", "delete", "reader"]).status.success());
    assert_usage_error(&w(&["roles", "show", "reader"]), "no role");
    assert_usage_error(
        &w(&["roles", "delete", "admin", "--org", "acme"]),
        "built-in",
    );
    // Unknown names: one line, exit 2.
    for (args, says) in [
        (vec!["accounts", "list", "--org", "nope"], "nope"),
        (vec!["roles", "list", "--org", "nope"], "nope"),
        (vec!["orgs", "show", "nope"], "nope"),
        (vec!["accounts", "show", "arm_sa_nope"], "not found"),
        (
            vec!["resource-servers", "show", "https://nope.example"],
            "not found",
        ),
        (
            vec!["accounts", "rotate-secret", "arm_sa_nope"],
            "not found",
        ),
    ] {
        assert_usage_error(&w(&args), says);
    }
    // Help reads on its own for every subcommand.
    for sub in [
        vec!["accounts", "--help"],
        vec!["accounts", "update", "--help"],
        vec!["accounts", "create", "--help"],
        vec!["resource-servers", "update", "--help"],
        vec!["resource-servers", "rotate-secret", "--help"],
        vec!["keys", "rotate", "--help"],
        vec!["orgs", "create", "--help"],
        vec!["--help"],
        vec!["accounts", "rotate-secret", "--help"],
        vec!["resource-servers", "--help"],
        vec!["roles", "create", "--help"],
        vec!["orgs", "--help"],
        vec!["keys", "--help"],
    ] {
        let o = w(&sub);
        assert!(o.status.success(), "{sub:?}");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("Usage:"), "{sub:?}: {text}");
        // Every option has a description: something after the flag and its
        // value placeholder.
        for line in text.lines().filter(|l| l.trim().starts_with('-')) {
            let rest: Vec<&str> = line
                .split_whitespace()
                .skip_while(|w| w.starts_with('-'))
                .skip_while(|w| w.starts_with('<'))
                .collect();
            assert!(
                !rest.is_empty(),
                "{sub:?}: `{}` has no help text",
                line.trim()
            );
        }
        for line in text
            .lines()
            .filter(|l| l.starts_with("  ") && !l.trim().starts_with('-'))
        {
            let l = line.trim();
            if l.starts_with("help") || l.is_empty() || l.starts_with('<') || l.starts_with('[') {
                continue;
            }
            assert!(
                l.split_whitespace().count() > 1,
                "{sub:?}: `{l}` has no help text"
            );
        }
    }
}

/// A command that only reads never creates a database: beside a server
/// started with another configuration, `accounts list` without it says
/// there is no database instead of showing an empty one; an unknown
/// `WARDEN_*` variable is named, with the setting it most likely meant.
#[test]
fn reads_never_create_a_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("elsewhere.db");
    let url = format!("sqlite://{}", path.display());
    let keys = dir.path().join("keys");
    for args in [
        vec!["accounts", "list"],
        vec!["accounts", "show", "arm_sa_x"],
        vec!["orgs", "list"],
        vec!["roles", "list"],
        vec!["resource-servers", "list"],
    ] {
        assert_usage_error(&warden(&url, &keys, &args), "no database at");
        assert!(!path.exists(), "{args:?} created the database");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["migrate"])
        .env("WARDEN_DATABASE_URL", &url)
        .env("WARDEN_KEYS_DIR", &keys)
        .env("WARDEN_ISUER", "http://typo.example")
        .output()
        .expect("run");
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("WARDEN_ISUER is not a warden setting") && err.contains("WARDEN_ISSUER"),
        "{err}"
    );
    assert!(path.exists(), "a command that writes may create it");
}

/// The CLI is the way back from an org's state: `orgs disable|enable`
/// and `orgs update --allowed-ips ""`, each taking effect at once.
async fn org_state_from_the_cli(b: Backend) {
    let s = TestServer::start(b).await;
    let keys = s.dir.path().join("keys");
    let url = s.db_url.clone();
    let a = s.create_account(&["viewer"]).await;
    let o = json_of(&warden(
        &url,
        &keys,
        &["orgs", "disable", "default", "--json"],
    ));
    assert_eq!(o["status"], "disabled");
    assert_eq!(s.token(&a, &[]).await.status(), 403);
    let o = json_of(&warden(
        &url,
        &keys,
        &["orgs", "enable", "default", "--json"],
    ));
    assert_eq!(o["status"], "active");
    let o = json_of(&warden(
        &url,
        &keys,
        &[
            "orgs",
            "update",
            "default",
            "--allowed-ips",
            "10.0.0.0/8",
            "--json",
        ],
    ));
    assert_eq!(o["allowed_ips"], serde_json::json!(["10.0.0.0/8"]));
    assert_eq!(s.token(&a, &[]).await.status(), 403);
    let o = json_of(&warden(
        &url,
        &keys,
        &["orgs", "update", "default", "--allowed-ips", "", "--json"],
    ));
    assert_eq!(o["allowed_ips"], serde_json::json!([]));
    assert_eq!(s.token(&a, &[]).await.status(), 200);
    assert_usage_error(
        &warden(&url, &keys, &["orgs", "disable", "nowhere"]),
        "nowhere",
    );
}

/// An account without a secret and its keys, from the CLI.
async fn credentials_from_the_cli(b: Backend) {
    let s = TestServer::start(b).await;
    let keys = s.dir.path().join("keys");
    let url = s.db_url.clone();
    let w = |args: &[&str]| warden(&url, &keys, args);
    let a = json_of(&w(&[
        "accounts",
        "create",
        "--name",
        "ci",
        "--role",
        "viewer",
        "--no-secret",
        "--json",
    ]));
    assert!(a.get("client_secret").is_none(), "{a}");
    let id = a["id"].as_str().unwrap_or_default();
    let file = s.dir.path().join("ci.jwk");
    let key = crate::keys::new_key("ci-1");
    std::fs::write(&file, key.jwk.to_string()).expect("write jwk");
    let path = file.to_string_lossy().to_string();
    let added = json_of(&w(&[
        "accounts",
        "credentials",
        "add-key",
        id,
        "--jwk",
        &path,
        "--expires-in",
        "90d",
        "--json",
    ]));
    assert_eq!(added["type"], "public_key");
    assert!(added["expires_at"].is_string(), "{added}");
    let list = json_of(&w(&["accounts", "credentials", "list", id, "--json"]));
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let cred = added["id"].as_str().unwrap_or_default();
    assert!(
        w(&["accounts", "credentials", "remove", id, cred])
            .status
            .success()
    );
    assert_usage_error(
        &w(&["accounts", "credentials", "remove", id, cred]),
        "not found",
    );
    let mut private = key.jwk.clone();
    private["d"] = "AAAA".into();
    std::fs::write(&file, private.to_string()).expect("write jwk");
    assert_usage_error(
        &w(&["accounts", "credentials", "add-key", id, "--jwk", &path]),
        "private",
    );

    // A federated trust: a GitHub Actions workflow of one repository,
    // matched by its ids as well as its subject.
    let gh = "https://token.actions.githubusercontent.com";
    let trusted = json_of(&w(&[
        "accounts",
        "credentials",
        "add-federated",
        id,
        "--issuer",
        gh,
        "--subject",
        "repo:acme/app:ref:refs/heads/main",
        "--audience",
        "https://warden.example",
        "--claim",
        "repository_id=1001",
        "--claim",
        "run_attempt:=1",
        "--json",
    ]));
    assert_eq!(trusted["type"], "federated", "{trusted}");
    assert_eq!(
        trusted["claims"],
        json!({"repository_id": "1001", "run_attempt": 1})
    );
    let list = json_of(&w(&["accounts", "credentials", "list", id, "--json"]));
    assert_eq!(list[0]["issuer"], gh, "{list}");
    let published = json_of(&w(&[
        "accounts",
        "credentials",
        "add-key",
        id,
        "--jwks-uri",
        "https://keys.example/jwks.json",
        "--json",
    ]));
    assert_eq!(
        published["jwks_uri"], "https://keys.example/jwks.json",
        "{published}"
    );
    assert_usage_error(
        &w(&[
            "accounts",
            "credentials",
            "add-key",
            id,
            "--jwks-uri",
            "http://keys.example/jwks",
        ]),
        "https",
    );
    for (args, says) in [
        (vec!["--issuer", "http://ci.example"], "https"),
        (vec!["--issuer", gh, "--claim", "sub=x"], "claims"),
        (vec!["--issuer", gh, "--claim", "novalue"], "NAME=VALUE"),
    ] {
        let mut all = vec![
            "accounts",
            "credentials",
            "add-federated",
            id,
            "--subject",
            "s",
            "--audience",
            "a",
        ];
        all.extend(args);
        assert_usage_error(&w(&all), says);
    }
}

both_backends!(
    credentials_from_the_cli,
    org_state_from_the_cli,
    the_whole_command_set,
    account_lifecycle_from_the_cli,
    bad_cli_input_is_exit_2_with_one_line,
    resource_servers_from_the_cli
);
