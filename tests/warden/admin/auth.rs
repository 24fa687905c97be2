//! Authentication and authorization of the admin API: bearer tokens, audiences,
//! permissions, live checks of the caller.
use serde_json::json;

use crate::harness::{Backend, TestServer, both_backends};

use super::SA;

async fn authentication_and_authorization(b: Backend) {
    let s = TestServer::start(b).await;
    let (adm, token) = s.caller(&["admin"]).await;
    assert_eq!(s.api("GET", SA, &token, None).await.0, 200);
    // No token, garbage, wrong audience: 401 with a Bearer challenge.
    let r = s.http.get(s.url(SA)).send().await.expect("send");
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(s.api("GET", SA, "garbage", None).await.0, 401);
    let default_aud = s.token_ok(&adm, &[]).await["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(s.api("GET", SA, &default_aud, None).await.0, 401);
    // Without any admin-API permission: 403.
    let outsider = s.create_account(&["risk-editor"]).await;
    let rt = s.admin_token(&outsider).await;
    assert_eq!(s.api("GET", SA, &rt, None).await.0, 403);
    // A token for the admin API carries only the admin API's permissions:
    // asking it for another is invalid_scope.
    let r = s
        .token(
            &adm,
            &[("resource", &s.issuer.clone()), ("scope", "risks:read")],
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    assert_eq!(body["error"], "invalid_scope", "{body}");
    // A token narrowed by scope away from org:read and org:manage: 403.
    let narrow = s
        .token_ok(
            &adm,
            &[("resource", &s.issuer.clone()), ("scope", "audit:read")],
        )
        .await;
    assert_eq!(
        s.api(
            "GET",
            SA,
            narrow["access_token"].as_str().unwrap_or(""),
            None
        )
        .await
        .0,
        403
    );
    // Live checks: revoked token, disabled caller.
    let other = s.create_account(&["admin"]).await;
    let ot = s.admin_token(&other).await;
    let r = s
        .post_form(
            "/oauth/revoke",
            &[("token", &ot)],
            Some((&other.client_id, &other.secret)),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(s.api("GET", SA, &ot, None).await.0, 401);
    let (st, _) = s
        .api("POST", &format!("{SA}/{}/disable", other.id), &token, None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        s.token(&other, &[]).await.status(),
        403,
        "a disabled account gets no token"
    );
    // No self-lockout: an account cannot disable or delete itself.
    assert_eq!(
        s.api("POST", &format!("{SA}/{}/disable", adm.id), &token, None)
            .await
            .0,
        409
    );
    assert_eq!(
        s.api("DELETE", &format!("{SA}/{}", adm.client_id), &token, None)
            .await
            .0,
        409
    );
    assert_eq!(
        s.api(
            "DELETE",
            &format!("/api/v1/oauth/clients/{}", adm.id),
            &token,
            None
        )
        .await
        .0,
        409
    );
    // IP allowlist of the caller, against the TCP peer: the operator
    // restricting the admin's account to another network locks its token
    // out at once (the API itself refuses to let it lock itself out).
    let (st, _) = s
        .api(
            "PATCH",
            &format!("{SA}/{}", adm.id),
            &token,
            Some(json!({"allowed_ips": ["10.0.0.0/8"]})),
        )
        .await;
    assert_eq!(st, 409);
    assert_eq!(s.api("GET", SA, &token, None).await.0, 200);
    let patch = warden::manage::accounts::AccountPatch {
        allowed_ips: Some(vec!["10.0.0.0/8".into()]),
        ..Default::default()
    };
    warden::manage::accounts::update(&warden::manage::Scope::operator(&s.db), &adm.id, patch)
        .await
        .expect("the operator may");
    assert_eq!(s.api("GET", SA, &token, None).await.0, 401);
}

both_backends!(authentication_and_authorization);
