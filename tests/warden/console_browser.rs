//! The admin console in a real browser (`tests/console/console_test.py`:
//! Debian's Chromium driven by Playwright for Python), against a live
//! warden on each backend: the org admin's first hour by a sign-in link
//! from the CLI, and single sign-on through node-oidc-provider started
//! here as the company's OpenID provider.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::federation::without_node_issuer;
use crate::harness::{Backend, TestServer};

fn script() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/console/console_test.py").to_owned()
}

/// Runs the browser script; its output on failure.
fn run_browser(args: &[&str]) {
    let o = Command::new("python3")
        .arg(script())
        .args(args)
        .output()
        .expect("python3 runs tests/console/console_test.py");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "browser test failed:\n{out}\n{err}");
    assert!(out.contains("flow: ok"), "{out}");
}

async fn first_hour_in_the_browser(b: Backend) {
    let srv = TestServer::start(b).await;
    // An API the operator registered, for the APIs page.
    srv.create_api(
        "https://api.example.com",
        &[("invoices:read", "Read invoices")],
    )
    .await;
    // The link comes from the CLI, on the server's own database.
    let o = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "console",
            "link",
            "--user",
            "alice@example.com",
            "--ttl",
            "10m",
        ])
        .env("WARDEN_DATABASE_URL", &srv.db_url)
        .env("WARDEN_ISSUER", &srv.issuer)
        .env("WARDEN_KEYS_DIR", srv.dir.path().join("keys"))
        .output()
        .expect("warden console link");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let link = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let base = srv.base.clone();
    tokio::task::spawn_blocking(move || run_browser(&["link", &base, &link]))
        .await
        .expect("browser");
}

/// node-oidc-provider as the company's single sign-on.
struct SsoProvider {
    child: Child,
    issuer: String,
}

impl Drop for SsoProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SsoProvider {
    fn start() -> Self {
        let mut child = Command::new("node")
            .arg("sso-provider.mjs")
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/issuers"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("issuer line");
        let v: Value = serde_json::from_str(&line).expect("issuer JSON");
        Self {
            child,
            issuer: v["issuer"].as_str().expect("issuer").to_owned(),
        }
    }
}

async fn single_sign_on_in_the_browser(b: Backend) {
    let idp = SsoProvider::start();
    let srv = TestServer::start_with(
        b,
        &[
            ("federation_allow_http", "true"),
            ("console_oidc_issuer", &idp.issuer),
            ("console_oidc_client_id", "warden-console"),
            ("console_oidc_client_secret", "console-secret"),
            ("console_oidc_scopes", "openid email groups"),
            (
                "console_oidc_rules",
                "groups=acme-admins -> default:admin; groups=staff -> default:viewer",
            ),
        ],
    )
    .await;
    let r = reqwest::Client::new()
        .post(format!("{}/-/client", idp.issuer))
        .body(format!(
            r#"{{"redirect_uri": "{}/console/sso/callback"}}"#,
            srv.issuer
        ))
        .send()
        .await
        .expect("register warden at the provider");
    assert_eq!(r.status(), 200);
    let base = srv.base.clone();
    tokio::task::spawn_blocking(move || run_browser(&["sso", &base]))
        .await
        .expect("browser");
    // The people the provider signed in are the org's members, by subject,
    // with the roles the rule gave.
    let members = srv.db.list_members("default").await.expect("members");
    let ann = members
        .iter()
        .find(|m| m.subject == "admin-ann")
        .expect("ann");
    assert_eq!(ann.roles, vec!["admin"]);
    assert_eq!(ann.email.as_deref(), Some("admin-ann@acme.test"));
    assert!(
        members.iter().all(|m| m.subject != "guest-gus"),
        "refused people are not members"
    );
}

/// Whether the browser tests must be skipped: Chromium or Playwright is
/// missing (a plain `cargo test`). `./scripts/test` installs both; under
/// it a missing one fails instead.
fn without_browser() -> bool {
    let chromium = std::path::Path::new("/usr/bin/chromium").exists();
    let playwright = Command::new("python3")
        .args(["-c", "import playwright"])
        .status()
        .is_ok_and(|s| s.success());
    if chromium && playwright {
        return false;
    }
    assert!(
        std::env::var_os("WARDEN_TEST_REQUIRE_POSTGRES").is_none(),
        "Chromium or Playwright is missing under ./scripts/test"
    );
    eprintln!("skipped: Chromium or Playwright is not installed (./scripts/test installs them)");
    true
}

mod sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Chromium and Playwright; ./scripts/test installs them and runs this"]
    async fn the_first_hour_in_a_real_browser() {
        if without_browser() {
            return;
        }
        first_hour_in_the_browser(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Chromium, Playwright and node-oidc-provider; ./scripts/test installs them"]
    async fn single_sign_on_in_a_real_browser() {
        if without_browser() || without_node_issuer() {
            return;
        }
        single_sign_on_in_the_browser(Backend::Sqlite).await;
    }
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Chromium and Playwright; ./scripts/test installs them and runs this"]
    async fn the_first_hour_in_a_real_browser() {
        if without_browser() || crate::harness::without_postgres() {
            return;
        }
        first_hour_in_the_browser(Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Chromium, Playwright and node-oidc-provider; ./scripts/test installs them"]
    async fn single_sign_on_in_a_real_browser() {
        if without_browser() || without_node_issuer() || crate::harness::without_postgres() {
            return;
        }
        single_sign_on_in_the_browser(Backend::Postgres).await;
    }
}
