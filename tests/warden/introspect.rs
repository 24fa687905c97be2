//! Introspection and revocation: every state transition is visible to a
//! resource server at its very next call.
use serde_json::{Value, json};
use warden::domain::account::Status;
use warden::manage::Actor;

use crate::harness::{Account, Backend, TestServer, both_backends, expect_error};

const API: &str = "https://api.example.com";

async fn token_for(s: &TestServer, a: &Account) -> Value {
    s.token_ok(a, &[("resource", API)]).await
}

fn at(v: &Value) -> &str {
    v["access_token"].as_str().unwrap_or_default()
}

fn rt(v: &Value) -> &str {
    v["refresh_token"].as_str().unwrap_or_default()
}

async fn set_status(s: &TestServer, id: &str, st: Status) {
    warden::manage::accounts::set_status(&warden::manage::Scope::operator(&s.db), id, st)
        .await
        .expect("status");
}

async fn active_token_carries_live_claims(b: Backend) {
    let s = TestServer::start(b).await;
    let rs = s.create_resource_server(API).await;
    let a = s.create_account(&["viewer", "risk-editor"]).await;
    let t = token_for(&s, &a).await;
    let body = s.introspect(&rs, at(&t), None).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["client_id"], a.client_id.as_str());
    assert_eq!(body["sub"], a.client_id.as_str());
    assert_eq!(body["org"], "default");
    assert_eq!(body["aud"], API);
    assert_eq!(body["iss"], s.issuer.as_str());
    assert_eq!(body["roles"], json!(["risk-editor", "viewer"]));
    assert_eq!(
        body["scope"],
        "incidents:read org:read risks:read risks:write"
    );
    for k in ["exp", "iat", "jti"] {
        assert!(!body[k].is_null(), "{k}");
    }
    // Refresh tokens can be introspected too, until they are spent.
    let r = s.introspect(&rs, rt(&t), None).await;
    assert_eq!(r["active"], true);
    assert_eq!(r["token_type"], "refresh_token");
    assert_eq!(r["client_id"], a.client_id.as_str());
    assert_eq!(s.refresh(&a, rt(&t)).await.status(), 200);
    assert!(!s.is_active(&rs, rt(&t), None).await);
}

async fn audience_must_include_the_caller(b: Backend) {
    let s = TestServer::start(b).await;
    let rs = s.create_resource_server(API).await;
    let other = s
        .create_resource_server("https://billing.example.com")
        .await;
    let a = s.create_account(&["viewer"]).await;
    let t = token_for(&s, &a).await;
    assert!(s.is_active(&rs, at(&t), None).await);
    assert!(!s.is_active(&other, at(&t), None).await);
    assert!(!s.is_active(&other, rt(&t), None).await);
    let default_aud = s.token_ok(&a, &[]).await;
    assert!(!s.is_active(&rs, at(&default_aud), None).await);
    // A disabled resource server is no longer a valid `resource`.
    warden::manage::resource_servers::set_status(
        &s.db,
        &other.id,
        Status::Disabled,
        &Actor::operator(),
        warden::now_unix(),
    )
    .await
    .expect("disable rs");
    expect_error(
        s.token(&a, &[("resource", &other.audience)]).await,
        400,
        "invalid_target",
    )
    .await;
    let r = s
        .post_form(
            "/oauth/introspect",
            &[("token", at(&t))],
            Some((&other.client_id, &other.secret)),
        )
        .await;
    expect_error(r, 401, "invalid_client").await;
}

