//! The token endpoint: both grants, both client-authentication methods,
//! every row of the state table, scope narrowing and refresh rotation.
use serde_json::Value;

use crate::harness::{Backend, TestServer, both_backends, expect_error};
use crate::jwt::verify_with_jwks;

async fn client_credentials_basic_issues_verifiable_tokens(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["viewer", "risk-editor"]).await;
    let r = s.token(&a, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(
        body["scope"],
        "incidents:read org:read risks:read risks:write"
    );
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("arm_rt_"))
    );

    let (header, claims) = verify_with_jwks(
        &s,
        body["access_token"].as_str().unwrap_or_default(),
        "urn:warden:default",
    )
    .await;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert!(header.kid.is_some());
    assert_eq!(claims["iss"], s.issuer.as_str());
    assert_eq!(claims["sub"], a.client_id.as_str());
    assert_eq!(claims["client_id"], a.client_id.as_str());
    assert_eq!(claims["org"], "default");
    assert_eq!(
        claims["roles"],
        serde_json::json!(["risk-editor", "viewer"])
    );
    assert_eq!(claims["scope"], body["scope"]);
    let (iat, exp, nbf) = (
        claims["iat"].as_i64(),
        claims["exp"].as_i64(),
        claims["nbf"].as_i64(),
    );
    assert_eq!(exp.zip(iat).map(|(e, i)| e - i), Some(900));
    assert_eq!(nbf, iat);
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
}

async fn client_secret_post_works(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["viewer"]).await;
    let r = s
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &a.client_id),
                ("client_secret", &a.secret),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    // Basic plus a matching client_id in the body is also fine.
    let r = s
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &a.client_id),
            ],
            Some((&a.client_id, &a.secret)),
        )
        .await;
    assert_eq!(r.status(), 200);
}

async fn bad_credentials_are_invalid_client(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["viewer"]).await;
    // A well-formed secret (valid checksum) that is not this account's.
    let wrong = warden::domain::credentials::ClientSecret::generate();
    let r = s
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some((&a.client_id, wrong.expose())),
        )
        .await;
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap_or("")
            .starts_with("Basic")
    );
    expect_error(r, 401, "invalid_client").await;
    let unknown = "arm_sa_aaaaaaaaaaaaaaaaaaaaaaaaaa";
    let r = s
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some((unknown, &a.secret)),
        )
        .await;
    expect_error(r, 401, "invalid_client").await;
    let r = s
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &a.client_id),
                ("client_secret", "nope"),
            ],
            None,
        )
        .await;
    expect_error(r, 401, "invalid_client").await;
    // No authentication at all.
    let r = s
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            None,
        )
        .await;
    expect_error(r, 401, "invalid_client").await;
    // A client id without a secret is not a confidential client.
    let r = s
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &a.client_id),
            ],
            None,
        )
        .await;
    expect_error(r, 401, "invalid_client").await;
    // Failed authentication of a known client is audited (batched).
    s.state.bookkeeper.flush(&s.db).await;
    let events = s.db.audit_for_target(&a.id).await.expect("audit");
    assert!(events.iter().any(|e| e.action == "client.auth_failed"));
}

async fn disabled_account_is_forbidden_but_wrong_secret_wins(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["viewer"]).await;
    let first = s.token_ok(&a, &[]).await;
    disable(&s, &a.id).await;
    expect_error(s.token(&a, &[]).await, 403, "unauthorized_client").await;
    let r = s
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some((&a.client_id, "arm_sk_bad")),
        )
        .await;
    expect_error(r, 401, "invalid_client").await;
    // Refresh tokens are refused while disabled, and work again on enable.
    let rt = first["refresh_token"].as_str().unwrap_or_default();
    expect_error(s.refresh(&a, rt).await, 403, "unauthorized_client").await;
    enable(&s, &a.id).await;
    s.token_ok(&a, &[]).await;
    assert_eq!(s.refresh(&a, rt).await.status(), 200);
}

