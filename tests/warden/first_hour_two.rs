//! The first hour, second pass (issue 31): what a newcomer from another
//! product sends, taken as they mean it.
use data_encoding::BASE64URL_NOPAD as B64;
use serde_json::Value;

use crate::harness::{Backend, TestServer, both_backends, expect_error};

const API: &str = "https://api.example.com";

fn aud(token_response: &Value) -> Value {
    let jwt = token_response["access_token"].as_str().expect("token");
    let payload = jwt.split('.').nth(1).expect("payload");
    let claims: Value =
        serde_json::from_slice(&B64.decode(payload.as_bytes()).expect("b64")).expect("json");
    claims["aud"].clone()
}

/// `audience`, as Auth0's clients send it, is `resource` by another name,
/// on client_credentials and refresh alike; two different targets are
/// `invalid_target`.
async fn audience_is_a_synonym_of_resource(b: Backend) {
    let s = TestServer::start(b).await;
    s.create_api(API, &[("billing:read", "Read invoices")])
        .await;
    s.role("billing-reader", &["billing:read"]).await;
    let a = s.create_account(&["billing-reader"]).await;
    let t = s.token_ok(&a, &[("audience", API)]).await;
    assert_eq!(aud(&t), API);
    assert_eq!(t["scope"], "billing:read");
    // Both, naming one resource (in two spellings): fine.
    let both = [("audience", API), ("resource", "https://api.example.com/")];
    assert_eq!(aud(&s.token_ok(&a, &both).await), API);
    // Both, naming two: refused, whichever the account may use.
    let two = [("audience", API), ("resource", s.issuer.as_str())];
    expect_error(s.token(&a, &two).await, 400, "invalid_target").await;
    // A refresh may name its target with `audience` too.
    let rt = t["refresh_token"].as_str().expect("refresh");
    let other = s
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("audience", "https://other.example"),
            ],
            Some((&a.client_id, &a.secret)),
        )
        .await;
    expect_error(other, 400, "invalid_target").await;
    let r = s
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("audience", API),
            ],
            Some((&a.client_id, &a.secret)),
        )
        .await;
    assert_eq!(r.status(), 200);
    // An unknown audience is refused as an unknown resource is.
    expect_error(
        s.token(&a, &[("audience", "https://nope.example")]).await,
        400,
        "invalid_target",
    )
    .await;
}

/// `warden serve --help` names the settings a first run needs, with their
/// variables and defaults (the port above all).
#[test]
fn serve_help_names_the_settings_that_matter() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--help"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for want in [
        "WARDEN_LISTEN",
        "127.0.0.1:8080",
        "WARDEN_ISSUER",
        "WARDEN_DATABASE_URL",
        "WARDEN_KEYS_DIR",
        "docs/configuration.md",
    ] {
        assert!(help.contains(want), "{want}: {help}");
    }
}

/// The admin API's 401 for a valid token of this server requested for
/// another audience says how to ask for the right one (RFC 6750
/// `error_description`); a token that is not one of ours gets no hint.
async fn a_wrong_audience_token_is_told_the_resource_to_ask_for(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["admin"]).await;
    let t = s.token_ok(&a, &[]).await;
    let token = t["access_token"].as_str().unwrap_or_default();
    let r = s
        .http
        .get(s.url("/api/v1/service-accounts"))
        .bearer_auth(token)
        .send()
        .await
        .expect("admin");
    assert_eq!(r.status(), 401);
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let want = format!("resource={}", s.issuer);
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\", error_description=\"")
            && challenge.contains(&want),
        "{challenge}"
    );
    let p: Value = r.json().await.expect("problem");
    assert!(
        p["detail"].as_str().unwrap_or_default().contains(&want),
        "{p}"
    );
    // Not a token of ours: the plain challenge.
    let r = s
        .http
        .get(s.url("/api/v1/service-accounts"))
        .bearer_auth("eyJhbGciOiJFUzI1NiJ9.e30.c2ln")
        .send()
        .await
        .expect("admin");
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer error=\"invalid_token\"")
    );
    // The right one works.
    let t = s.token_ok(&a, &[("resource", &s.issuer)]).await;
    let (st, _) = s
        .api(
            "GET",
            "/api/v1/service-accounts",
            t["access_token"].as_str().unwrap_or_default(),
            None,
        )
        .await;
    assert_eq!(st, 200);
}

