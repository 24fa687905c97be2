//! The official MCP SDKs against warden (issue 23), as agents run in the
//! wild: an MCP server made with the TypeScript SDK (`McpServer`,
//! `requireBearerAuth`, `mcpAuthMetadataRouter`; `docs/examples/mcp_server.mjs`)
//! serving warden's RFC 9728 document for its API and introspecting every
//! token, and agents made with the TypeScript SDK's and the Python SDK's
//! machine-to-machine providers (`mcp-agent.mjs`, `mcp_agent.py`) that find
//! warden from it and get tokens: a secret (Basic and in the body) and
//! private_key_jwt. The API is registered as a bare origin, which the
//! SDK's metadata router publishes with a trailing slash: the agents ask
//! for that spelling.
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

use crate::federation::without_node_issuer;
use crate::harness::{Account, Backend, TestServer};
use crate::keys::add_key;

const TOOLS: &str = "mcp:tools:call";

fn issuers_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/issuers")
}

/// Whether the SDK tests must be skipped: the npm or PyPI SDK is missing
/// (a plain `cargo test`). Under `./scripts/test`, which installs both, a
/// missing one fails instead.
fn without_sdks() -> bool {
    let python = Command::new("python3")
        .args(["-c", "import mcp.client.auth.extensions.client_credentials"])
        .output()
        .is_ok_and(|o| o.status.success());
    let node = issuers_dir()
        .join("node_modules/@modelcontextprotocol/sdk")
        .exists();
    if python && node {
        return without_node_issuer();
    }
    assert!(
        std::env::var_os("WARDEN_TEST_REQUIRE_POSTGRES").is_none(),
        "the MCP SDKs are missing under ./scripts/test"
    );
    eprintln!("skipped: the MCP SDKs are not installed (./scripts/test installs them)");
    true
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running process and its first stdout line, parsed.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<ChildStdout>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn spawn(cmd: Command) -> Self {
        Self::spawn_with(cmd, true)
    }

    /// `piped`: stdin is a pipe (else the command's own).
    fn spawn_with(mut cmd: Command, piped: bool) -> Self {
        if piped {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd
            .current_dir(issuers_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawns");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let stdin = child.stdin.take();
        Self { child, stdin, out }
    }

    /// The next JSON line (waits for it: the test's timeout bounds this).
    fn line(&mut self) -> Value {
        let mut line = String::new();
        self.out.read_line(&mut line).expect("a line");
        serde_json::from_str(&line)
            .unwrap_or_else(|_| json!({"error": format!("no JSON: {line:?}")}))
    }

    fn proceed(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin");
        stdin
            .write_all(b"go\n")
            .and_then(|_| stdin.flush())
            .expect("write");
    }
}

#[derive(Clone, Copy, Debug)]
enum Sdk {
    TypeScript,
    Python,
}

/// Runs an agent: `method` with `cred` (a secret, or a key) against `url`.
fn agent(
    sdk: Sdk,
    method: &str,
    url: &str,
    issuer: &str,
    id: &str,
    cred: &str,
    calls: u32,
) -> Proc {
    let mut cmd = match sdk {
        Sdk::TypeScript => {
            let mut c = Command::new("node");
            c.arg("mcp-agent.mjs");
            c
        }
        Sdk::Python => {
            let mut c = Command::new("python3");
            c.arg("mcp_agent.py");
            c
        }
    };
    cmd.args([method, url, &calls.to_string()])
        .env("WARDEN_ISSUER", issuer)
        .env("CLIENT_ID", id);
    match method {
        "private-key-jwt" if matches!(sdk, Sdk::TypeScript) => cmd.env("PRIVATE_JWK", cred),
        "private-key-jwt" => cmd.env("PRIVATE_KEY_PEM", cred),
        _ => cmd.env("CLIENT_SECRET", cred),
    };
    Proc::spawn(cmd)
}

/// One agent run of one call, off the runtime; its one line.
async fn run_once(sdk: Sdk, method: &str, url: &str, issuer: &str, id: &str, cred: &str) -> Value {
    let (method, url, issuer, id, cred) = (
        method.to_owned(),
        url.to_owned(),
        issuer.to_owned(),
        id.to_owned(),
        cred.to_owned(),
    );
    tokio::task::spawn_blocking(move || agent(sdk, &method, &url, &issuer, &id, &cred, 1).line())
        .await
        .expect("joined")
}

fn assert_called(v: &Value, who: &Account, what: &str) {
    assert_eq!(
        v["result"]["client_id"],
        who.client_id.as_str(),
        "{what}: {v}"
    );
    let scopes = v["result"]["scopes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(scopes.contains(&json!(TOOLS)), "{what}: {v}");
}

async fn the_official_sdks_use_warden(b: Backend) {
    let s = TestServer::start(b).await;
    let port = free_port();
    let audience = format!("http://127.0.0.1:{port}");
    let api = s
        .create_api(
            &audience,
            &[
                (TOOLS, "Call the server's tools"),
                ("mcp:read", "Read resources"),
            ],
        )
        .await;
    s.role("mcp-agent", &[TOOLS]).await;
    s.role("mcp-reader", &["mcp:read"]).await;
    // The MCP server serves what warden says of its API.
    let (_, op) = s.caller(&["operator"]).await;
    let path = format!(
        "/api/v1/resource-servers/{}/protected-resource-metadata",
        api.id
    );
    let (st, prm) = s.api("GET", &path, &op, None).await;
    assert_eq!(st, 200, "{prm}");
    // The documented example, run as a module from the directory holding
    // the SDK (as a reader's project would).
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/mcp_server.mjs");
    let mut server_cmd = Command::new("node");
    server_cmd
        .arg("--input-type=module")
        .stdin(std::fs::File::open(example).expect("the example"))
        .env("WARDEN_ISSUER", &s.issuer)
        .env("PRM", prm.to_string())
        .env("PORT", port.to_string())
        .env("WARDEN_RS_CLIENT_ID", &api.client_id)
        .env("WARDEN_RS_CLIENT_SECRET", &api.secret)
        .env("REQUIRED_SCOPE", TOOLS);
    let server = tokio::task::spawn_blocking(move || {
        let mut p = Proc::spawn_with(server_cmd, false);
        let first = p.line();
        (p, first)
    })
    .await
    .expect("joined");
    let url = server.1["url"].as_str().expect("MCP server URL").to_owned();
    // What the SDK's router publishes: the bare origin gained a slash.
    let published = s
        .get_json(&format!(
            "http://127.0.0.1:{port}/.well-known/oauth-protected-resource"
        ))
        .await;
    assert_eq!(published["resource"], format!("{audience}/"), "{published}");

    let a = s.create_account(&["mcp-agent"]).await;
    // A key for private_key_jwt: the public half registered on `a`.
    let keys: Value = tokio::task::spawn_blocking(|| {
        let mut c = Command::new("node");
        c.args(["mcp-agent.mjs", "keygen"]);
        Proc::spawn(c).line()
    })
    .await
    .expect("joined");
    let (_, admin) = s.caller(&["admin"]).await;
    let (st, cred) = add_key(&s, &admin, &a, &keys["public"]).await;
    assert_eq!(st, 201, "{cred}");
    for sdk in [Sdk::TypeScript, Sdk::Python] {
        for method in ["secret-basic", "secret-post", "private-key-jwt"] {
            let secret = match (method, sdk) {
                ("private-key-jwt", Sdk::TypeScript) => keys["private"].to_string(),
                ("private-key-jwt", Sdk::Python) => {
                    keys["pem"].as_str().unwrap_or_default().to_owned()
                }
                _ => a.secret.clone(),
            };
            let v = run_once(sdk, method, &url, &s.issuer, &a.client_id, &secret).await;
            assert_called(&v, &a, &format!("{sdk:?} {method}"));
        }
    }

    // An account without the tool's permission is refused.
    let reader = s.create_account(&["mcp-reader"]).await;
    for sdk in [Sdk::TypeScript, Sdk::Python] {
        let v = run_once(
            sdk,
            "secret-basic",
            &url,
            &s.issuer,
            &reader.client_id,
            &reader.secret,
        )
        .await;
        // The MCP server's 403 insufficient_scope (the SDK then asks warden
        // for the scope, which it refuses).
        let error = v["error"].as_str().unwrap_or_default();
        assert!(
            v.get("result").is_none() && (error.contains("scope") || error.contains("403")),
            "{sdk:?}: {v}"
        );
    }

    // Disabling an account stops it at the MCP server at once: the token
    // it holds is no longer active at introspection, and a new one is
    // refused.
    for sdk in [Sdk::TypeScript, Sdk::Python] {
        let b2 = s.create_account(&["mcp-agent"]).await;
        let (u, iss, id, sec) = (
            url.clone(),
            s.issuer.clone(),
            b2.client_id.clone(),
            b2.secret.clone(),
        );
        let (mut p, first) = tokio::task::spawn_blocking(move || {
            let mut p = agent(sdk, "secret-basic", &u, &iss, &id, &sec, 2);
            let first = p.line();
            (p, first)
        })
        .await
        .expect("joined");
        assert_called(&first, &b2, &format!("{sdk:?} before disable"));
        let (st, v) = s
            .api(
                "POST",
                &format!("/api/v1/service-accounts/{}/disable", b2.id),
                &admin,
                None,
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let second = tokio::task::spawn_blocking(move || {
            p.proceed();
            p.line()
        })
        .await
        .expect("joined");
        // Refused by warden when the SDK asked for a new token.
        let error = second["error"].as_str().unwrap_or_default();
        assert!(
            second.get("result").is_none() && error.contains("disabled"),
            "{sdk:?}: {second}"
        );
    }
    drop(server.0);
    s.stop().await;
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs the MCP SDKs (npm and PyPI); ./scripts/test installs them and runs this"]
    async fn the_official_sdks_use_warden() {
        if super::without_sdks() {
            return;
        }
        super::the_official_sdks_use_warden(crate::harness::Backend::Sqlite).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs the MCP SDKs (npm and PyPI); ./scripts/test installs them and runs this"]
    async fn the_official_sdks_use_warden() {
        if super::without_sdks() || crate::harness::without_postgres() {
            return;
        }
        super::the_official_sdks_use_warden(crate::harness::Backend::Postgres).await;
    }
}
