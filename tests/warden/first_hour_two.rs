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

both_backends!(audience_is_a_synonym_of_resource);

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