/// Introspection's `{"active": false}` says nothing on the wire; at debug
/// the server's log says why (audience, disabled, allowlist, revoked,
/// not ours), for which resource server and account, never the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_introspections_log_their_reason_at_debug() {
    use crate::replicas::{Cluster, introspect, token_ok};
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}/w.db", dir.path().display());
    let mut c = Cluster::on_database(dir, &db, &[("WARDEN_LOG", "info,warden=debug")]);
    let a = c.account("a", "viewer");
    let rs = c.resource_server(API);
    c.start(1).await;
    let http = c.http.clone();
    let r = c.r(0);
    let for_default = token_ok(&http, r, &a, "urn:warden:default").await;
    let for_api = token_ok(&http, r, &a, API).await;
    let t_default = for_default["access_token"].as_str().unwrap_or_default();
    let t_api = for_api["access_token"].as_str().unwrap_or_default();
    let cases: Vec<(&str, Option<&str>, &str)> = vec![
        (t_default, None, "another audience"),
        (
            "eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
            None,
            "not a token of this server",
        ),
    ];
    for (token, ip, _) in &cases {
        assert_eq!(introspect(&http, r, &rs, token, *ip).await["active"], false);
    }
    c.cli(&["accounts", "disable", &a.client_id]);
    assert_eq!(
        introspect(&http, r, &rs, t_api, None).await["active"],
        false
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = std::fs::read_to_string(&c.r(0).log).expect("log");
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("introspection: token inactive"))
        .collect();
    assert_eq!(lines.len(), 3, "{log}");
    for (line, (_, _, why)) in lines.iter().zip(&cases) {
        assert!(line.contains(why) && line.contains(&rs.client_id), "{line}");
    }
    assert!(lines[0].contains(&a.client_id), "{}", lines[0]);
    assert!(
        lines[2].contains("the service account is disabled") && lines[2].contains(&a.client_id),
        "{}",
        lines[2]
    );
    for t in [t_default, t_api] {
        assert!(!log.contains(t), "no token in the log");
    }
}

/// Every CLI command says which database and which issuer it resolved
/// (stderr), and `console link` warns when no warden answers at that
/// issuer, as when a second shell lacks the server's WARDEN_LISTEN.
async fn the_cli_says_which_issuer_and_checks_the_link(b: Backend) {
    let s = TestServer::start(b).await;
    let keys = s.dir.path().join("keys");
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_warden"));
        c.args(args)
            .env("WARDEN_DATABASE_URL", &s.db_url)
            .env("WARDEN_KEYS_DIR", &keys)
            .env_remove("WARDEN_ISSUER")
            .env_remove("WARDEN_LISTEN");
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().expect("run warden");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let link = ["console", "link", "--user", "ops@example.com"];
    // The server's own issuer: no warning.
    let (out, err) = run(&[("WARDEN_ISSUER", &s.issuer)], &link);
    assert!(out.starts_with(&format!("{}/console/login#token=", s.issuer)));
    assert!(!err.contains("warning"), "{err}");
    assert!(
        err.contains(&format!("issuer: {} (from WARDEN_ISSUER)", s.issuer)),
        "{err}"
    );
    // A shell without the server's settings: another port, and a warning.
    let port = crate::replicas::free_port();
    let listen = format!("127.0.0.1:{port}");
    let (_, err) = run(&[("WARDEN_LISTEN", &listen)], &link);
    assert!(
        err.contains(&format!("warning: no warden answers at http://{listen}"))
            && err.contains("refused"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "issuer: http://{listen} (from the listen address, WARDEN_LISTEN)"
        )),
        "{err}"
    );
    // Any command says it, beside the database.
    let (_, err) = run(&[], &["accounts", "list"]);
    assert!(
        err.contains("database: ")
            && err.contains("issuer: http://127.0.0.1:8080 (from the default listen address)"),
        "{err}"
    );
}