async fn expired_account_is_forbidden(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account_with(&["viewer"], &[], Some("30d")).await;
    let first = s.token_ok(&a, &[]).await;
    s.sql(
        "UPDATE service_accounts SET expires_at = 1000 WHERE id = $1",
        &a.id,
    )
    .await;
    expect_error(s.token(&a, &[]).await, 403, "unauthorized_client").await;
    let r = s
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some((&a.client_id, "arm_sk_bad")),
        )
        .await;
    expect_error(r, 401, "invalid_client").await;
    let rt = first["refresh_token"].as_str().unwrap_or_default();
    expect_error(s.refresh(&a, rt).await, 403, "unauthorized_client").await;
}

async fn deleted_account_is_unknown(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["viewer"]).await;
    let first = s.token_ok(&a, &[]).await;
    warden::manage::accounts::delete(&warden::manage::Scope::operator(&s.db), &a.id)
        .await
        .expect("delete");
    expect_error(s.token(&a, &[]).await, 401, "invalid_client").await;
    let rt = first["refresh_token"].as_str().unwrap_or_default();
    expect_error(s.refresh(&a, rt).await, 401, "invalid_client").await;
    // The tombstone stays readable.
    let found =
        s.db.find_account(None, &a.id)
            .await
            .expect("read")
            .expect("tombstone");
    assert!(found.deleted_at.is_some());
}

async fn secret_reset_kills_old_secret_and_refresh_tokens(b: Backend) {
    let s = TestServer::start(b).await;
    let mut a = s.create_account(&["viewer"]).await;
    let before = s.token_ok(&a, &[]).await;
    let old = a.clone();
    let (_, secret) =
        warden::manage::accounts::reset_secret(&warden::manage::Scope::operator(&s.db), &a.id)
            .await
            .expect("reset");
    a.secret = secret.expose().to_owned();
    expect_error(s.token(&old, &[]).await, 401, "invalid_client").await;
    let after = s.token_ok(&a, &[]).await;
    // A refresh token from before the reset is refused, even with the new secret.
    let rt = before["refresh_token"].as_str().unwrap_or_default();
    expect_error(s.refresh(&a, rt).await, 400, "invalid_grant").await;
    assert_eq!(
        s.refresh(&a, after["refresh_token"].as_str().unwrap_or_default())
            .await
            .status(),
        200
    );

    // Resetting a disabled account's secret is refused.
    disable(&s, &a.id).await;
    let r = warden::manage::accounts::reset_secret(&warden::manage::Scope::operator(&s.db), &a.id)
        .await;
    assert!(matches!(r, Err(warden::manage::ManageError::Conflict(_))));
}

async fn removed_role_is_missing_from_new_tokens(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["viewer", "risk-editor"]).await;
    let first = s.token_ok(&a, &[]).await;
    s.sql(
        "UPDATE service_accounts SET roles = 'viewer' WHERE id = $1",
        &a.id,
    )
    .await;
    let body = s.token_ok(&a, &[]).await;
    assert_eq!(body["scope"], "incidents:read org:read risks:read");
    let r = s
        .refresh(&a, first["refresh_token"].as_str().unwrap_or_default())
        .await;
    assert_eq!(r.status(), 200);
    let refreshed: Value = r.json().await.expect("json");
    let (_, claims) = verify_with_jwks(
        &s,
        refreshed["access_token"].as_str().unwrap_or_default(),
        "urn:warden:default",
    )
    .await;
    assert_eq!(claims["roles"], serde_json::json!(["viewer"]));
    // Adding a role back does not widen what an old refresh chain carries.
    s.sql(
        "UPDATE service_accounts SET roles = 'viewer risk-editor admin' WHERE id = $1",
        &a.id,
    )
    .await;
    let r = s
        .refresh(&a, refreshed["refresh_token"].as_str().unwrap_or_default())
        .await;
    let again: Value = r.json().await.expect("json");
    assert_eq!(again["scope"], "incidents:read org:read risks:read");
}

