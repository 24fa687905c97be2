//! Your own APIs' permissions (issue 15): a resource server declares the
//! permissions its tokens may carry, and a token's scope depends on its
//! audience.
use serde_json::{Value, json};

use crate::harness::{Backend, TestServer, account_from, both_backends};

const BILLING: &str = "https://billing.example";

fn scope(t: &Value) -> &str {
    t["scope"].as_str().unwrap_or("")
}

async fn tokens_carry_what_their_api_declares(b: Backend) {
    let s = TestServer::start(b).await;
    let api = s
        .create_api(
            BILLING,
            &[
                ("billing:read", "Read invoices"),
                ("billing:write", "Issue refunds"),
            ],
        )
        .await;
    let (_, root) = s.caller(&["admin"]).await;
    // A role may hold a permission an API declares; an unknown one is 422.
    let (st, role) = s
        .api(
            "POST",
            "/api/v1/roles",
            &root,
            Some(json!({"id": "billing-reader", "permissions": ["billing:read"]})),
        )
        .await;
    assert_eq!(st, 201, "{role}");
    let (st, _) = s
        .api(
            "POST",
            "/api/v1/roles",
            &root,
            Some(json!({"id": "x", "permissions": ["billing:delete"]})),
        )
        .await;
    assert_eq!(st, 422);
    let (st, acct) = s
        .api(
            "POST",
            "/api/v1/service-accounts",
            &root,
            Some(json!({"name": "ci", "roles": ["billing-reader", "viewer"]})),
        )
        .await;
    assert_eq!(st, 201, "{acct}");
    let ci = account_from(&acct);

    // For the billing API: exactly what it declares and the account holds.
    let t = s.token_ok(&ci, &[("resource", BILLING)]).await;
    assert_eq!(scope(&t), "billing:read");
    let at = t["access_token"].as_str().unwrap_or("").to_owned();
    let claims = crate::jwt::verify_with_jwks(&s, &at, BILLING).await.1;
    assert_eq!(claims["roles"], json!(["billing-reader"]));
    // Outside that set: invalid_scope, whether held or not.
    for ask in ["billing:write", "risks:read", "viewer"] {
        let r = s.token(&ci, &[("resource", BILLING), ("scope", ask)]).await;
        assert_eq!(r.status(), 400, "{ask}");
        let body: Value = r.json().await.unwrap_or_default();
        assert_eq!(body["error"], "invalid_scope", "{ask}: {body}");
    }
    // Another audience (the default one declares nothing): everything held.
    let d = s.token_ok(&ci, &[]).await;
    assert_eq!(scope(&d), "billing:read incidents:read org:read risks:read");
    // The admin API's audience: its own permissions only.
    let i = s.token_ok(&ci, &[("resource", &s.issuer.clone())]).await;
    assert_eq!(scope(&i), "org:read");
    // An admin holds every permission an API declares.
    let (adm, _) = s.caller(&["admin"]).await;
    let a = s.token_ok(&adm, &[("resource", BILLING)]).await;
    assert_eq!(scope(&a), "billing:read billing:write");

    // Introspection by the API: the live intersection.
    let v = s.introspect(&api, &at, None).await;
    assert_eq!(
        (v["active"].clone(), v["scope"].clone()),
        (json!(true), json!("billing:read"))
    );

    // The API stops declaring billing:read: at once, its tokens carry it
    // no more, and a token for it cannot ask for it.
    warden::manage::resource_servers::change_permissions(
        &s.db,
        &api.id,
        Vec::new(),
        &["billing:read".to_owned()],
        &warden::manage::Actor::operator(),
        warden::now_unix(),
    )
    .await
    .expect("remove");
    let v = s.introspect(&api, &at, None).await;
    assert_eq!(v["scope"], "", "{v}");
    assert_eq!(scope(&s.token_ok(&ci, &[("resource", BILLING)]).await), "");
    let a = s.token_ok(&adm, &[("resource", BILLING)]).await;
    assert_eq!(scope(&a), "billing:write");
    // A refresh token whose permissions the API no longer declares says so.
    let r = s
        .refresh(&ci, t["refresh_token"].as_str().unwrap_or(""))
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap_or_default();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("declares")),
        "{body}"
    );
}