async fn state_table_through_introspection(b: Backend) {
    let s = TestServer::start(b).await;
    let rs = s.create_resource_server(API).await;
    let a = s.create_account(&["viewer", "risk-editor"]).await;
    let t = token_for(&s, &a).await;

    // Disable: inactive at once; enable: active again.
    set_status(&s, &a.id, Status::Disabled).await;
    assert!(!s.is_active(&rs, at(&t), None).await);
    assert!(!s.is_active(&rs, rt(&t), None).await);
    set_status(&s, &a.id, Status::Active).await;
    assert!(s.is_active(&rs, at(&t), None).await);
    assert!(s.is_active(&rs, rt(&t), None).await);

    // Role removed: gone from roles and scope at once; re-adding roles
    // never widens an issued token.
    s.sql(
        "UPDATE service_accounts SET roles = 'viewer' WHERE id = $1",
        &a.id,
    )
    .await;
    let body = s.introspect(&rs, at(&t), None).await;
    assert_eq!(body["roles"], json!(["viewer"]));
    assert_eq!(body["scope"], "incidents:read org:read risks:read");
    s.sql(
        "UPDATE service_accounts SET roles = 'admin risk-editor viewer' WHERE id = $1",
        &a.id,
    )
    .await;
    let body = s.introspect(&rs, at(&t), None).await;
    assert_eq!(body["roles"], json!(["risk-editor", "viewer"]));

    // Secret reset: access tokens live on, refresh tokens die.
    warden::manage::accounts::reset_secret(&warden::manage::Scope::operator(&s.db), &a.id)
        .await
        .expect("reset");
    assert!(s.is_active(&rs, at(&t), None).await);
    assert!(!s.is_active(&rs, rt(&t), None).await);

    // Expiry passed: inactive.
    s.sql(
        "UPDATE service_accounts SET expires_at = 1000 WHERE id = $1",
        &a.id,
    )
    .await;
    assert!(!s.is_active(&rs, at(&t), None).await);
    s.sql(
        "UPDATE service_accounts SET expires_at = NULL WHERE id = $1",
        &a.id,
    )
    .await;
    assert!(s.is_active(&rs, at(&t), None).await);

    // Deleted: inactive forever.
    warden::manage::accounts::delete(&warden::manage::Scope::operator(&s.db), &a.id)
        .await
        .expect("delete");
    assert!(!s.is_active(&rs, at(&t), None).await);
    assert!(
        warden::manage::accounts::set_status(
            &warden::manage::Scope::operator(&s.db),
            &a.id,
            Status::Active
        )
        .await
        .is_err()
    );
    assert!(!s.is_active(&rs, at(&t), None).await);
}

async fn ip_allowlist_needs_source_ip(b: Backend) {
    let s = TestServer::start(b).await;
    let rs = s.create_resource_server(API).await;
    let a = s
        .create_account_with(
            &["viewer"],
            &["10.0.0.0/8", "2001:db8::/32", "127.0.0.1"],
            None,
        )
        .await;
    let t = token_for(&s, &a).await;
    assert!(s.is_active(&rs, at(&t), Some("10.1.2.3")).await);
    assert!(s.is_active(&rs, at(&t), Some("::ffff:10.1.2.3")).await);
    assert!(s.is_active(&rs, at(&t), Some("2001:db8::5")).await);
    assert!(!s.is_active(&rs, at(&t), Some("192.168.1.1")).await);
    // Fail closed: an allowlist and no source_ip is inactive.
    assert!(!s.is_active(&rs, at(&t), None).await);
    let r = s
        .post_form(
            "/oauth/introspect",
            &[("token", at(&t)), ("source_ip", "10.1.2")],
            Some((&rs.client_id, &rs.secret)),
        )
        .await;
    expect_error(r, 400, "invalid_request").await;
    // An account without allowlist does not need it.
    let open = s.create_account(&["viewer"]).await;
    assert!(
        s.is_active(&rs, at(&token_for(&s, &open).await), None)
            .await
    );
}