async fn scope_narrows_the_grant(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["viewer", "risk-editor"]).await;
    let body = s.token_ok(&a, &[("scope", "risks:write")]).await;
    assert_eq!(body["scope"], "risks:write");
    let (_, claims) = verify_with_jwks(
        &s,
        body["access_token"].as_str().unwrap_or_default(),
        "urn:warden:default",
    )
    .await;
    assert_eq!(claims["roles"], serde_json::json!(["risk-editor"]));
    let body = s.token_ok(&a, &[("scope", "viewer")]).await;
    assert_eq!(body["scope"], "incidents:read org:read risks:read");
    expect_error(
        s.token(&a, &[("scope", "org:manage")]).await,
        400,
        "invalid_scope",
    )
    .await;
    expect_error(
        s.token(&a, &[("scope", "admin")]).await,
        400,
        "invalid_scope",
    )
    .await;
    // A refresh may narrow further but never widen.
    let rt = s.token_ok(&a, &[("scope", "risks:read")]).await["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let r = s
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("scope", "risks:write"),
            ],
            Some((&a.client_id, &a.secret)),
        )
        .await;
    expect_error(r, 400, "invalid_scope").await;
}

async fn ip_allowlist_and_trusted_proxies(b: Backend) {
    let s = TestServer::start(b).await;
    let outside = s
        .create_account_with(&["viewer"], &["10.0.0.0/8"], None)
        .await;
    let inside = s
        .create_account_with(&["viewer"], &["127.0.0.1", "2001:db8::/32"], None)
        .await;
    expect_error(s.token(&outside, &[]).await, 403, "unauthorized_client").await;
    s.token_ok(&inside, &[]).await;
    // X-Forwarded-For from an untrusted peer is ignored.
    let r = s
        .http
        .post(s.url("/oauth/token"))
        .basic_auth(&outside.client_id, Some(&outside.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-forwarded-for", "10.1.2.3")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("send");
    expect_error(r, 403, "unauthorized_client").await;

    // Behind a trusted proxy, the right-most untrusted hop is the client.
    let p = TestServer::start_with(b, &[("trusted_proxies", "127.0.0.0/8")]).await;
    let a = p
        .create_account_with(&["viewer"], &["10.0.0.0/8"], None)
        .await;
    let send = |xff: &'static str| {
        p.http
            .post(p.url("/oauth/token"))
            .basic_auth(&a.client_id, Some(&a.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-for", xff)
            .body("grant_type=client_credentials")
            .send()
    };
    assert_eq!(send("10.1.2.3").await.expect("send").status(), 200);
    assert_eq!(
        send("203.0.113.5, 10.1.2.3, 127.0.0.2")
            .await
            .expect("send")
            .status(),
        200
    );
    assert_eq!(send("::ffff:10.9.9.9").await.expect("send").status(), 200);
    // A spoofed allowed address to the left of the real one does not help.
    assert_eq!(
        send("10.1.2.3, 203.0.113.5").await.expect("send").status(),
        403
    );
}

async fn refresh_rotates_and_reuse_revokes_the_family(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["viewer"]).await;
    let rt1 = s.token_ok(&a, &[]).await["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let r = s.refresh(&a, &rt1).await;
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.expect("json");
    let rt2 = second["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_ne!(rt1, rt2);
    verify_with_jwks(
        &s,
        second["access_token"].as_str().unwrap_or_default(),
        "urn:warden:default",
    )
    .await;
    // Replaying the spent token is theft: refused, and the chain dies.
    expect_error(s.refresh(&a, &rt1).await, 400, "invalid_grant").await;
    expect_error(s.refresh(&a, &rt2).await, 400, "invalid_grant").await;
    let events = s.db.audit_for_target(&a.id).await.expect("audit");
    assert!(
        events
            .iter()
            .any(|e| e.action == "refresh_token.reuse_detected")
    );
    // Other chains of the same account are unaffected.
    let rt3 = s.token_ok(&a, &[]).await["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(s.refresh(&a, &rt3).await.status(), 200);
}

async fn refresh_token_is_bound_to_its_client(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["viewer"]).await;
    let other = s.create_account(&["viewer"]).await;
    let rt = s.token_ok(&a, &[]).await["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    expect_error(s.refresh(&other, &rt).await, 400, "invalid_grant").await;
    expect_error(s.refresh(&a, "arm_rt_forged").await, 400, "invalid_grant").await;
    let r = s
        .post_form(
            "/oauth/token",
            &[("grant_type", "refresh_token")],
            Some((&a.client_id, &a.secret)),
        )
        .await;
    expect_error(r, 400, "invalid_request").await;
    // The legitimate owner can still use it: the failed attempts spent nothing.
    assert_eq!(s.refresh(&a, &rt).await.status(), 200);
}

async fn concurrent_refresh_has_one_winner(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["viewer"]).await;
    let rt = s.token_ok(&a, &[]).await["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let attempts = (0..8).map(|_| s.refresh(&a, &rt));
    let results = futures::future::join_all(attempts).await;
    let ok = results.iter().filter(|r| r.status() == 200).count();
    assert_eq!(ok, 1, "exactly one concurrent refresh may win");
}

async fn resource_selects_the_audience(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["admin"]).await;
    let body = s.token_ok(&a, &[("resource", &s.issuer)]).await;
    verify_with_jwks(
        &s,
        body["access_token"].as_str().unwrap_or_default(),
        &s.issuer,
    )
    .await;
    expect_error(
        s.token(&a, &[("resource", "https://unknown.example/api")])
            .await,
        400,
        "invalid_target",
    )
    .await;
    expect_error(
        s.token(&a, &[("resource", "not-a-uri")]).await,
        400,
        "invalid_target",
    )
    .await;
}

async fn last_used_is_batched(b: Backend) {
    let s = TestServer::start_with(b, &[("flush_interval", "60s")]).await;
    let a = s.create_account(&["viewer"]).await;
    s.token_ok(&a, &[]).await;
    s.token_ok(&a, &[]).await;
    // Nothing was written synchronously by the token requests...
    let now =
        s.db.find_account(None, &a.id)
            .await
            .expect("read")
            .expect("account");
    assert_eq!(now.last_used_at, None);
    let events = s.db.audit_for_target(&a.id).await.expect("audit");
    assert!(!events.iter().any(|e| e.action == "token.issued"));
    // ...and the batch lands on flush (here: graceful shutdown).
    let url = s.db_url.clone();
    let id = a.id.clone();
    let _dir = s.stop().await;
    let db2 = warden::db::Db::connect(&url).await.expect("reconnect");
    let after = db2
        .find_account(None, &id)
        .await
        .expect("read")
        .expect("account");
    assert!(
        after
            .last_used_at
            .is_some_and(|t| t > warden::now_unix() - 60)
    );
    let events = db2.audit_for_target(&id).await.expect("audit");
    assert_eq!(
        events.iter().filter(|e| e.action == "token.issued").count(),
        2
    );
}

async fn disable(s: &TestServer, id: &str) {
    use warden::domain::account::Status;
    warden::manage::accounts::set_status(
        &warden::manage::Scope::operator(&s.db),
        id,
        Status::Disabled,
    )
    .await
    .expect("disable");
}

async fn enable(s: &TestServer, id: &str) {
    use warden::domain::account::Status;
    warden::manage::accounts::set_status(
        &warden::manage::Scope::operator(&s.db),
        id,
        Status::Active,
    )
    .await
    .expect("enable");
}

both_backends!(
    client_credentials_basic_issues_verifiable_tokens,
    client_secret_post_works,
    bad_credentials_are_invalid_client,
    disabled_account_is_forbidden_but_wrong_secret_wins,
    expired_account_is_forbidden,
    deleted_account_is_unknown,
    secret_reset_kills_old_secret_and_refresh_tokens,
    removed_role_is_missing_from_new_tokens,
    scope_narrows_the_grant,
    ip_allowlist_and_trusted_proxies,
    refresh_rotates_and_reuse_revokes_the_family,
    refresh_token_is_bound_to_its_client,
    concurrent_refresh_has_one_winner,
    resource_selects_the_audience,
    last_used_is_batched,
);
