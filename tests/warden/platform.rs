//! The operator's platform plane (issue 15): a SaaS backend holding an
//! operator account onboards a customer through the API alone, naming the
//! person it acts for; org admins stay inside their own org.
use serde_json::{Value, json};

use crate::harness::{Backend, TestServer, account_from, both_backends};

const BILLING: &str = "https://billing.example";
const PERSON: &str = "alice@saas.example";

/// Calls the admin API as an operator acting for `PERSON`.
async fn for_person(
    s: &TestServer,
    method: &str,
    path: &str,
    token: &str,
    body: Value,
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let r = s
        .http
        .request(m, s.url(path))
        .bearer_auth(token)
        .header("Warden-On-Behalf-Of", PERSON)
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn a_saas_backend_onboards_a_customer(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, op) = s.caller(&["operator"]).await;
    let (st, org) = for_person(
        &s,
        "POST",
        "/api/v1/orgs",
        &op,
        json!({"slug": "globex", "name": "Globex"}),
    )
    .await;
    assert_eq!(st, 201, "{org}");
    assert_eq!(org["slug"], "globex");
    let api = json!({"name": "Billing", "audience": BILLING, "permissions": [
        {"name": "billing:read", "description": "Read invoices"},
        {"name": "billing:write", "description": "Issue refunds"}]});
    let (st, rs) = for_person(&s, "POST", "/api/v1/resource-servers", &op, api).await;
    assert_eq!(st, 201, "{rs}");
    assert!(
        rs["client_secret"]
            .as_str()
            .is_some_and(|x| x.starts_with("arm_sk_"))
    );
    assert_eq!(rs["permissions"][0]["name"], "billing:read");
    let role = json!({"id": "billing-reader", "permissions": ["billing:read"]});
    let (st, r) = for_person(&s, "POST", "/api/v1/orgs/globex/roles", &op, role).await;
    assert_eq!(st, 201, "{r}");
    let acct = json!({"name": "invoice sync", "roles": ["billing-reader"]});
    let (st, a) = for_person(
        &s,
        "POST",
        "/api/v1/orgs/globex/service-accounts",
        &op,
        acct,
    )
    .await;
    assert_eq!(st, 201, "{a}");
    assert_eq!(a["org"], "globex");
    let t = s
        .token_ok(&account_from(&a), &[("resource", BILLING)])
        .await;
    assert_eq!(t["scope"], "billing:read");

    // Every step is audited with the person it was done for.
    let (st, log) = s
        .api("GET", "/api/v1/orgs/globex/audit-events", &op, None)
        .await;
    assert_eq!(st, 200, "{log}");
    let items = log["items"].as_array().cloned().unwrap_or_default();
    for action in ["org.created", "role.created", "service_account.created"] {
        let e = items.iter().find(|e| e["action"] == action);
        assert_eq!(
            e.map(|e| e["on_behalf_of"].clone()),
            Some(json!(PERSON)),
            "{action}: {log}"
        );
    }
    let rs_events =
        s.db.audit_for_target(rs["id"].as_str().unwrap_or(""))
            .await
            .expect("audit");
    assert_eq!(rs_events[0].on_behalf_of.as_deref(), Some(PERSON));

    // The platform endpoints read back what was made.
    let (st, one) = s.api("GET", "/api/v1/orgs/globex", &op, None).await;
    assert_eq!((st, one["name"].clone()), (200, json!("Globex")));
    let (st, list) = s.api("GET", "/api/v1/resource-servers", &op, None).await;
    assert_eq!(st, 200);
    assert_eq!(list["items"][0]["audience"], BILLING);
    assert!(list["items"][0].get("client_secret").is_none());
    let path = format!(
        "/api/v1/resource-servers/{}",
        rs["id"].as_str().unwrap_or("")
    );
    // A bad request changes nothing, not even its valid half.
    let twice = json!({"name": "renamed", "permissions": [{"name": "a:b"}, {"name": "a:b"}]});
    assert_eq!(s.api("PATCH", &path, &op, Some(twice)).await.0, 422);
    assert_eq!(s.api("GET", &path, &op, None).await.1["name"], "Billing");
    let (st, p) = s
        .api(
            "POST",
            "/api/v1/orgs",
            &op,
            Some(json!({"slug": "Bad Slug"})),
        )
        .await;
    assert_eq!((st, p["field"].clone()), (422, json!("slug")), "{p}");
    // A method an endpoint does not take: 405, as a problem document.
    assert_eq!(s.api("PUT", "/api/v1/orgs", &op, None).await.0, 405);
    let (st, p) = s
        .api(
            "PATCH",
            &path,
            &op,
            Some(json!({"permissions": [{"name": "billing:write"}]})),
        )
        .await;
    assert_eq!(st, 200, "{p}");
    let t = s
        .token_ok(&account_from(&a), &[("resource", BILLING)])
        .await;
    assert_eq!(t["scope"], "", "billing:read is no longer the API's");
    let (st, _) = s.api("DELETE", &path, &op, None).await;
    assert_eq!(st, 200);
    let r = s.token(&account_from(&a), &[("resource", BILLING)]).await;
    assert_eq!(r.status(), 400, "a deleted API's audience is unknown");
}