async fn revocation_by_account_and_resource_server(b: Backend) {
    let s = TestServer::start(b).await;
    let rs = s.create_resource_server(API).await;
    let other_rs = s.create_resource_server("https://other.example.com").await;
    let a = s.create_account(&["viewer"]).await;
    let mallory = s.create_account(&["viewer"]).await;
    let revoke = |who: (&str, &str), token: String| {
        let (id, secret) = (who.0.to_owned(), who.1.to_owned());
        let s = &s;
        async move {
            s.post_form("/oauth/revoke", &[("token", &token)], Some((&id, &secret)))
                .await
        }
    };

    // An account revokes its own access token: inactive until expiry.
    let t1 = token_for(&s, &a).await;
    assert_eq!(
        revoke((&a.client_id, &a.secret), at(&t1).into())
            .await
            .status(),
        200
    );
    assert!(!s.is_active(&rs, at(&t1), None).await);
    // ...and its refresh token: the chain is dead.
    assert_eq!(
        revoke((&a.client_id, &a.secret), rt(&t1).into())
            .await
            .status(),
        200
    );
    expect_error(s.refresh(&a, rt(&t1)).await, 400, "invalid_grant").await;
    assert!(!s.is_active(&rs, rt(&t1), None).await);

    // Nobody revokes another account's tokens.
    let t2 = token_for(&s, &a).await;
    expect_error(
        revoke((&mallory.client_id, &mallory.secret), at(&t2).into()).await,
        403,
        "unauthorized_client",
    )
    .await;
    expect_error(
        revoke((&mallory.client_id, &mallory.secret), rt(&t2).into()).await,
        403,
        "unauthorized_client",
    )
    .await;
    expect_error(
        revoke((&other_rs.client_id, &other_rs.secret), at(&t2).into()).await,
        403,
        "unauthorized_client",
    )
    .await;
    assert!(s.is_active(&rs, at(&t2), None).await);
    // A resource server revokes tokens it may introspect.
    assert_eq!(
        revoke((&rs.client_id, &rs.secret), at(&t2).into())
            .await
            .status(),
        200
    );
    assert!(!s.is_active(&rs, at(&t2), None).await);
    assert_eq!(
        revoke((&rs.client_id, &rs.secret), rt(&t2).into())
            .await
            .status(),
        200
    );
    expect_error(s.refresh(&a, rt(&t2)).await, 400, "invalid_grant").await;

    // Unknown or garbage tokens: 200, as RFC 7009 says.
    assert_eq!(
        revoke((&a.client_id, &a.secret), "garbage".into())
            .await
            .status(),
        200
    );
    assert_eq!(
        revoke((&a.client_id, &a.secret), "arm_rt_AAAA".into())
            .await
            .status(),
        200
    );
    // Bad client authentication is still 401.
    expect_error(
        revoke((&a.client_id, "arm_sk_wrong"), at(&t2).into()).await,
        401,
        "invalid_client",
    )
    .await;
    let r = s
        .post_form("/oauth/revoke", &[], Some((&a.client_id, &a.secret)))
        .await;
    expect_error(r, 400, "invalid_request").await;
    // Revocations are audited.
    let events = s.db.audit_for_target(&a.id).await.expect("audit");
    assert!(events.iter().any(
        |e| e.event.action == "access_token.revoked" && e.event.actor_type == "resource_server"
    ));
    assert!(
        events
            .iter()
            .any(|e| e.event.action == "refresh_token.revoked"
                && e.event.actor_type == "service_account")
    );
}

async fn introspection_bad_inputs(b: Backend) {
    let s = TestServer::start(b).await;
    let rs = s.create_resource_server(API).await;
    let a = s.create_account(&["viewer"]).await;
    let t = token_for(&s, &a).await;
    // No auth, wrong auth, an account's credentials instead of a resource server's.
    let r = s
        .post_form("/oauth/introspect", &[("token", at(&t))], None)
        .await;
    expect_error(r, 401, "invalid_client").await;
    let r = s
        .post_form(
            "/oauth/introspect",
            &[("token", at(&t))],
            Some((&rs.client_id, "arm_sk_nope")),
        )
        .await;
    expect_error(r, 401, "invalid_client").await;
    let r = s
        .post_form(
            "/oauth/introspect",
            &[("token", at(&t))],
            Some((&a.client_id, &a.secret)),
        )
        .await;
    expect_error(r, 401, "invalid_client").await;
    // Missing token.
    let r = s
        .post_form(
            "/oauth/introspect",
            &[("token_type_hint", "access_token")],
            Some((&rs.client_id, &rs.secret)),
        )
        .await;
    expect_error(r, 400, "invalid_request").await;
    // Garbage, tampered, unsigned and oversized tokens are inactive.
    let token = at(&t).to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    let tampered_claims = {
        let mut c: Value = serde_json::from_slice(
            &data_encoding::BASE64URL_NOPAD
                .decode(parts[1].as_bytes())
                .expect("b64"),
        )
        .expect("json");
        c["roles"] = json!(["admin"]);
        data_encoding::BASE64URL_NOPAD.encode(c.to_string().as_bytes())
    };
    let none_header = data_encoding::BASE64URL_NOPAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    for bad in [
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        format!("{}.{}.{}", parts[0], tampered_claims, parts[2]),
        format!("{}.{}.", none_header, parts[1]),
        format!("{}.{}", parts[0], parts[1]),
        format!("{token}x"),
        "x".repeat(10_000),
        "arm_rt_garbage".to_owned(),
    ] {
        assert!(
            !s.is_active(&rs, &bad, None).await,
            "{}",
            &bad[..bad.len().min(60)]
        );
    }
    // Too large to even read.
    let r = s
        .post_form(
            "/oauth/introspect",
            &[("token", &"x".repeat(40_000))],
            Some((&rs.client_id, &rs.secret)),
        )
        .await;
    expect_error(r, 413, "invalid_request").await;
    // A token from another warden (another issuer and key) is inactive.
    let foreign = TestServer::start(b).await;
    foreign.create_resource_server(API).await;
    let fa = foreign.create_account(&["viewer"]).await;
    let ft = foreign.token_ok(&fa, &[("resource", API)]).await;
    assert!(!s.is_active(&rs, at(&ft), None).await);
}

