//! The admin plane under the security findings of issue 30: every caller
//! is re-checked inside its write's transaction (a request held in flight
//! while its person is removed, demoted or signed out, or its account's org
//! disabled or fenced, writes nothing), org changes are never lost to a
//! concurrent one, people and accounts alike leave an org a managing
//! account, and a change is judged on what its target is now, not on what
//! it was when read.
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warden::domain::account::Status;
use warden::manage::Actor;

use crate::console::{Person, call, sign_in};
use crate::harness::{Backend, TestServer, both_backends};

/// A request whose head and all but the last byte of its body are sent:
/// authenticated, waiting for the rest.
struct Held {
    stream: tokio::net::TcpStream,
    last: u8,
}

impl Held {
    async fn start(
        s: &TestServer,
        method: &str,
        path: &str,
        auth: &[(&str, &str)],
        body: Value,
    ) -> Self {
        let addr = s.base.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let body = body.to_string().into_bytes();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in auth {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("head");
        stream
            .write_all(&body[..body.len() - 1])
            .await
            .expect("body");
        // Let the server authenticate it and start reading the body.
        tokio::time::sleep(Duration::from_millis(600)).await;
        Self {
            stream,
            last: body[body.len() - 1],
        }
    }

    /// Sends the last byte; the answer's status.
    async fn finish(mut self) -> (u16, String) {
        self.stream
            .write_all(&[self.last])
            .await
            .expect("last byte");
        let mut out = String::new();
        self.stream.read_to_string(&mut out).await.expect("answer");
        let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        (status, out)
    }
}

fn person_auth(p: &Person) -> Vec<(&str, &str)> {
    vec![
        ("Cookie", p.cookie.as_str()),
        ("X-CSRF-Token", p.csrf.as_str()),
    ]
}

async fn account_names(s: &TestServer, org: &str) -> Vec<String> {
    s.db.query_accounts(&warden::db::accounts::AccountQuery {
        org: org.into(),
        limit: 200,
        ..Default::default()
    })
    .await
    .expect("list")
    .into_iter()
    .map(|a| a.name)
    .collect()
}

/// A person whose access ends while their request is in flight: removed,
/// demoted, signed out, or their org disabled. Each answers 409 and
/// writes nothing (before, the removed person's request created an admin
/// account and kept its secret).
async fn a_person_whose_access_ends_mid_request_writes_nothing(b: Backend) {
    let s = TestServer::start(b).await;
    let bob = sign_in(&s, "bob", &["admin"]).await;
    let create = |name: &str| json!({"type": "credential", "name": name, "roles": ["admin"]});
    let scenarios = ["removed", "demoted", "signed out", "org disabled"];
    for (i, what) in scenarios.iter().enumerate() {
        let alice = sign_in(&s, "alice", &["admin"]).await;
        let name = format!("made while {what}");
        let held = Held::start(
            &s,
            "POST",
            "/api/v1/service-accounts",
            &person_auth(&alice),
            create(&name),
        )
        .await;
        match i {
            0 => {
                let (st, p) =
                    call(&s, &bob, "DELETE", "/api/v1/members/link:alice", None, true).await;
                assert_eq!(st, 204, "{p}");
            }
            1 => {
                let body = json!({"roles": ["viewer"]});
                let (st, p) = call(
                    &s,
                    &bob,
                    "PATCH",
                    "/api/v1/members/link:alice",
                    Some(body),
                    true,
                )
                .await;
                assert_eq!(st, 200, "{p}");
            }
            2 => {
                let r = s
                    .http
                    .delete(s.url("/console/session"))
                    .header("cookie", &alice.cookie)
                    .header("x-csrf-token", &alice.csrf)
                    .send()
                    .await
                    .expect("sign out");
                assert!(r.status().is_success(), "{}", r.status());
            }
            _ => {
                warden::manage::orgs::set_status(
                    &s.db,
                    "default",
                    Status::Disabled,
                    &Actor::operator(),
                    warden::now_unix(),
                )
                .await
                .expect("disable");
            }
        }
        let (st, answer) = held.finish().await;
        assert_eq!(st, 409, "{what}: {answer}");
        assert!(answer.contains("in flight"), "{what}: {answer}");
        assert!(
            !account_names(&s, "default").await.contains(&name),
            "{what}: an account was written"
        );
        if i == 3 {
            warden::manage::orgs::set_status(
                &s.db,
                "default",
                Status::Active,
                &Actor::operator(),
                warden::now_unix(),
            )
            .await
            .expect("enable");
        }
    }
}

/// A service account whose org is disabled, or fenced by an allowlist
/// that leaves it out, while its request is in flight: 409, nothing
/// written (before, 201).
async fn an_account_whose_org_is_fenced_mid_request_writes_nothing(b: Backend) {
    let s = TestServer::start(b).await;
    let op = Actor::operator();
    warden::manage::orgs::create(&s.db, "acme", None, &op, warden::now_unix())
        .await
        .expect("org");
    let admin = s.create_in_org("acme", &["admin"], &[], None).await;
    let token = s.admin_token(&admin).await;
    let bearer = format!("Bearer {token}");
    for (i, what) in ["org disabled", "org allowlist"].iter().enumerate() {
        let name = format!("made while {what}");
        let body = json!({"type": "credential", "name": name, "roles": ["viewer"]});
        let held = Held::start(
            &s,
            "POST",
            "/api/v1/service-accounts",
            &[("Authorization", bearer.as_str())],
            body,
        )
        .await;
        let now = warden::now_unix();
        if i == 0 {
            warden::manage::orgs::set_status(&s.db, "acme", Status::Disabled, &op, now)
                .await
                .expect("disable");
        } else {
            let fence = vec!["203.0.113.0/24".to_owned()];
            warden::manage::orgs::update(&s.db, "acme", None, Some(&fence), None, &op, now)
                .await
                .expect("fence");
        }
        let (st, answer) = held.finish().await;
        assert_eq!(st, 409, "{what}: {answer}");
        assert!(!account_names(&s, "acme").await.contains(&name), "{what}");
        warden::manage::orgs::set_status(&s.db, "acme", Status::Active, &op, now)
            .await
            .expect("enable");
        warden::manage::orgs::update(&s.db, "acme", None, Some(&[]), None, &op, now)
            .await
            .expect("unfence");
    }
}

/// A rename racing a disable (or an allowlist) never writes the old
/// status back: each change writes only its own fields, on the version it
/// read. Before, 24 of 40 rounds lost an acknowledged disable. `If-Match`
/// with a stale ETag is 412.
async fn org_changes_are_never_lost(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, op) = s.caller(&["operator"]).await;
    let (st, _) = s
        .api("POST", "/api/v1/orgs", &op, Some(json!({"slug": "acme"})))
        .await;
    assert_eq!(st, 201);
    for round in 0..20 {
        let rename = s.api(
            "PATCH",
            "/api/v1/orgs/acme",
            &op,
            Some(json!({"name": format!("Acme {round}")})),
        );
        let disable = s.api("POST", "/api/v1/orgs/acme/disable", &op, None);
        let fence = s.api(
            "PATCH",
            "/api/v1/orgs/acme",
            &op,
            Some(json!({"allowed_ips": ["192.0.2.0/24"]})),
        );
        let (a, b2, c) = tokio::join!(rename, disable, fence);
        assert_eq!((a.0, b2.0, c.0), (200, 200, 200), "{a:?} {b2:?} {c:?}");
        let org = s.db.find_org("acme").await.expect("db").expect("org");
        assert_eq!(
            org.status,
            Status::Disabled,
            "round {round}: the disable was lost"
        );
        assert_eq!(
            org.allowed_ips.entries(),
            vec!["192.0.2.0/24"],
            "round {round}"
        );
        assert_eq!(org.name, format!("Acme {round}"), "round {round}");
        let (st, _) = s.api("POST", "/api/v1/orgs/acme/enable", &op, None).await;
        assert_eq!(st, 200);
        let (st, _) = s
            .api(
                "PATCH",
                "/api/v1/orgs/acme",
                &op,
                Some(json!({"allowed_ips": []})),
            )
            .await;
        assert_eq!(st, 200);
    }
    // ETag and If-Match.
    let r = s
        .http
        .get(s.url("/api/v1/orgs/acme"))
        .bearer_auth(&op)
        .send()
        .await
        .expect("get");
    let etag = r.headers()["etag"].to_str().expect("etag").to_owned();
    let patch = |tag: String| {
        s.http
            .patch(s.url("/api/v1/orgs/acme"))
            .bearer_auth(&op)
            .header("if-match", tag)
            .json(&json!({"name": "Acme Corp"}))
            .send()
    };
    let r = patch(etag.clone()).await.expect("patch");
    assert_eq!(r.status(), 200);
    assert_ne!(r.headers()["etag"].to_str().unwrap_or_default(), etag);
    assert_eq!(
        patch(etag).await.expect("patch").status(),
        412,
        "a stale ETag"
    );
}