async fn org_admins_stay_in_their_org(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, op) = s.caller(&["operator"]).await;
    let (st, _) = s
        .api("POST", "/api/v1/orgs", &op, Some(json!({"slug": "globex"})))
        .await;
    assert_eq!(st, 201);
    let (_, admin) = s.caller(&["admin"]).await;
    // Another org, through either path form: 404, as if it did not exist.
    for (m, path, body) in [
        ("GET", "/api/v1/orgs/globex/service-accounts", None),
        (
            "POST",
            "/api/v1/orgs/globex/service-accounts",
            Some(json!({"name": "x", "roles": ["viewer"]})),
        ),
        ("GET", "/api/v1/orgs/globex/roles", None),
        ("GET", "/api/v1/orgs/globex/audit-events", None),
        ("GET", "/api/v1/orgs/nowhere/service-accounts", None),
    ] {
        let (st, p) = s.api(m, path, &admin, body).await;
        assert_eq!(st, 404, "{m} {path}: {p}");
    }
    // Its own org, by name: as without the prefix.
    let (st, _) = s
        .api("GET", "/api/v1/orgs/default/service-accounts", &admin, None)
        .await;
    assert_eq!(st, 200);
    // The platform endpoints need platform:manage; an admin lacks it.
    for path in [
        "/api/v1/orgs",
        "/api/v1/resource-servers",
        "/api/v1/orgs/default",
    ] {
        assert_eq!(s.api("GET", path, &admin, None).await.0, 403, "{path}");
    }
    // Only an operator names a person, and only an operator grants operator.
    let (st, p) = for_person(
        &s,
        "POST",
        "/api/v1/service-accounts",
        &admin,
        json!({"name": "y", "roles": ["viewer"]}),
    )
    .await;
    assert_eq!(st, 403, "{p}");
    let (st, _) = s
        .api(
            "POST",
            "/api/v1/service-accounts",
            &admin,
            Some(json!({"name": "z", "roles": ["operator"]})),
        )
        .await;
    assert_eq!(st, 403);
    let (st, p) = s
        .api(
            "POST",
            "/api/v1/service-accounts",
            &op,
            Some(json!({"name": "op2", "roles": ["operator"]})),
        )
        .await;
    assert_eq!(st, 201, "{p}");
    // An admin cannot act on an operator.
    let path = format!(
        "/api/v1/service-accounts/{}/disable",
        p["id"].as_str().unwrap_or("")
    );
    assert_eq!(s.api("POST", &path, &admin, None).await.0, 403);
    // An operator holding a custom role of its own org acts in another
    // org (the in-write re-check reads its roles where they live).
    s.create_api("https://billing.example", &[("billing:read", "")])
        .await;
    s.role("reader", &["billing:read"]).await;
    let (_, op3) = s.caller(&["operator", "reader"]).await;
    let (st, p3) = s
        .api(
            "POST",
            "/api/v1/orgs/globex/service-accounts",
            &op3,
            Some(json!({"name": "w", "roles": ["viewer"]})),
        )
        .await;
    assert_eq!(st, 201, "{p3}");
    // An operator's admin-API token carries platform:manage.
    let t = s
        .token_ok(&account_from(&p), &[("resource", &s.issuer.clone())])
        .await;
    assert!(
        t["scope"]
            .as_str()
            .unwrap_or("")
            .split(' ')
            .any(|x| x == "platform:manage"),
        "{t}"
    );
}