async fn declarations_are_checked(b: Backend) {
    let s = TestServer::start(b).await;
    let operator = warden::manage::Actor::operator();
    let create = |perms: Vec<(&'static str, &'static str)>| {
        let declared = perms
            .into_iter()
            .map(|(name, description)| warden::domain::roles::ApiPermission {
                name: name.to_owned(),
                description: description.to_owned(),
            })
            .collect();
        warden::manage::resource_servers::create(
            &s.db,
            "api",
            BILLING,
            declared,
            &s.issuer,
            &operator,
            warden::now_unix(),
        )
    };
    for bad in [
        vec![("org:manage", "")],
        vec![("platform:manage", "")],
        vec![("Billing:Read", "")],
        vec![("billing read", "")],
        vec![("billing:read", ""), ("billing:read", "again")],
        vec![("billing:read", "line\nbreak")],
    ] {
        let r = create(bad.clone()).await;
        assert!(
            matches!(r, Err(warden::manage::ManageError::Invalid(_))),
            "{bad:?}: {r:?}"
        );
    }
    assert!(s.db.list_resource_servers().await.expect("list").is_empty());
    let (rs, _) = create(vec![("billing:read", "Read invoices")])
        .await
        .expect("a good declaration");
    assert_eq!(rs.permissions.len(), 1);
    // Deleting the API: its permissions no longer exist for new roles.
    warden::manage::resource_servers::delete(
        &s.db,
        &rs.id,
        &warden::manage::Actor::operator(),
        warden::now_unix(),
    )
    .await
    .expect("delete");
    let (_, root) = s.caller(&["admin"]).await;
    let (st, _) = s
        .api(
            "POST",
            "/api/v1/roles",
            &root,
            Some(json!({"id": "late", "permissions": ["billing:read"]})),
        )
        .await;
    assert_eq!(st, 422);
}

/// `allowed_resources` limits which APIs an account gets tokens for
/// (seed 003's "all apps or specific apps"), at once for tokens already
/// issued; the admin API and the default audience are not APIs.
async fn accounts_limited_to_some_apis(b: Backend) {
    let s = TestServer::start(b).await;
    let billing = s.create_api(BILLING, &[("billing:read", "")]).await;
    let other = s.create_resource_server("https://other.example").await;
    let (_, root) = s.caller(&["admin"]).await;
    let (st, a) = s
        .api(
            "POST",
            "/api/v1/service-accounts",
            &root,
            Some(json!({"name": "ci", "roles": ["admin"], "allowed_resources": [BILLING]})),
        )
        .await;
    assert_eq!(st, 201, "{a}");
    assert_eq!(a["allowed_resources"], json!([BILLING]));
    let ci = account_from(&a);
    let t = s.token_ok(&ci, &[("resource", BILLING)]).await;
    let r = s.token(&ci, &[("resource", "https://other.example")]).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap_or_default();
    assert_eq!(body["error"], "invalid_target", "{body}");
    s.token_ok(&ci, &[]).await;
    s.token_ok(&ci, &[("resource", &s.issuer.clone())]).await;
    // Every API again, then limited to the other one: the billing token
    // dies at once.
    let path = format!("/api/v1/service-accounts/{}", ci.id);
    let open = s.token_ok(&ci, &[("resource", BILLING)]).await;
    let (st, _) = s
        .api(
            "PATCH",
            &path,
            &root,
            Some(json!({"allowed_resources": []})),
        )
        .await;
    assert_eq!(st, 200);
    let o = s
        .token_ok(&ci, &[("resource", "https://other.example")])
        .await;
    assert!(
        s.is_active(&other, o["access_token"].as_str().unwrap_or(""), None)
            .await
    );
    let (st, _) = s
        .api(
            "PATCH",
            &path,
            &root,
            Some(json!({"allowed_resources": ["https://other.example"]})),
        )
        .await;
    assert_eq!(st, 200);
    for t in [&t, &open] {
        assert!(
            !s.is_active(&billing, t["access_token"].as_str().unwrap_or(""), None)
                .await
        );
    }
    // Not a URI: 422, naming the field.
    let (st, p) = s
        .api(
            "PATCH",
            &path,
            &root,
            Some(json!({"allowed_resources": ["not a uri"]})),
        )
        .await;
    assert_eq!(
        (st, p["field"].clone()),
        (422, json!("allowed_resources")),
        "{p}"
    );
}

both_backends!(
    tokens_carry_what_their_api_declares,
    declarations_are_checked,
    accounts_limited_to_some_apis
);
