//! Stored roles (issue 15): an org's custom roles are edited and deleted
//! under the grant rules; the operator's global roles are visible in every
//! org; a role change holds at the next request.
use serde_json::{Value, json};

use crate::harness::{Backend, RISK_PLATFORM_ROLES, TestServer, account_from, both_backends};

const BILLING: &str = "https://billing.example";

fn at(t: &Value) -> String {
    t["access_token"].as_str().unwrap_or_default().to_owned()
}

async fn custom_roles_are_edited_and_deleted(b: Backend) {
    let s = TestServer::start(b).await;
    let api = s
        .create_api(BILLING, &[("billing:read", ""), ("billing:write", "")])
        .await;
    let (_, root) = s.caller(&["admin"]).await;
    let role = json!({"id": "billing", "permissions": ["billing:read", "billing:write"]});
    assert_eq!(
        s.api("POST", "/api/v1/roles", &root, Some(role)).await.0,
        201
    );
    let (st, acct) = s
        .api(
            "POST",
            "/api/v1/service-accounts",
            &root,
            Some(json!({"name": "sync", "roles": ["billing"]})),
        )
        .await;
    assert_eq!(st, 201, "{acct}");
    let sync = account_from(&acct);
    let t = s.token_ok(&sync, &[("resource", BILLING)]).await;
    assert_eq!(t["scope"], "billing:read billing:write");

    // Narrowed: the token already issued loses the permission at once.
    let (st, r) = s
        .api(
            "PATCH",
            "/api/v1/roles/billing",
            &root,
            Some(json!({"permissions": ["billing:read"], "description": "read only"})),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["permissions"], json!(["billing:read"]));
    assert_eq!(r["description"], "read only");
    assert_eq!(
        s.introspect(&api, &at(&t), None).await["scope"],
        "billing:read"
    );
    let narrow = s.token_ok(&sync, &[("resource", BILLING)]).await;
    assert_eq!(narrow["scope"], "billing:read");
    let (st, r) = s.api("GET", "/api/v1/roles/billing", &root, None).await;
    assert_eq!((st, r["global"].clone()), (200, json!(false)), "{r}");
    // Widened again: a token issued while it was narrow stays narrow; a
    // new one carries the permission.
    let back = json!({"permissions": ["billing:read", "billing:write"]});
    assert_eq!(
        s.api("PATCH", "/api/v1/roles/billing", &root, Some(back))
            .await
            .0,
        200
    );
    assert_eq!(
        s.introspect(&api, &at(&narrow), None).await["scope"],
        "billing:read"
    );
    let t2 = s.token_ok(&sync, &[("resource", BILLING)]).await;
    assert_eq!(t2["scope"], "billing:read billing:write");

    // Bad edits change nothing.
    for (body, status) in [
        (json!({"permissions": ["billing:delete"]}), 422),
        (json!({"permissions": []}), 422),
        (json!({"colour": "red"}), 400),
        (json!(["read only", ["org:read"]]), 400),
    ] {
        let (st, p) = s
            .api("PATCH", "/api/v1/roles/billing", &root, Some(body.clone()))
            .await;
        assert_eq!(st, status, "{body}: {p}");
    }
    for (m, path) in [
        ("PATCH", "/api/v1/roles/admin"),
        ("DELETE", "/api/v1/roles/viewer"),
    ] {
        let body = (m == "PATCH").then(|| json!({"description": "x"}));
        assert_eq!(s.api(m, path, &root, body).await.0, 409, "{m} {path}");
    }
    assert_eq!(
        s.api("DELETE", "/api/v1/roles/nothing", &root, None)
            .await
            .0,
        404
    );

    // Deleting a held role is refused; once no one holds it, it goes.
    let (st, p) = s.api("DELETE", "/api/v1/roles/billing", &root, None).await;
    assert_eq!(st, 409, "{p}");
    let path = format!(
        "/api/v1/service-accounts/{}",
        acct["id"].as_str().unwrap_or("")
    );
    let (st, _) = s
        .api("PATCH", &path, &root, Some(json!({"roles": ["viewer"]})))
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        s.api("DELETE", "/api/v1/roles/billing", &root, None)
            .await
            .0,
        204
    );
    assert_eq!(
        s.api("GET", "/api/v1/roles/billing", &root, None).await.0,
        404
    );
    let (_, log) = s
        .api("GET", "/api/v1/audit-events?target=billing", &root, None)
        .await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in ["role.created", "role.updated", "role.deleted"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

/// Editing a role is granting: the caller holds what it grants before and
/// after, and cannot edit its own way out of `org:manage`.
async fn role_edits_follow_the_grant_rules(b: Backend) {
    let s = TestServer::start(b).await;
    s.role("manager", &["org:read", "org:manage", "risks:read"])
        .await;
    s.role("writer", &["incidents:write"]).await;
    let (_, admin) = s.caller(&["admin"]).await;
    let (_, mgr) = s.caller(&["manager"]).await;
    let cases = [
        // Adding a permission the caller lacks.
        (
            "manager",
            json!({"permissions": ["org:read", "org:manage", "incidents:write"]}),
        ),
        // Removing one it lacks from others.
        ("writer", json!({"permissions": ["risks:read"]})),
    ];
    for (id, body) in cases {
        let path = format!("/api/v1/roles/{id}");
        let (st, p) = s.api("PATCH", &path, &mgr, Some(body)).await;
        assert_eq!(st, 403, "{id}: {p}");
    }
    assert_eq!(
        s.api("DELETE", "/api/v1/roles/writer", &mgr, None).await.0,
        403
    );
    // A role it holds in full, but held by an account holding more than it
    // does: changing the role changes that account, so 403 too.
    s.role("reader", &["risks:read"]).await;
    s.create_account(&["reader", "writer"]).await;
    let body = json!({"permissions": ["org:read"]});
    let (st, p) = s
        .api("PATCH", "/api/v1/roles/reader", &mgr, Some(body))
        .await;
    assert_eq!(st, 403, "{p}");
    // Its own role, without org:manage: a lockout, refused.
    let (st, p) = s
        .api(
            "PATCH",
            "/api/v1/roles/manager",
            &mgr,
            Some(json!({"permissions": ["org:read", "risks:read"]})),
        )
        .await;
    assert_eq!(st, 409, "{p}");
    assert!(
        p["detail"].as_str().unwrap_or("").contains("lock you out"),
        "{p}"
    );
    let (_, r) = s.api("GET", "/api/v1/roles/manager", &admin, None).await;
    assert_eq!(
        r["permissions"],
        json!(["org:manage", "org:read", "risks:read"])
    );
    // Within its authority it may.
    let (st, p) = s
        .api(
            "PATCH",
            "/api/v1/roles/manager",
            &mgr,
            Some(json!({"description": "runs the org"})),
        )
        .await;
    assert_eq!(st, 200, "{p}");
}

async fn global_roles_are_visible_in_every_org(b: Backend) {
    let s = TestServer::start(b).await;
    s.create_api(BILLING, &[("billing:read", "")]).await;
    let (_, op) = s.caller(&["operator"]).await;
    for slug in ["acme", "globex"] {
        let body = json!({"slug": slug});
        assert_eq!(s.api("POST", "/api/v1/orgs", &op, Some(body)).await.0, 201);
    }
    let role = json!({"id": "billing-reader", "description": "Reads invoices",
                      "permissions": ["billing:read"]});
    let (st, r) = s
        .api("POST", "/api/v1/global-roles", &op, Some(role.clone()))
        .await;
    assert_eq!(st, 201, "{r}");
    assert_eq!(r["global"], true);
    assert_eq!(
        s.api("POST", "/api/v1/global-roles", &op, Some(role))
            .await
            .0,
        409
    );
    // Every org sees it and grants it.
    let acme = s.create_in_org("acme", &["admin"], &[], None).await;
    let acme_admin = s.admin_token(&acme).await;
    let (_, list) = s.api("GET", "/api/v1/roles", &acme_admin, None).await;
    let global: Vec<&Value> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["global"] == true)
        .filter(|r| !RISK_PLATFORM_ROLES.iter().any(|c| r["id"] == *c))
        .collect();
    assert_eq!(global.len(), 1, "{list}");
    assert_eq!(global[0]["id"], "billing-reader");
    let (st, a) = s
        .api(
            "POST",
            "/api/v1/service-accounts",
            &acme_admin,
            Some(json!({"name": "sync", "roles": ["billing-reader"]})),
        )
        .await;
    assert_eq!(st, 201, "{a}");
    let sync = account_from(&a);
    let t = s.token_ok(&sync, &[("resource", BILLING)]).await;
    assert_eq!(t["scope"], "billing:read");
    // An org admin neither changes it nor shadows it, and the platform
    // endpoints are not theirs.
    let patch = json!({"description": "mine now"});
    let (st, p) = s
        .api(
            "PATCH",
            "/api/v1/roles/billing-reader",
            &acme_admin,
            Some(patch),
        )
        .await;
    assert_eq!(st, 409, "{p}");
    let shadow = json!({"id": "billing-reader", "permissions": ["org:read"]});
    let (st, p) = s
        .api("POST", "/api/v1/roles", &acme_admin, Some(shadow))
        .await;
    assert_eq!(st, 409, "{p}");
    for (m, path) in [
        ("GET", "/api/v1/global-roles"),
        ("DELETE", "/api/v1/global-roles/billing-reader"),
    ] {
        assert_eq!(s.api(m, path, &acme_admin, None).await.0, 403, "{m} {path}");
    }
    // A custom role's id cannot become global.
    let custom = json!({"id": "deployer", "permissions": ["org:read"]});
    let (st, _) = s
        .api("POST", "/api/v1/orgs/globex/roles", &op, Some(custom))
        .await;
    assert_eq!(st, 201);
    let g = json!({"id": "deployer", "permissions": ["org:read"]});
    assert_eq!(
        s.api("POST", "/api/v1/global-roles", &op, Some(g)).await.0,
        409
    );

    // A global role holding an org's only manager keeps org:manage.
    let gm = json!({"id": "gm", "permissions": ["org:manage", "org:read"]});
    assert_eq!(
        s.api("POST", "/api/v1/global-roles", &op, Some(gm)).await.0,
        201
    );
    s.create_in_org("globex", &["gm"], &[], None).await;
    let less = json!({"permissions": ["org:read"]});
    let (st, p) = s
        .api("PATCH", "/api/v1/global-roles/gm", &op, Some(less))
        .await;
    assert_eq!(st, 409, "{p}");
    assert!(p["detail"].as_str().unwrap_or("").contains("globex"), "{p}");

    // Edited: every org's holders follow at once.
    let path = "/api/v1/global-roles/billing-reader";
    let narrow = json!({"permissions": ["risks:read"]});
    let (st, r) = s.api("PATCH", path, &op, Some(narrow)).await;
    assert_eq!(st, 200, "{r}");
    let t = s.token_ok(&sync, &[]).await;
    assert_eq!(t["scope"], "risks:read");
    // Deleted only once no account holds it.
    assert_eq!(s.api("DELETE", path, &op, None).await.0, 409);
    let acct = format!(
        "/api/v1/service-accounts/{}",
        a["id"].as_str().unwrap_or("")
    );
    let viewer = json!({"roles": ["viewer"]});
    assert_eq!(
        s.api("PATCH", &acct, &acme_admin, Some(viewer)).await.0,
        200
    );
    assert_eq!(s.api("DELETE", path, &op, None).await.0, 204);
    assert_eq!(s.api("GET", path, &op, None).await.0, 404);
}