/// The CLI's human output as kubectl and gh users expect: lists with a
/// header row and aligned columns, objects as aligned key/value lines,
/// one line for a state change (`--json` unchanged), real creation times.
async fn cli_output_reads_like_kubectl(b: Backend) {
    let s = TestServer::start(b).await;
    let keys = s.dir.path().join("keys");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .env("WARDEN_DATABASE_URL", &s.db_url)
            .env("WARDEN_KEYS_DIR", &keys)
            .output()
            .expect("run warden");
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let json = |args: &[&str]| -> Value { serde_json::from_str(&run(args)).expect("json") };
    let a = json(&[
        "accounts",
        "create",
        "--name",
        "ci-deployer",
        "--role",
        "viewer",
        "--json",
    ]);
    let client_id = a["client_id"].as_str().unwrap_or_default().to_owned();
    // A state change: one line; with --json, the object as before.
    let out = run(&["accounts", "disable", &client_id]);
    assert_eq!(
        out,
        format!("disabled service account ci-deployer ({client_id})\n")
    );
    let out = run(&["accounts", "enable", &client_id]);
    assert_eq!(
        out,
        format!("enabled service account ci-deployer ({client_id})\n")
    );
    let v = json(&["accounts", "disable", &client_id, "--json"]);
    assert_eq!(v["status"], "disabled");
    let rs = json(&[
        "resource-servers",
        "create",
        "--name",
        "Invoices API",
        "--audience",
        API,
        "--permission",
        "invoices:read",
        "--json",
    ]);
    let rs_id = rs["id"].as_str().unwrap_or_default().to_owned();
    let out = run(&["resource-servers", "disable", &rs_id]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with("disabled resource server Invoices API"),
        "{out}"
    );
    run(&["resource-servers", "enable", &rs_id]);
    // Real creation times: the secret's, and the default org's.
    let shown = json(&["resource-servers", "show", &rs_id, "--json"]);
    assert!(shown["secrets"][0]["created_at"].is_string(), "{shown}");
    let org = json(&["orgs", "show", "default", "--json"]);
    let created = org["created_at"].as_str().unwrap_or_default();
    assert!(!created.starts_with("1970"), "{org}");
    // Lists: a header, and every column starting where its header does.
    for (args, header) in [
        (&["resource-servers", "list"][..], "AUDIENCE"),
        (&["keys", "list"][..], "STATE"),
        (&["accounts", "list"][..], "STATUS"),
        (&["orgs", "list"][..], "CREATED"),
        (&["roles", "list"][..], "KIND"),
    ] {
        let out = run(args);
        let mut lines = out.lines();
        let head = lines.next().unwrap_or_default();
        let at = head
            .find(header)
            .unwrap_or_else(|| panic!("{args:?}: {out}"));
        assert!(head.starts_with(|c: char| c.is_ascii_uppercase()), "{out}");
        for l in lines {
            let before = &l[..at.min(l.len())];
            assert!(
                before.ends_with("  ") && !l[at..].starts_with(' '),
                "{args:?}: column {header} misaligned:\n{out}"
            );
        }
    }
    // An object: every value in one column, whatever its key's length.
    let out = run(&["accounts", "show", &client_id]);
    let starts: std::collections::BTreeSet<usize> = out
        .lines()
        .map(|l| {
            l.find("  ")
                .map_or(0, |i| i + l[i..].len() - l[i..].trim_start().len())
        })
        .collect();
    assert_eq!(starts.len(), 1, "{out}");
}

/// A database that cannot be opened is one sentence naming the directory
/// or the host and the cause, said once, from the CLI and from `serve`.
#[test]
fn database_errors_say_where_and_why_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-dir");
    let port = crate::replicas::free_port();
    let cases = [
        (
            format!("sqlite://{}/w.db", missing.display()),
            format!("the directory {} does not exist", missing.display()),
        ),
        (
            format!("postgres://warden@127.0.0.1:{port}/warden"),
            format!("cannot connect to PostgreSQL at 127.0.0.1:{port}: Connection refused"),
        ),
    ];
    for (url, says) in &cases {
        let create = ["accounts", "create", "--name", "a", "--role", "viewer"];
        for args in [&create[..], &["serve"][..]] {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
                .args(args)
                .env("WARDEN_DATABASE_URL", url)
                .env("WARDEN_KEYS_DIR", dir.path().join("keys"))
                .env("WARDEN_LISTEN", "127.0.0.1:0")
                .env("WARDEN_LOG", "error")
                .output()
                .expect("run warden");
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
            let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
            assert_eq!(lines.len(), 1, "{args:?}: {err}");
            assert!(lines[0].contains(says.as_str()), "{args:?}: {err}");
            let cause = says.rsplit(": ").next().unwrap_or(says);
            assert_eq!(err.matches(cause).count(), 1, "said once: {err}");
        }
    }
    assert!(!missing.exists(), "nothing created");
}

/// `GET /api/v1/apis`: what an org needs to ask for a token (name,
/// audience, permissions), never an API's credentials or who made it.
async fn an_org_sees_its_apis_but_not_their_credentials(b: Backend) {
    let s = TestServer::start(b).await;
    let rs = s
        .create_api(API, &[("invoices:read", "Read invoices")])
        .await;
    let (_, viewer) = s.caller(&["viewer"]).await;
    let (st, list) = s.api("GET", "/api/v1/apis", &viewer, None).await;
    assert_eq!(st, 200, "{list}");
    let item = &list["items"][0];
    assert_eq!(item["audience"], API);
    assert_eq!(item["permissions"][0]["name"], "invoices:read");
    assert_eq!(item["status"], "active");
    let text = list.to_string();
    for hidden in [
        rs.client_id.as_str(),
        "arm_sk_",
        "secrets",
        "jwks",
        "created_by",
    ] {
        assert!(!text.contains(hidden), "{hidden} in {list}");
    }
    // A caller with no org permission at all: 403.
    let (_, nobody) = s.caller(&["risk-viewer"]).await;
    assert_eq!(s.api("GET", "/api/v1/apis", &nobody, None).await.0, 403);
}

both_backends!(
    audience_is_a_synonym_of_resource,
    a_wrong_audience_token_is_told_the_resource_to_ask_for,
    the_cli_says_which_issuer_and_checks_the_link,
    cli_output_reads_like_kubectl,
    an_org_sees_its_apis_but_not_their_credentials,
);
