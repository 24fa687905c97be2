//! The last-admin rule against the other ways to strand an org: editing or
//! deleting the custom role its managers hold manage through. And a role a
//! person holds cannot be deleted from under them.
use serde_json::json;

use crate::console::{call, link, redeem, sign_in};
use crate::harness::{Backend, TestServer, both_backends};

const STRANDED: &str = "Cannot remove or deactivate the last admin. Assign the admin role to \
                        another member first. (organization `default` would have no person \
                        holding `org:manage`)";

async fn a_role_change_cannot_strand_the_org(b: Backend) {
    let srv = TestServer::start(b).await;
    let alice = sign_in(&srv, "alice", &["admin"]).await;
    let mgr = json!({"id": "mgr", "description": "Managers",
        "permissions": ["org:manage", "org:read"]});
    let (s, p) = call(&srv, &alice, "POST", "/api/v1/roles", Some(mgr), true).await;
    assert_eq!(s, 201, "{p}");
    let bob = sign_in(&srv, "bob", &["mgr"]).await;
    // Bob manages through `mgr`, so Alice may step down.
    let (s, p) = call(
        &srv,
        &alice,
        "PATCH",
        "/api/v1/members/link:alice",
        Some(json!({"roles": ["viewer"]})),
        true,
    )
    .await;
    assert_eq!(s, 200, "{p}");
    // Bob is now the last: he cannot take `org:manage` out of his role...
    let (s, p) = call(
        &srv,
        &bob,
        "PATCH",
        "/api/v1/roles/mgr",
        Some(json!({"permissions": ["org:read"]})),
        true,
    )
    .await;
    assert_eq!(s, 409, "{p}");
    assert_eq!(p["detail"], STRANDED);
    // ...nor delete it: a person holds it.
    let (s, p) = call(&srv, &bob, "DELETE", "/api/v1/roles/mgr", None, true).await;
    assert_eq!(s, 409, "{p}");
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("person")),
        "{p}"
    );
    // Nothing changed: Bob still manages.
    let (s, p) = call(&srv, &bob, "GET", "/api/v1/roles", None, false).await;
    assert_eq!(s, 200, "{p}");
    let role = p["items"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == "mgr"))
        .cloned()
        .expect("mgr");
    assert_eq!(role["permissions"], json!(["org:manage", "org:read"]));
    // A change that keeps a manager passes: the description, or a
    // permission added.
    let (s, p) = call(
        &srv,
        &bob,
        "PATCH",
        "/api/v1/roles/mgr",
        Some(json!({"description": "Org managers"})),
        true,
    )
    .await;
    assert_eq!(s, 200, "{p}");
    // With Alice an admin again (the operator's doing: Bob holds less
    // than a viewer), the role may lose `org:manage`.
    let (_, op) = srv.caller(&["operator"]).await;
    let (s, p) = srv
        .api(
            "PATCH",
            "/api/v1/orgs/default/members/link:alice",
            &op,
            Some(json!({"roles": ["admin"]})),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    let (s, p) = call(
        &srv,
        &alice,
        "PATCH",
        "/api/v1/roles/mgr",
        Some(json!({"permissions": ["org:read"]})),
        true,
    )
    .await;
    assert_eq!(s, 200, "{p}");
}