/// Revoking a refresh token, or reusing a spent one, ends the grant: every
/// access token issued with that refresh-token family is inactive at once,
/// at introspection and at the admin API (RFC 7009 §2.1, RFC 9700
/// §4.14.2). Tokens of other grants of the same account are untouched.
async fn ending_a_grant_ends_its_access_tokens(b: Backend) {
    let s = TestServer::start(b).await;
    let rs = s.create_resource_server(API).await;
    let a = s.create_account(&["admin"]).await;
    // Revocation (RFC 7009) of the refresh token.
    let t1 = token_for(&s, &a).await;
    let other = token_for(&s, &a).await;
    assert!(s.is_active(&rs, at(&t1), None).await);
    let r = s
        .post_form(
            "/oauth/revoke",
            &[("token", rt(&t1))],
            Some((&a.client_id, &a.secret)),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        !s.is_active(&rs, at(&t1), None).await,
        "the grant's access token"
    );
    assert!(s.is_active(&rs, at(&other), None).await, "another grant's");

    // Reuse of a spent refresh token: the first access token and the one
    // the refresh gave are both dead; so is an admin-API token of the grant.
    let issuer = s.issuer.clone();
    let t2 = s.token_ok(&a, &[("resource", issuer.as_str())]).await;
    let (st, _) = s
        .api("GET", "/api/v1/service-accounts", at(&t2), None)
        .await;
    assert_eq!(st, 200);
    let r = s.refresh(&a, rt(&t2)).await;
    assert_eq!(r.status(), 200);
    let t3: Value = r.json().await.expect("json");
    let (st, _) = s
        .api("GET", "/api/v1/service-accounts", at(&t3), None)
        .await;
    assert_eq!(st, 200);
    expect_error(s.refresh(&a, rt(&t2)).await, 400, "invalid_grant").await;
    for t in [&t2, &t3] {
        let (st, _) = s.api("GET", "/api/v1/service-accounts", at(t), None).await;
        assert_eq!(st, 401, "an access token of the reused grant still works");
    }
    assert!(s.is_active(&rs, at(&other), None).await);
}

/// Introspection answers `{"active": false}` from `exp` on, on warden's own
/// clock: the leeway kept for others' tokens does not stretch its own
/// (RFC 7662 §2.2). Before, a token stayed active 30 s past `exp`.
async fn an_expired_token_is_inactive_at_exp(b: Backend) {
    let s = TestServer::start(b).await;
    let rs = s.create_resource_server(API).await;
    let a = s.create_account(&["viewer"]).await;
    let keys = s.state.keys.current();
    // Issued after the resource server was registered (it accepts no
    // token from before), and a moment later.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let now = warden::now_unix();
    let mint = |exp: i64| {
        let claims = json!({"iss": s.issuer, "sub": a.client_id, "client_id": a.client_id,
            "aud": API, "exp": exp, "iat": now, "nbf": now,
            "jti": uuid::Uuid::new_v4().to_string(), "scope": "", "roles": ["viewer"], "org": "default"});
        keys.signing
            .sign_jwt(claims.to_string().as_bytes())
            .expect("sign")
    };
    assert!(
        s.is_active(&rs, &mint(now + 60), None).await,
        "a live token"
    );
    assert!(
        !s.is_active(&rs, &mint(now - 1), None).await,
        "expired a second ago"
    );
    assert!(
        !s.is_active(&rs, &mint(now - 20), None).await,
        "within the old leeway"
    );
}

both_backends!(
    ending_a_grant_ends_its_access_tokens,
    an_expired_token_is_inactive_at_exp,
    active_token_carries_live_claims,
    audience_must_include_the_caller,
    state_table_through_introspection,
    ip_allowlist_needs_source_ip,
    revocation_by_account_and_resource_server,
    introspection_bad_inputs,
);
