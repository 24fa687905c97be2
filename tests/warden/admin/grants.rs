//! Grant rules, custom roles, and org isolation.
use serde_json::json;

use crate::harness::{Backend, TestServer, account_from, both_backends};

use super::SA;

async fn grant_rules(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, root) = s.caller(&["admin"]).await;
    // A custom role that may manage the org but holds only risks:read.
    let (st, _) = s
        .api(
            "POST",
            "/api/v1/roles",
            &root,
            Some(json!({"id": "sa-manager", "permissions": ["org:manage", "risks:read"]})),
        )
        .await;
    assert_eq!(st, 201);
    let (_, mgr) = s
        .api(
            "POST",
            SA,
            &root,
            Some(json!({"name": "mgr", "roles": ["sa-manager"]})),
        )
        .await;
    let mt = s.admin_token(&account_from(&mgr)).await;
    assert_eq!(
        s.api(
            "POST",
            SA,
            &mt,
            Some(json!({"name": "a", "roles": ["admin"]}))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        s.api(
            "POST",
            SA,
            &mt,
            Some(json!({"name": "a", "roles": ["risk-editor"]}))
        )
        .await
        .0,
        403
    );
    let (st, ok) = s
        .api(
            "POST",
            SA,
            &mt,
            Some(json!({"name": "a", "roles": ["risk-viewer"]})),
        )
        .await;
    assert_eq!(st, 201);
    let p = format!("{SA}/{}", ok["id"].as_str().unwrap_or(""));
    assert_eq!(
        s.api(
            "PATCH",
            &p,
            &mt,
            Some(json!({"roles": ["risk-viewer", "incident-viewer"]}))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        s.api(
            "POST",
            "/api/v1/roles",
            &mt,
            Some(json!({"id": "wider", "permissions": ["risks:write"]}))
        )
        .await
        .0,
        403
    );
    // Acting on an account that holds more than the caller is refused,
    // even an edit that only takes something away.
    let (_, big) = s
        .api(
            "POST",
            SA,
            &root,
            Some(json!({"name": "big", "roles": ["admin", "risk-viewer"]})),
        )
        .await;
    let bp = format!("{SA}/{}", big["id"].as_str().unwrap_or(""));
    assert_eq!(
        s.api("PATCH", &bp, &mt, Some(json!({"roles": ["risk-viewer"]})))
            .await
            .0,
        403
    );
    // Custom roles: listed with built-ins, usable in tokens; duplicates refused.
    let (_, roles) = s.api("GET", "/api/v1/roles", &root, None).await;
    let ids: Vec<&str> = roles["items"]
        .as_array()
        .map(|l| l.iter().filter_map(|r| r["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(ids.contains(&"admin") && ids.contains(&"sa-manager"));
    assert_eq!(
        s.api(
            "POST",
            "/api/v1/roles",
            &root,
            Some(json!({"id": "sa-manager", "permissions": ["risks:read"]}))
        )
        .await
        .0,
        409
    );
    assert_eq!(
        s.api(
            "POST",
            "/api/v1/roles",
            &root,
            Some(json!({"id": "viewer", "permissions": ["risks:read"]}))
        )
        .await
        .0,
        409
    );
    assert_eq!(
        s.api(
            "POST",
            "/api/v1/roles",
            &root,
            Some(json!({"id": "x", "permissions": ["fly:high"]}))
        )
        .await
        .0,
        422
    );
    let t = s.token_ok(&account_from(&mgr), &[]).await;
    assert_eq!(t["scope"], "org:manage risks:read");
}

async fn orgs_cannot_see_each_other(b: Backend) {
    let s = TestServer::start(b).await;
    let ev = warden::db::AuditEvent::new("operator", "local-operator", "org.created", 0)
        .in_org("acme")
        .on("org", "acme");
    s.db.create_org("acme", "Acme", 0, &ev).await.expect("org");
    let (_, default_admin) = s.caller(&["admin"]).await;
    let acme_admin = s.create_in_org("acme", &["admin"], &[], None).await;
    let acme_token = s.admin_token(&acme_admin).await;
    let (_, mine) = s
        .api(
            "POST",
            SA,
            &default_admin,
            Some(json!({"name": "default-only", "roles": ["viewer"]})),
        )
        .await;
    let id = mine["id"].as_str().unwrap_or("").to_owned();
    let cid = mine["client_id"].as_str().unwrap_or("").to_owned();
    for (m, p) in [
        ("GET", format!("{SA}/{id}")),
        ("GET", format!("{SA}/{cid}")),
        ("DELETE", format!("{SA}/{id}")),
        ("POST", format!("{SA}/{id}/disable")),
        ("POST", format!("{SA}/{id}/reset-secret")),
        ("DELETE", format!("/api/v1/oauth/clients/{cid}")),
    ] {
        assert_eq!(s.api(m, &p, &acme_token, None).await.0, 404, "{m} {p}");
    }
    assert_eq!(
        s.api(
            "PATCH",
            &format!("{SA}/{id}"),
            &acme_token,
            Some(json!({"name": "pwned"}))
        )
        .await
        .0,
        404
    );
    let (_, list) = s
        .api("GET", &format!("{SA}?include=deleted"), &acme_token, None)
        .await;
    assert!(
        list["items"]
            .as_array()
            .is_some_and(|l| l.iter().all(|x| x["org"] == "acme"))
    );
    let (_, audit) = s
        .api("GET", "/api/v1/audit-events", &acme_token, None)
        .await;
    assert!(!audit.to_string().contains(&id));
    // The default org's account is untouched.
    let (_, still) = s
        .api("GET", &format!("{SA}/{id}"), &default_admin, None)
        .await;
    assert_eq!(still["name"], "default-only");
    assert_eq!(still["status"], "active");
    // Accounts created by acme's admin land in acme.
    let (_, theirs) = s
        .api(
            "POST",
            SA,
            &acme_token,
            Some(json!({"name": "acme ci", "roles": ["viewer"]})),
        )
        .await;
    assert_eq!(theirs["org"], "acme");
    let t = s.token_ok(&account_from(&theirs), &[]).await;
    let claims = crate::jwt::verify_with_jwks(
        &s,
        t["access_token"].as_str().unwrap_or(""),
        "urn:warden:default",
    )
    .await
    .1;
    assert_eq!(claims["org"], "acme");
}

/// Review finding: what an admin-API caller may grant or act on comes
/// from its token's roles (narrowed by `scope`, never widened by a role
/// added later), not from every role its account holds now.
async fn a_token_grants_only_its_own_roles(b: Backend) {
    let s = TestServer::start(b).await;
    s.role("mgr", &["org:manage", "org:read"]).await;
    let dual = s.create_account(&["admin", "mgr"]).await;
    let victim = s.create_account(&["admin"]).await;
    let t = s
        .token_ok(&dual, &[("resource", &s.issuer.clone()), ("scope", "mgr")])
        .await;
    let narrow = t["access_token"].as_str().unwrap_or("").to_owned();
    let create_admin = Some(json!({"name": "x", "roles": ["admin"]}));
    assert_eq!(
        s.api("POST", SA, &narrow, create_admin.clone()).await.0,
        403
    );
    let reset = format!("{SA}/{}/reset-secret", victim.id);
    assert_eq!(s.api("POST", &reset, &narrow, None).await.0, 403);
    // The same account's unnarrowed token may.
    let full = s.admin_token(&dual).await;
    assert_eq!(s.api("POST", SA, &full, create_admin.clone()).await.0, 201);

    // A role added after issue does not widen the token.
    let pmgr = s.create_account(&["mgr"]).await;
    let old = s.admin_token(&pmgr).await;
    warden::manage::accounts::update(
        &warden::manage::Scope::operator(&s.db),
        &pmgr.id,
        warden::manage::accounts::AccountPatch {
            roles: Some(vec!["mgr".into(), "admin".into()]),
            ..Default::default()
        },
    )
    .await
    .expect("add admin");
    assert_eq!(s.api("POST", SA, &old, create_admin).await.0, 403);
    // An admin token still grants non-admin-API roles (its scope carries
    // only the admin API's permissions, its roles all of them).
    let (st, v) = s
        .api(
            "POST",
            SA,
            &full,
            Some(json!({"name": "v", "roles": ["risk-editor"]})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
}

both_backends!(
    grant_rules,
    orgs_cannot_see_each_other,
    a_token_grants_only_its_own_roles
);
