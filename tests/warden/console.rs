//! The admin console's server side (issue 17), on both backends: sign-in
//! links are single-use and short-lived, the session cookie authenticates
//! the admin API only with its CSRF token for changes, a person is bound by
//! the same grant rules as an account and named in the audit log, and the
//! last person able to manage an org cannot lose that. The pages
//! themselves are driven in a real browser by `console_browser.rs`.
use std::process::Command;

use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use serde_json::{Value, json};

use crate::harness::{Backend, TestServer, both_backends};

/// A signed-in person: the session cookie (`name=value`) and CSRF token.
pub struct Person {
    pub cookie: String,
    pub csrf: String,
}

/// A one-time link's token for `user` in `org` with `roles`.
pub async fn link(srv: &TestServer, org: &str, user: &str, roles: &[&str]) -> String {
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    warden::manage::console::create_link(&srv.db, org, user, &roles, 600, warden::now_unix())
        .await
        .expect("link")
}

/// Redeems a link's token: the answer's status and Set-Cookie.
pub async fn redeem(srv: &TestServer, token: &str) -> (u16, Option<String>) {
    let r = srv
        .http
        .post(srv.url("/console/session"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .expect("send");
    let cookie = r
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (r.status().as_u16(), cookie)
}

pub async fn sign_in(srv: &TestServer, user: &str, roles: &[&str]) -> Person {
    let token = link(srv, "default", user, roles).await;
    let (status, set) = redeem(srv, &token).await;
    assert_eq!(status, 204);
    let set = set.expect("Set-Cookie");
    let cookie = set.split(';').next().expect("pair").to_owned();
    let me = session(srv, &cookie).await;
    Person {
        cookie,
        csrf: me["csrf_token"].as_str().expect("csrf").to_owned(),
    }
}

async fn session(srv: &TestServer, cookie: &str) -> Value {
    let r = srv
        .http
        .get(srv.url("/console/session"))
        .header(COOKIE, cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.expect("json");
    assert_eq!(me["signed_in"], true, "{me}");
    me
}

/// Calls the admin API as `p` (with the CSRF token when `csrf`).
pub async fn call(
    srv: &TestServer,
    p: &Person,
    method: &str,
    path: &str,
    body: Option<Value>,
    csrf: bool,
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = srv.http.request(m, srv.url(path)).header(COOKIE, &p.cookie);
    if csrf {
        req = req.header("x-csrf-token", &p.csrf);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("send");
    let status = r.status().as_u16();
    let text = r.text().await.expect("text");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn links_are_single_use_and_short_lived(b: Backend) {
    let srv = TestServer::start(b).await;
    let token = link(&srv, "default", "alice@example.com", &["admin"]).await;
    // Two redemptions at once: exactly one signs in.
    let (a, c) = tokio::join!(redeem(&srv, &token), redeem(&srv, &token));
    let mut statuses = [a.0, c.0];
    statuses.sort();
    assert_eq!(statuses, [204, 400], "one link, one session");
    let cookie = a.1.or(c.1).expect("a cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    // Unknown and expired links sign no one in.
    assert_eq!(redeem(&srv, "not-a-link").await.0, 400);
    let old = link(&srv, "default", "bob", &["viewer"]).await;
    srv.sql(
        "UPDATE console_links SET expires_at = 1 WHERE subject = $1",
        "link:bob",
    )
    .await;
    assert_eq!(redeem(&srv, &old).await.0, 400);
    // A page on another origin cannot sign the browser in.
    let token = link(&srv, "default", "carol", &["viewer"]).await;
    let r = srv
        .http
        .post(srv.url("/console/session"))
        .header(ORIGIN, "https://evil.example")
        .json(&json!({ "token": token }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403);
    assert_eq!(
        redeem(&srv, &token).await.0,
        204,
        "the refused try did not spend it"
    );
    // Only the hash of a link is stored.
    let stored: Vec<(String,)> = warden_rows(&srv, "SELECT id FROM console_links").await;
    assert!(stored.iter().all(|(id,)| id.len() == 64 && *id != token));
}

async fn warden_rows(srv: &TestServer, sql: &'static str) -> Vec<(String,)> {
    match &srv.db {
        warden::db::Db::Sqlite(p) => sqlx::query_as(sql).fetch_all(&p.read).await.expect("rows"),
        warden::db::Db::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await.expect("rows"),
    }
}

async fn the_session_calls_the_admin_api_with_csrf_on_changes(b: Backend) {
    let srv = TestServer::start(b).await;
    let alice = sign_in(&srv, "alice@example.com", &["admin"]).await;
    let me = session(&srv, &alice.cookie).await;
    assert_eq!(me["subject"], "link:alice@example.com");
    assert_eq!(me["org"], "default");
    let (s, list) = call(&srv, &alice, "GET", "/api/v1/service-accounts", None, false).await;
    assert_eq!(s, 200, "{list}");
    let create = json!({"type": "credential", "name": "ci", "roles": ["viewer"]});
    // Without the CSRF token a change is refused and nothing is written.
    let (s, _) = call(
        &srv,
        &alice,
        "POST",
        "/api/v1/service-accounts",
        Some(create.clone()),
        false,
    )
    .await;
    assert_eq!(s, 403);
    let wrong = Person {
        cookie: alice.cookie.clone(),
        csrf: "x".repeat(43),
    };
    let (s, _) = call(
        &srv,
        &wrong,
        "POST",
        "/api/v1/service-accounts",
        Some(create.clone()),
        true,
    )
    .await;
    assert_eq!(s, 403);
    let (_, list) = call(&srv, &alice, "GET", "/api/v1/service-accounts", None, false).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0));
    let (s, made) = call(
        &srv,
        &alice,
        "POST",
        "/api/v1/service-accounts",
        Some(create),
        true,
    )
    .await;
    assert_eq!(s, 201, "{made}");
    assert_eq!(made["created_by"], "user:link:alice@example.com");
    let id = made["id"].as_str().expect("id");
    let (s, _) = call(
        &srv,
        &alice,
        "POST",
        &format!("/api/v1/service-accounts/{id}/disable"),
        None,
        true,
    )
    .await;
    assert_eq!(s, 200);
    // The audit log names the person.
    let (_, log) = call(
        &srv,
        &alice,
        "GET",
        "/api/v1/audit-events?action=service_account.disabled",
        None,
        false,
    )
    .await;
    let ev = &log["items"][0];
    assert_eq!(ev["actor_type"], "user", "{log}");
    assert_eq!(ev["actor_id"], "link:alice@example.com");
    let (_, log) = call(
        &srv,
        &alice,
        "GET",
        "/api/v1/audit-events?action=console.signed_in",
        None,
        false,
    )
    .await;
    assert_eq!(log["items"][0]["details"]["method"], "link", "{log}");
    // A bad cookie is no session; a bearer token still works beside it.
    let nobody = Person {
        cookie: "warden_console=forged".into(),
        csrf: String::new(),
    };
    assert_eq!(
        call(
            &srv,
            &nobody,
            "GET",
            "/api/v1/service-accounts",
            None,
            false
        )
        .await
        .0,
        401
    );
    // Signing out ends the session everywhere (it is in the database).
    let r = srv
        .http
        .delete(srv.url("/console/session"))
        .header(COOKIE, &alice.cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403, "signing out needs the CSRF token too");
    let r = srv
        .http
        .delete(srv.url("/console/session"))
        .header(COOKIE, &alice.cookie)
        .header("x-csrf-token", &alice.csrf)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    assert_eq!(
        call(&srv, &alice, "GET", "/api/v1/service-accounts", None, false)
            .await
            .0,
        401
    );
    let r = srv
        .http
        .get(srv.url("/console/session"))
        .header(COOKIE, &alice.cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"signed_in": false})
    );
}

async fn a_person_is_bound_by_the_grant_rules(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.role("manager", &["org:manage", "org:read"]).await;
    let admin_account = srv.create_account(&["admin"]).await;
    let dave = sign_in(&srv, "dave", &["manager"]).await;
    let (s, p) = call(
        &srv,
        &dave,
        "POST",
        "/api/v1/service-accounts",
        Some(json!({"type": "credential", "name": "x", "roles": ["admin"]})),
        true,
    )
    .await;
    assert_eq!(s, 403, "only an admin grants admin: {p}");
    let (s, p) = call(
        &srv,
        &dave,
        "POST",
        "/api/v1/service-accounts",
        Some(json!({"type": "credential", "name": "x", "roles": ["editor"]})),
        true,
    )
    .await;
    assert_eq!(s, 403, "cannot grant what you do not hold: {p}");
    let (s, _) = call(
        &srv,
        &dave,
        "POST",
        &format!("/api/v1/service-accounts/{}/reset-secret", admin_account.id),
        None,
        true,
    )
    .await;
    assert_eq!(s, 403, "cannot take over an admin account");
    // A viewer may read but not change.
    let erin = sign_in(&srv, "erin", &["viewer"]).await;
    assert_eq!(
        call(&srv, &erin, "GET", "/api/v1/service-accounts", None, false)
            .await
            .0,
        200
    );
    let (s, _) = call(
        &srv,
        &erin,
        "POST",
        "/api/v1/service-accounts",
        Some(json!({"type": "credential", "name": "x", "roles": ["viewer"]})),
        true,
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(
        call(&srv, &erin, "GET", "/api/v1/audit-events", None, false)
            .await
            .0,
        403
    );
    // Another org is not theirs; platform endpoints are not theirs.
    warden::manage::orgs::create(
        &srv.db,
        "other",
        Some("Other"),
        &warden::manage::Actor::operator(),
        warden::now_unix(),
    )
    .await
    .expect("org");
    assert_eq!(
        call(
            &srv,
            &dave,
            "GET",
            "/api/v1/orgs/other/service-accounts",
            None,
            false
        )
        .await
        .0,
        404
    );
    assert_eq!(
        call(&srv, &dave, "GET", "/api/v1/orgs", None, false)
            .await
            .0,
        403
    );
    // A disabled org's people are signed out.
    srv.sql(
        "UPDATE orgs SET status = 'disabled' WHERE id = $1",
        "default",
    )
    .await;
    assert_eq!(
        call(&srv, &erin, "GET", "/api/v1/service-accounts", None, false)
            .await
            .0,
        401
    );
}

async fn the_last_admin_cannot_remove_their_own_admin(b: Backend) {
    let srv = TestServer::start(b).await;
    let alice = sign_in(&srv, "alice", &["admin"]).await;
    let me = "link:alice";
    let (s, p) = call(
        &srv,
        &alice,
        "PATCH",
        &format!("/api/v1/members/{me}"),
        Some(json!({"roles": ["viewer"]})),
        true,
    )
    .await;
    assert_eq!(s, 409, "{p}");
    assert_eq!(
        p["detail"],
        "Cannot remove or deactivate the last admin. Assign the admin role to another member first."
    );
    assert_eq!(
        call(
            &srv,
            &alice,
            "DELETE",
            &format!("/api/v1/members/{me}"),
            None,
            true
        )
        .await
        .0,
        409
    );
    // An admin service account does not count (seed 004): still refused.
    srv.create_account(&["admin"]).await;
    assert_eq!(
        call(
            &srv,
            &alice,
            "DELETE",
            &format!("/api/v1/members/{me}"),
            None,
            true
        )
        .await
        .0,
        409
    );
    // With a second admin person, it can be done; then that one is last.
    let bob = sign_in(&srv, "bob", &["admin"]).await;
    let (s, p) = call(
        &srv,
        &alice,
        "PATCH",
        &format!("/api/v1/members/{me}"),
        Some(json!({"roles": ["viewer"]})),
        true,
    )
    .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["roles"], json!(["viewer"]));
    // Alice's session now acts with her new roles.
    assert_eq!(
        call(&srv, &alice, "GET", "/api/v1/audit-events", None, false)
            .await
            .0,
        403
    );
    let (s, _) = call(&srv, &bob, "DELETE", "/api/v1/members/link:bob", None, true).await;
    assert_eq!(s, 409);
    let (s, list) = call(&srv, &bob, "GET", "/api/v1/members", None, false).await;
    assert_eq!(s, 200);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    // Removing a person ends their sessions; their change is audited.
    assert_eq!(
        call(
            &srv,
            &bob,
            "DELETE",
            &format!("/api/v1/members/{me}"),
            None,
            true
        )
        .await
        .0,
        204
    );
    assert_eq!(
        call(&srv, &alice, "GET", "/api/v1/service-accounts", None, false)
            .await
            .0,
        401
    );
    let (_, log) = call(
        &srv,
        &bob,
        "GET",
        "/api/v1/audit-events?action=member.removed",
        None,
        false,
    )
    .await;
    assert_eq!(log["items"][0]["actor_id"], "link:bob", "{log}");
    assert_eq!(log["items"][0]["target_id"], me, "{log}");
    assert_eq!(
        call(
            &srv,
            &bob,
            "PATCH",
            "/api/v1/members/nobody",
            Some(json!({"roles": ["viewer"]})),
            true
        )
        .await
        .0,
        404
    );
    // The operator reaches the same people through the org-scoped
    // routes, under the same rule.
    let (_, op) = srv.caller(&["operator"]).await;
    let (s, list) = srv
        .api("GET", "/api/v1/orgs/default/members", &op, None)
        .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["items"][0]["subject"], "link:bob", "{list}");
    let (s, p) = srv
        .api(
            "PATCH",
            "/api/v1/orgs/default/members/link:bob",
            &op,
            Some(json!({"roles": ["viewer"]})),
        )
        .await;
    assert_eq!(s, 409, "{p}");
    let (s, p) = srv
        .api("DELETE", "/api/v1/orgs/default/members/nobody", &op, None)
        .await;
    assert_eq!(s, 404, "{p}");
}

async fn the_page_is_served_with_a_strict_policy(b: Backend) {
    let srv = TestServer::start(b).await;
    for path in [
        "/console",
        "/console/login",
        // A trailing slash is sent to the page.
        "/console/",
        "/console/assets/app.js",
        "/console/assets/app.css",
    ] {
        let r = srv.http.get(srv.url(path)).send().await.expect("send");
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .expect("csp");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }
    let html = srv
        .http
        .get(srv.url("/console"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style"
    );
    assert!(
        html.contains("content=\"off\""),
        "single sign-on is off here"
    );
    assert_eq!(
        srv.http
            .get(srv.url("/console/assets/nope.js"))
            .send()
            .await
            .expect("send")
            .status(),
        404
    );
    // No single sign-on configured: its routes say so.
    let r = srv
        .http
        .get(srv.url("/console/sso/start"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404);
}

both_backends!(
    links_are_single_use_and_short_lived,
    the_session_calls_the_admin_api_with_csrf_on_changes,
    a_person_is_bound_by_the_grant_rules,
    the_last_admin_cannot_remove_their_own_admin,
    the_page_is_served_with_a_strict_policy,
);

#[test]
fn console_link_from_the_cli() {
    let dir = tempfile::tempdir().expect("dir");
    let db = format!("sqlite://{}/w.db", dir.path().display());
    let keys = dir.path().join("keys");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .env("WARDEN_DATABASE_URL", &db)
            .env("WARDEN_KEYS_DIR", &keys)
            .env("WARDEN_ISSUER", "https://auth.example.com")
            // (set when refreshing the docs' screenshots; not a setting)
            .env_remove("WARDEN_CONSOLE_SCREENSHOTS")
            .output()
            .expect("run")
    };
    let o = run(&[
        "console",
        "link",
        "--user",
        "ops@example.com",
        "--ttl",
        "15m",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let url = String::from_utf8_lossy(&o.stdout);
    assert!(
        url.starts_with("https://auth.example.com/console/login#token="),
        "{url}"
    );
    // No warden answers there: the link is printed, with a warning.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: no warden answers at https://auth.example.com"),
        "{err}"
    );
    for (args, says) in [
        (&["console", "link", "--org", "nope"][..], "no organization"),
        (
            &["console", "link", "--role", "no-such-role"][..],
            "not a role",
        ),
        (
            &["console", "link", "--role", "operator"][..],
            "the platform's role",
        ),
        (
            &["console", "link", "--ttl", "3d"][..],
            "between 1m and 24h",
        ),
        (&["console", "link", "--ttl", "soon"][..], "duration"),
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(says) && err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}