/// A disabled org acts like every account in it disabled, at once and
/// reversibly; an org's allowlist applies on top of each account's.
async fn an_org_state_applies_to_every_account(b: Backend) {
    let s = TestServer::start(b).await;
    let rs = s.create_resource_server("https://api.example").await;
    let (_, op) = s.caller(&["operator"]).await;
    let (st, _) = s
        .api("POST", "/api/v1/orgs", &op, Some(json!({"slug": "globex"})))
        .await;
    assert_eq!(st, 201);
    let (_, a) = s
        .api(
            "POST",
            "/api/v1/orgs/globex/service-accounts",
            &op,
            Some(json!({"name": "admin", "roles": ["admin"]})),
        )
        .await;
    let a = account_from(&a);
    let t = s.token_ok(&a, &[("resource", "https://api.example")]).await;
    let at = t["access_token"].as_str().unwrap_or("").to_owned();
    let admin = s.admin_token(&a).await;
    assert!(s.is_active(&rs, &at, None).await);

    let (st, o) = s
        .api("POST", "/api/v1/orgs/globex/disable", &op, None)
        .await;
    assert_eq!((st, o["status"].clone()), (200, json!("disabled")), "{o}");
    assert_eq!(s.token(&a, &[]).await.status(), 403);
    assert!(!s.is_active(&rs, &at, None).await);
    assert_eq!(
        s.api("GET", "/api/v1/service-accounts", &admin, None)
            .await
            .0,
        401
    );
    let (st, _) = s.api("POST", "/api/v1/orgs/globex/enable", &op, None).await;
    assert_eq!(st, 200);
    assert!(s.is_active(&rs, &at, None).await, "reversible");
    assert_eq!(
        s.api("GET", "/api/v1/service-accounts", &admin, None)
            .await
            .0,
        200
    );

    let (st, o) = s
        .api(
            "PATCH",
            "/api/v1/orgs/globex",
            &op,
            Some(json!({"allowed_ips": ["10.0.0.0/8"]})),
        )
        .await;
    assert_eq!(
        (st, o["allowed_ips"].clone()),
        (200, json!(["10.0.0.0/8"])),
        "{o}"
    );
    assert_eq!(
        s.token(&a, &[]).await.status(),
        403,
        "the test client is not in 10/8"
    );
    assert!(s.is_active(&rs, &at, Some("10.1.2.3")).await);
    assert!(!s.is_active(&rs, &at, Some("192.0.2.1")).await);
    let (st, _) = s
        .api(
            "PATCH",
            "/api/v1/orgs/globex",
            &op,
            Some(json!({"allowed_ips": []})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(s.token(&a, &[]).await.status(), 200);
    // Each change is audited; an org admin cannot change its org's state.
    let (_, log) = s
        .api("GET", "/api/v1/orgs/globex/audit-events", &op, None)
        .await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .map(|l| l.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    for want in ["org.disabled", "org.enabled", "org.updated"] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    assert_eq!(
        s.api("POST", "/api/v1/orgs/globex/disable", &admin, None)
            .await
            .0,
        403
    );
    // No lockout: an operator cannot disable, or fence, its own org.
    let (st, m) = s
        .api("POST", "/api/v1/orgs/default/disable", &op, None)
        .await;
    assert_eq!(st, 409, "{m}");
    let fence = Some(json!({"allowed_ips": ["10.0.0.0/8"]}));
    assert_eq!(
        s.api("PATCH", "/api/v1/orgs/default", &op, fence).await.0,
        409
    );
    let (st, d) = s.api("GET", "/api/v1/orgs/default", &op, None).await;
    let state = (st, d["status"].clone(), d["allowed_ips"].clone());
    assert_eq!(state, (200, json!("active"), json!([])));
}

both_backends!(
    a_saas_backend_onboards_a_customer,
    org_admins_stay_in_their_org,
    an_org_state_applies_to_every_account
);
