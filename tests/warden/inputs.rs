//! Issue 30's input findings, on both backends: sign-in links can be
//! listed and revoked before use (API and CLI), people's names refuse
//! hidden characters as account names do, allowlists are capped, allowed
//! resources are https, http or urn, permission declarations refuse
//! unknown fields, and a literal loopback or link-local issuer is refused
//! at registration.
use serde_json::{Value, json};

use crate::console::{link, redeem};
use crate::harness::{Backend, TestServer, both_backends};

async fn links_are_listed_and_revoked_before_use(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.caller(&["admin"]).await;
    let token = link(&s, "default", "dana@example.com", &["viewer"]).await;
    let used = link(&s, "default", "erin@example.com", &["viewer"]).await;
    assert_eq!(redeem(&s, &used).await.0, 204);
    let (st, list) = s.api("GET", "/api/v1/console-links", &admin, None).await;
    assert_eq!(st, 200, "{list}");
    let items = list["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "only the unused link: {list}");
    assert_eq!(items[0]["subject"], "link:dana@example.com");
    assert_eq!(items[0]["roles"], json!(["viewer"]));
    let id = items[0]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(id.len(), 16);
    assert!(!token.contains(&id), "the id is not part of the link");
    // A viewer may not see or revoke links.
    let (_, viewer) = s.caller(&["viewer"]).await;
    let path = format!("/api/v1/console-links/{id}");
    assert_eq!(s.api("DELETE", &path, &viewer, None).await.0, 403);
    assert_eq!(s.api("DELETE", &path, &admin, None).await.0, 204);
    assert_eq!(s.api("DELETE", &path, &admin, None).await.0, 404);
    assert_ne!(
        redeem(&s, &token).await.0,
        204,
        "a revoked link signs nobody in"
    );
    let events =
        s.db.audit_for_target("link:dana@example.com")
            .await
            .expect("audit");
    assert!(
        events
            .iter()
            .any(|e| e.event.action == "console.link_revoked")
    );
    // The CLI: list as JSON, revoke by id; an unknown id is exit 2.
    let dir = tempfile::tempdir().expect("dir");
    let keys = dir.path().join("keys");
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .env("WARDEN_DATABASE_URL", &s.db_url)
            .env("WARDEN_KEYS_DIR", &keys)
            .output()
            .expect("run warden")
    };
    let _fresh = link(&s, "default", "fay", &["viewer"]).await;
    let out = cli(&["console", "links", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).expect("json");
    let id = listed[0]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(listed[0]["subject"], "link:fay");
    assert!(cli(&["console", "revoke", &id]).status.success());
    let out = cli(&["console", "revoke", &id]);
    assert_eq!(out.status.code(), Some(2));
}

async fn hidden_characters_and_oversized_inputs_are_refused(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.caller(&["admin"]).await;
    // A link's name: bidi override, zero-width space.
    for name in ["eve\u{202E}moc.elpmaxe", "e\u{200B}ve"] {
        let made = warden::manage::console::create_link(
            &s.db,
            "default",
            name,
            &["viewer".to_owned()],
            600,
            warden::now_unix(),
        )
        .await;
        assert!(made.is_err(), "{name:?}");
    }
    // Allowlists are capped.
    let many: Vec<String> = (0..101).map(|i| format!("10.0.{i}.0/24")).collect();
    let body =
        json!({"type": "credential", "name": "wide", "roles": ["viewer"], "allowed_ips": many});
    let (st, p) = s
        .api("POST", "/api/v1/service-accounts", &admin, Some(body))
        .await;
    assert_eq!(st, 422, "{p}");
    let fine: Vec<String> = (0..100).map(|i| format!("10.0.{i}.0/24")).collect();
    let body =
        json!({"type": "credential", "name": "wide", "roles": ["viewer"], "allowed_ips": fine});
    assert_eq!(
        s.api("POST", "/api/v1/service-accounts", &admin, Some(body))
            .await
            .0,
        201
    );
    // Allowed resources name APIs: https, http or urn.
    for bad in [
        "javascript:alert(1)",
        "data:text/html,hi",
        "file:///etc/passwd",
    ] {
        let body = json!({"type": "credential", "name": "x", "roles": ["viewer"],
            "allowed_resources": [bad]});
        let (st, p) = s
            .api("POST", "/api/v1/service-accounts", &admin, Some(body))
            .await;
        assert_eq!(st, 422, "{bad}: {p}");
    }
    // A permission declaration with a misspelt field.
    let (_, op) = s.caller(&["operator"]).await;
    let api = json!({"name": "Billing", "audience": "https://billing.example.com",
        "permissions": [{"name": "billing:read", "descripton": "typo"}]});
    let (st, p) = s
        .api("POST", "/api/v1/resource-servers", &op, Some(api))
        .await;
    assert_eq!(st, 400, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("descripton"),
        "{p}"
    );
    // A literal loopback or link-local issuer, at registration.
    let a = s.create_account(&["viewer"]).await;
    let path = format!("/api/v1/service-accounts/{}/credentials", a.id);
    for issuer in [
        "https://127.0.0.1",
        "https://[::1]",
        "https://169.254.169.254",
        "https://[fe80::1]",
    ] {
        let body = json!({"type": "federated", "issuer": issuer, "subject": "x",
            "audience": s.issuer});
        let (st, p) = s.api("POST", &path, &admin, Some(body)).await;
        assert_eq!(st, 422, "{issuer}: {p}");
    }
}

both_backends!(
    links_are_listed_and_revoked_before_use,
    hidden_characters_and_oversized_inputs_are_refused,
);