/// The org keeps an active account holding `org:manage`, whoever asks: a
/// console admin cannot disable or delete the last one (before, a person
/// could). With a second one, either may go.
async fn people_leave_the_org_a_managing_account(b: Backend) {
    let s = TestServer::start(b).await;
    let alice = sign_in(&s, "alice", &["admin"]).await;
    let only = s.create_account(&["admin"]).await;
    for (method, path) in [
        (
            "POST",
            format!("/api/v1/service-accounts/{}/disable", only.id),
        ),
        ("DELETE", format!("/api/v1/service-accounts/{}", only.id)),
        ("PATCH", format!("/api/v1/service-accounts/{}", only.id)),
    ] {
        let body = (method == "PATCH").then(|| json!({"roles": ["viewer"]}));
        let (st, p) = call(&s, &alice, method, &path, body, true).await;
        assert_eq!(st, 409, "{method} {path}: {p}");
    }
    let second = s.create_account(&["admin"]).await;
    let path = format!("/api/v1/service-accounts/{}/disable", only.id);
    let (st, p) = call(&s, &alice, "POST", &path, None, true).await;
    assert_eq!(st, 200, "{p}");
    let path = format!("/api/v1/service-accounts/{}", second.id);
    let (st, p) = call(&s, &alice, "DELETE", &path, None, true).await;
    assert_eq!(st, 409, "now the last: {p}");
}

