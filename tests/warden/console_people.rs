//! The last-admin rule against the other ways to strand an org: editing or
//! deleting the custom role its managers hold manage through. And a role a
//! person holds cannot be deleted from under them.
use serde_json::json;

use crate::console::{call, sign_in};
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

both_backends!(a_role_change_cannot_strand_the_org);