/// A link into an org that would refuse the session (disabled, or not
/// admitting the address) is refused before it is spent; the platform's
/// `operator` role is never a person's; admin answers are never cached.
async fn sign_in_refusals_and_caching(b: Backend) {
    let srv = TestServer::start(b).await;
    let (_, op) = srv.caller(&["operator"]).await;
    let roles = vec!["operator".to_owned()];
    let made =
        warden::manage::console::create_link(&srv.db, "default", "eve", &roles, 600, 0).await;
    assert!(made.is_err(), "an operator link");
    let acme = Some(json!({"slug": "acme", "name": "Acme"}));
    assert_eq!(srv.api("POST", "/api/v1/orgs", &op, acme).await.0, 201);
    let token = link(&srv, "acme", "alice", &["admin"]).await;
    let (st, _) = srv
        .api("POST", "/api/v1/orgs/acme/disable", &op, None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(redeem(&srv, &token).await.0, 403, "the org is disabled");
    let (st, _) = srv.api("POST", "/api/v1/orgs/acme/enable", &op, None).await;
    assert_eq!(st, 200);
    let fence = Some(json!({"allowed_ips": ["10.0.0.0/8"]}));
    let (st, _) = srv.api("PATCH", "/api/v1/orgs/acme", &op, fence).await;
    assert_eq!(st, 200);
    assert_eq!(redeem(&srv, &token).await.0, 403, "not from 127.0.0.1");
    let open = Some(json!({"allowed_ips": []}));
    let (st, _) = srv.api("PATCH", "/api/v1/orgs/acme", &op, open).await;
    assert_eq!(st, 200);
    assert_eq!(redeem(&srv, &token).await.0, 204, "still unspent");

    let (_, admin) = srv.caller(&["admin"]).await;
    let r = srv
        .http
        .post(srv.url("/api/v1/service-accounts"))
        .bearer_auth(&admin)
        .json(&json!({"name": "cached?", "roles": ["viewer"]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
}

/// A sign-in link sets the person's roles under the same rules as the
/// Team page: it cannot demote the last admin, nor give a role deleted
/// since the link was made.
async fn a_link_is_held_to_the_people_rules(b: Backend) {
    let srv = TestServer::start(b).await;
    let alice = sign_in(&srv, "alice", &["admin"]).await;
    let demote = link(&srv, "default", "alice", &["viewer"]).await;
    assert_eq!(redeem(&srv, &demote).await.0, 409, "the last admin");
    let (s, p) = call(&srv, &alice, "GET", "/api/v1/members", None, false).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["items"][0]["roles"], json!(["admin"]), "{p}");
    let x4 = json!({"id": "x4", "description": "", "permissions": ["org:read"]});
    let (s, p) = call(&srv, &alice, "POST", "/api/v1/roles", Some(x4), true).await;
    assert_eq!(s, 201, "{p}");
    let eve = link(&srv, "default", "eve", &["x4"]).await;
    let (s, p) = call(&srv, &alice, "DELETE", "/api/v1/roles/x4", None, true).await;
    assert_eq!(s, 204, "{p}");
    assert_eq!(redeem(&srv, &eve).await.0, 409, "a role deleted since");
    let (_, p) = call(&srv, &alice, "GET", "/api/v1/members", None, false).await;
    assert_eq!(p["items"].as_array().map(Vec::len), Some(1), "no eve: {p}");
}

/// A person never holds the platform's powers, whatever the role is
/// called or however the row came to say so.
async fn a_person_never_holds_platform_powers(b: Backend) {
    let srv = TestServer::start(b).await;
    let (_, op) = srv.caller(&["operator"]).await;
    let platops = json!({"id": "platops", "description": "",
        "permissions": ["platform:manage", "org:manage", "org:read"]});
    let (s, p) = srv
        .api("POST", "/api/v1/global-roles", &op, Some(platops))
        .await;
    assert_eq!(s, 201, "{p}");
    let roles = vec!["platops".to_owned()];
    let made =
        warden::manage::console::create_link(&srv.db, "default", "bob", &roles, 600, 0).await;
    assert!(made.is_err(), "a link granting platform:manage");
    let _alice = sign_in(&srv, "alice", &["admin"]).await;
    let bob = sign_in(&srv, "bob", &["viewer"]).await;
    let (s, p) = srv
        .api(
            "PATCH",
            "/api/v1/orgs/default/members/link:bob",
            &op,
            Some(json!({"roles": ["platops"]})),
        )
        .await;
    assert_eq!(s, 422, "{p}");
    // Written around every check (as a row from before this rule was):
    // the session still acts in its org only.
    let ev = warden::db::AuditEvent::new("user", "test", "member.updated", 0);
    let forced = vec!["operator".to_owned(), "platops".to_owned()];
    let read = vec!["viewer".to_owned()];
    let stored = srv
        .db
        .stored_role_permissions("default", &read)
        .await
        .expect("db");
    let target = warden::db::members::MemberTarget {
        org: "default",
        subject: "link:bob",
        read: &read,
        read_permissions: &warden::domain::roles::permissions_of(&read, &stored),
    };
    let changed = srv
        .db
        .change_member(target, Some(&forced), &ev, None)
        .await
        .expect("db");
    assert!(
        matches!(changed, Some(warden::db::write::ChangeOutcome::Done)),
        "{changed:?}"
    );
    let (s, p) = call(&srv, &bob, "GET", "/api/v1/orgs", None, false).await;
    assert_eq!(s, 403, "{p}");
    let (s, p) = call(
        &srv,
        &bob,
        "POST",
        "/api/v1/orgs",
        Some(json!({"slug": "x", "name": "X"})),
        true,
    )
    .await;
    assert_eq!(s, 403, "{p}");
}

both_backends!(
    a_role_change_cannot_strand_the_org,
    sign_in_refusals_and_caching,
    a_link_is_held_to_the_people_rules,
    a_person_never_holds_platform_powers
);