/// An org admin cannot read or touch another org's roles through either
/// path form.
async fn roles_stay_in_their_org(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, op) = s.caller(&["operator"]).await;
    let body = json!({"slug": "globex"});
    assert_eq!(s.api("POST", "/api/v1/orgs", &op, Some(body)).await.0, 201);
    let theirs = json!({"id": "theirs", "permissions": ["org:read"]});
    let (st, _) = s
        .api("POST", "/api/v1/orgs/globex/roles", &op, Some(theirs))
        .await;
    assert_eq!(st, 201);
    let (_, admin) = s.caller(&["admin"]).await;
    for (m, path) in [
        ("GET", "/api/v1/roles/theirs"),
        ("PATCH", "/api/v1/roles/theirs"),
        ("DELETE", "/api/v1/roles/theirs"),
        ("GET", "/api/v1/orgs/globex/roles/theirs"),
        ("PATCH", "/api/v1/orgs/globex/roles/theirs"),
        ("DELETE", "/api/v1/orgs/globex/roles/theirs"),
    ] {
        let body = (m == "PATCH").then(|| json!({"description": "x"}));
        let (st, p) = s.api(m, path, &admin, body).await;
        assert_eq!(st, 404, "{m} {path}: {p}");
    }
    let (st, r) = s
        .api("GET", "/api/v1/orgs/globex/roles/theirs", &op, None)
        .await;
    assert_eq!(st, 200, "{r}");
    // The same id in another org is another role.
    let mine = json!({"id": "theirs", "permissions": ["risks:read"]});
    assert_eq!(
        s.api("POST", "/api/v1/roles", &admin, Some(mine)).await.0,
        201
    );
}