/// The CLI's role edits keep the rule too (the account commands are the
/// break-glass way back, not role edits): taking `org:manage` out of the
/// role the org's only managing account holds is refused, exit 2.
async fn the_clis_role_edits_leave_the_org_a_managing_account(b: Backend) {
    let s = TestServer::start(b).await;
    let op = Actor::operator();
    let now = warden::now_unix();
    warden::manage::orgs::create(&s.db, "acme", None, &op, now)
        .await
        .expect("org");
    let perms = vec!["org:manage".to_owned(), "org:read".to_owned()];
    warden::manage::roles::create(&s.db, Some("acme"), "mgr", "", &perms, &op, now)
        .await
        .expect("role");
    let _only = s.create_in_org("acme", &["mgr"], &[], None).await;
    let dir = tempfile::tempdir().expect("dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "roles",
            "update",
            "mgr",
            "--org",
            "acme",
            "--remove-permission",
            "org:manage",
        ])
        .env("WARDEN_DATABASE_URL", &s.db_url)
        .env("WARDEN_KEYS_DIR", dir.path().join("keys"))
        .output()
        .expect("run warden");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("org:manage"), "{err}");
}

/// A change is judged on its target as it is when written: a manager
/// without `admin` changing a person at the moment an admin makes that
/// person an admin never replaces the admin role, and an edit of a custom
/// role racing another never drops what the other added. Before, the
/// weaker change was judged on what it read and landed after the target
/// became stronger.
async fn changes_are_judged_on_what_they_replace(b: Backend) {
    let s = TestServer::start(b).await;
    let alice = sign_in(&s, "alice", &["admin"]).await;
    let mgr = json!({"id": "mgr", "permissions": ["org:manage", "org:read"]});
    let (st, p) = call(&s, &alice, "POST", "/api/v1/roles", Some(mgr), true).await;
    assert_eq!(st, 201, "{p}");
    let bob = sign_in(&s, "bob", &["mgr"]).await;
    let _carol = sign_in(&s, "carol", &["viewer"]).await;
    let carol = "/api/v1/members/link:carol";
    for round in 0..15 {
        let promote = call(
            &s,
            &alice,
            "PATCH",
            carol,
            Some(json!({"roles": ["admin"]})),
            true,
        );
        let demote = call(
            &s,
            &bob,
            "PATCH",
            carol,
            Some(json!({"roles": ["viewer", "mgr"]})),
            true,
        );
        let (_, _) = tokio::join!(promote, demote);
        let (_, people) = call(&s, &alice, "GET", "/api/v1/members", None, false).await;
        let now: Vec<Value> = people["items"]
            .as_array()
            .or(people.as_array())
            .into_iter()
            .flatten()
            .filter(|m| m["subject"] == "link:carol")
            .map(|m| m["roles"].clone())
            .collect();
        assert_eq!(
            now,
            vec![json!(["admin"])],
            "round {round}: a weaker change replaced admin"
        );
        let (st, p) = call(
            &s,
            &alice,
            "PATCH",
            carol,
            Some(json!({"roles": ["viewer"]})),
            true,
        )
        .await;
        assert_eq!(st, 200, "{p}");
    }
    // Two edits of one custom role at once: neither is lost silently.
    let ops = json!({"id": "ops", "permissions": ["org:read"]});
    let (st, p) = call(&s, &alice, "POST", "/api/v1/roles", Some(ops), true).await;
    assert_eq!(st, 201, "{p}");
    for round in 0..10 {
        let a = call(
            &s,
            &alice,
            "PATCH",
            "/api/v1/roles/ops",
            Some(json!({"permissions": ["org:read", "audit:read"]})),
            true,
        );
        let b2 = call(
            &s,
            &bob,
            "PATCH",
            "/api/v1/roles/ops",
            Some(json!({"description": format!("round {round}")})),
            true,
        );
        let (a, b2) = tokio::join!(a, b2);
        assert_eq!(a.0, 200, "{a:?}");
        let (_, role) = call(&s, &alice, "GET", "/api/v1/roles", None, false).await;
        let perms: Vec<Value> = role["items"]
            .as_array()
            .or(role.as_array())
            .into_iter()
            .flatten()
            .filter(|r| r["id"] == "ops")
            .map(|r| r["permissions"].clone())
            .collect();
        assert_eq!(
            perms,
            vec![json!(["audit:read", "org:read"])],
            "round {round}: {b2:?}"
        );
        let (st, p) = call(
            &s,
            &alice,
            "PATCH",
            "/api/v1/roles/ops",
            Some(json!({"permissions": ["org:read"]})),
            true,
        )
        .await;
        assert_eq!(st, 200, "{p}");
    }
}

both_backends!(
    a_person_whose_access_ends_mid_request_writes_nothing,
    an_account_whose_org_is_fenced_mid_request_writes_nothing,
    org_changes_are_never_lost,
    people_leave_the_org_a_managing_account,
    the_clis_role_edits_leave_the_org_a_managing_account,
    changes_are_judged_on_what_they_replace,
);