/// A deleted resource server frees its audience; the new registration
/// accepts none of the old one's tokens or refresh tokens.
async fn a_reregistered_audience_starts_clean(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, op) = s.caller(&["operator"]).await;
    let old = s.create_api(BILLING, &[("billing:read", "")]).await;
    let a = s.create_account(&["admin"]).await;
    let t = s.token_ok(&a, &[("resource", BILLING)]).await;
    let refresh = t["refresh_token"].as_str().unwrap_or_default().to_owned();
    assert!(s.is_active(&old, &at(&t), None).await);
    let path = format!("/api/v1/resource-servers/{}", old.id);
    assert_eq!(s.api("DELETE", &path, &op, None).await.0, 200);
    let new = s.create_api(BILLING, &[("billing:read", "")]).await;
    assert_ne!(new.id, old.id);
    assert!(
        !s.is_active(&new, &at(&t), None).await,
        "an old access token"
    );
    let r = s.refresh(&a, &refresh).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap_or_default();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    // Registered again within the second of the deletion, it takes tokens
    // from the next second on (it cannot tell older ones apart): until
    // then the token endpoint says to retry, rather than issue a token the
    // API would refuse.
    let r = s.token(&a, &[("resource", BILLING)]).await;
    if r.status() == 503 {
        assert_eq!(r.headers()["retry-after"], "1");
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    } else {
        assert_eq!(r.status(), 200);
    }
    let fresh = s.token_ok(&a, &[("resource", BILLING)]).await;
    assert!(s.is_active(&new, &at(&fresh), None).await);
    // Its key finds the live registration; the old one stays readable.
    let (_, by_aud) = s
        .api(
            "GET",
            "/api/v1/resource-servers/https%3A%2F%2Fbilling.example",
            &op,
            None,
        )
        .await;
    assert_eq!(by_aud["id"], new.id.as_str());
    let (st, gone) = s.api("GET", &path, &op, None).await;
    assert_eq!(st, 200);
    assert!(gone["deleted_at"].is_string(), "{gone}");
}

/// A role deleted while an account is being given it: one of the two
/// loses, never both win (no account names a role that does not exist).
async fn a_role_deleted_while_granted(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, root) = s.caller(&["admin"]).await;
    for i in 0..12 {
        let id = format!("r{i}");
        let body = json!({"id": id, "permissions": ["org:read"]});
        assert_eq!(
            s.api("POST", "/api/v1/roles", &root, Some(body)).await.0,
            201
        );
        let path = format!("/api/v1/roles/{id}");
        let grant = json!({"name": "race", "roles": [id]});
        let (del, add) = tokio::join!(
            s.api("DELETE", &path, &root, None),
            s.api("POST", "/api/v1/service-accounts", &root, Some(grant)),
        );
        assert!(!(del.0 == 204 && add.0 == 201), "both won: {del:?} {add:?}");
        assert!(del.0 == 204 || add.0 == 201, "{del:?} {add:?}");
    }
}

both_backends!(
    a_role_deleted_while_granted,
    custom_roles_are_edited_and_deleted,
    role_edits_follow_the_grant_rules,
    global_roles_are_visible_in_every_org,
    roles_stay_in_their_org,
    a_reregistered_audience_starts_clean
);
