//! The admin plane's safety rules: who may act on whom, which permission
//! guards which endpoint, no lockout, no lost update, and secret rotation
//! that never cuts a deployed secret short.
use serde_json::{Value, json};

use crate::harness::{Account, Backend, TestServer, account_from, both_backends};

const SA: &str = "/api/v1/service-accounts";

/// Disables (as the operator) every active account of the default org but
/// `keep`, so they are its only possible managers.
async fn only_active(s: &TestServer, token: &str, keep: &[&str]) {
    let (_, list) = s.api("GET", &format!("{SA}?limit=200"), token, None).await;
    for x in list["items"].as_array().cloned().unwrap_or_default() {
        let id = x["id"].as_str().unwrap_or("").to_owned();
        if x["status"] == "active" && !keep.contains(&id.as_str()) {
            warden::manage::accounts::set_status(
                &warden::manage::Scope::operator(&s.db),
                &id,
                warden::domain::account::Status::Disabled,
            )
            .await
            .expect("operator disables");
        }
    }
}

/// Every action on an existing account, as (method, path, body).
fn actions(a: &Account) -> Vec<(&'static str, String, Option<Value>)> {
    let p = format!("{SA}/{}", a.id);
    vec![
        ("PATCH", p.clone(), Some(json!({"description": "mine now"}))),
        ("POST", format!("{p}/disable"), None),
        ("POST", format!("{p}/enable"), None),
        ("POST", format!("{p}/reset-secret"), None),
        ("POST", format!("{p}/rotate-secret"), None),
        ("DELETE", format!("{p}/secrets/arm_sk_aaaaa"), None),
        (
            "DELETE",
            format!("/api/v1/oauth/clients/{}", a.client_id),
            None,
        ),
        ("DELETE", p, None),
    ]
}

/// Item: an `org:manage` holder cannot take over an account that holds
/// more than it does (the review rotated an admin's secret and used it).
async fn acting_on_a_more_powerful_account_is_forbidden(b: Backend) {
    let s = TestServer::start(b).await;
    s.role("sa-manager", &["org:manage"]).await;
    s.role(
        "ops",
        &["org:manage", "org:read", "risks:read", "incidents:read"],
    )
    .await;
    let (_, mgr) = s.caller(&["sa-manager"]).await;
    let (_, ops) = s.caller(&["ops"]).await;
    let admin = s.create_account(&["admin"]).await;
    let viewer = s.create_account(&["risk-viewer", "viewer"]).await;
    for target in [&admin, &viewer] {
        for (m, p, body) in actions(target) {
            let (st, res) = s.api(m, &p, &mgr, body).await;
            assert_eq!(st, 403, "{m} {p}: {res}");
            assert!(res.get("client_secret").is_none());
        }
    }
    // `ops` holds everything the viewer holds but not the admin's.
    for (m, p, body) in actions(&admin) {
        assert_eq!(s.api(m, &p, &ops, body).await.0, 403, "{m} {p}");
    }
    let (st, rotated) = s
        .api(
            "POST",
            &format!("{SA}/{}/rotate-secret", viewer.id),
            &ops,
            None,
        )
        .await;
    assert_eq!(st, 200, "{rotated}");
    // The admin is untouched: same secret, same state, nothing audited.
    s.token_ok(&admin, &[]).await;
    let (_, root) = s.caller(&["admin"]).await;
    let (_, a) = s
        .api("GET", &format!("{SA}/{}", admin.id), &root, None)
        .await;
    assert_eq!(a["status"], "active");
    assert_eq!(a["description"], "");
    assert_eq!(a["secrets"].as_array().map(Vec::len), Some(1));
    let (_, audit) = s
        .api(
            "GET",
            &format!("/api/v1/audit-events?target={}", admin.id),
            &root,
            None,
        )
        .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .map(|l| l.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        actions
            .iter()
            .all(|a| *a == "service_account.created" || a.starts_with("token.")),
        "{actions:?}"
    );
    // An admin may act on an admin.
    let (st, _) = s
        .api(
            "POST",
            &format!("{SA}/{}/rotate-secret", admin.id),
            &root,
            None,
        )
        .await;
    assert_eq!(st, 200);
}

/// Item: reads need `org:read` (or `org:manage`), changes `org:manage`,
/// the audit log `audit:read`.
async fn every_permission_guards_something(b: Backend) {
    let s = TestServer::start(b).await;
    s.role("auditor", &["audit:read"]).await;
    s.role("sa-manager", &["org:manage"]).await;
    let (some, _) = s.caller(&["risk-viewer"]).await;
    let one = format!("{SA}/{}", some.id);
    let callers = [
        ("viewer", s.caller(&["viewer"]).await.1),
        ("auditor", s.caller(&["auditor"]).await.1),
        ("manager", s.caller(&["sa-manager"]).await.1),
        ("none", s.caller(&["risk-editor"]).await.1),
        ("admin", s.caller(&["admin"]).await.1),
    ];
    let create = || Some(json!({"name": "n", "roles": ["sa-manager"]}));
    let new_role = |i: usize| Some(json!({"id": format!("r{i}"), "permissions": ["risks:read"]}));
    for (i, (who, t)) in callers.iter().enumerate() {
        let reads = matches!(*who, "viewer" | "manager" | "admin");
        let manages = matches!(*who, "manager" | "admin");
        let audits = matches!(*who, "auditor" | "admin");
        let want = |ok: bool, yes: u16| if ok { yes } else { 403 };
        for p in [SA, one.as_str(), "/api/v1/roles"] {
            assert_eq!(
                s.api("GET", p, t, None).await.0,
                want(reads, 200),
                "{who} GET {p}"
            );
        }
        assert_eq!(
            s.api("GET", "/api/v1/audit-events", t, None).await.0,
            want(audits, 200),
            "{who} reads the audit log"
        );
        let (st, body) = s.api("POST", SA, t, create()).await;
        assert_eq!(st, want(manages, 201), "{who} creates: {body}");
        // The sa-manager holds no risks:read, so it may not define a role
        // with it: grant rules still apply once the endpoint is allowed.
        assert_eq!(
            s.api("POST", "/api/v1/roles", t, new_role(i)).await.0,
            want(*who == "admin", 201),
            "{who} creates a role"
        );
    }
}

/// Item: through the API no account can lock itself out, and no change
/// leaves the org without an active account holding `org:manage`.
async fn no_lockout_through_the_api(b: Backend) {
    let s = TestServer::start(b).await;
    let (me, t) = s.caller(&["admin"]).await;
    let mine = format!("{SA}/{}", me.id);
    for (body, why) in [
        (json!({"roles": ["viewer"]}), "org:manage"),
        (json!({"allowed_ips": ["10.0.0.0/8"]}), "allowlist"),
        (json!({"allowed_ips": ["::1"]}), "allowlist"),
    ] {
        let (st, res) = s.api("PATCH", &mine, &t, Some(body.clone())).await;
        assert_eq!(st, 409, "{body}: {res}");
        assert!(res["detail"].as_str().unwrap_or("").contains(why), "{res}");
    }
    for (m, p) in [
        ("POST", format!("{mine}/disable")),
        ("DELETE", mine.clone()),
        ("DELETE", format!("/api/v1/oauth/clients/{}", me.client_id)),
    ] {
        assert_eq!(s.api(m, &p, &t, None).await.0, 409, "{m} {p}");
    }
    // Changes that keep the caller able to manage from here are fine.
    for body in [
        json!({"roles": ["admin", "viewer"]}),
        json!({"allowed_ips": ["127.0.0.0/8", "10.0.0.0/8"]}),
        json!({"expires_in": "30d"}),
    ] {
        let (st, res) = s.api("PATCH", &mine, &t, Some(body)).await;
        assert_eq!(st, 200, "{res}");
    }
    assert_eq!(s.api("GET", SA, &t, None).await.0, 200, "still works");
    // Nothing of the refused changes was written.
    let (_, now) = s.api("GET", &mine, &t, None).await;
    assert_eq!(now["roles"], json!(["admin", "viewer"]));
    assert_eq!(now["status"], "active");

    // Two admins removing each other at the same moment: one wins, the
    // org keeps an admin. Each round on a fresh pair.
    for round in 0..8 {
        let (a, at) = s.caller(&["admin"]).await;
        let (b2, bt) = s.caller(&["admin"]).await;
        only_active(&s, &at, &[&a.id, &b2.id]).await;
        let (verb_a, verb_b) = if round % 2 == 0 {
            ("DELETE", "DELETE")
        } else {
            ("POST", "POST")
        };
        let path = |x: &Account| {
            if verb_a == "DELETE" {
                format!("{SA}/{}", x.id)
            } else {
                format!("{SA}/{}/disable", x.id)
            }
        };
        let (pa, pb) = (path(&b2), path(&a));
        let ((sa, ra), (sb, rb)) =
            tokio::join!(s.api(verb_a, &pa, &at, None), s.api(verb_b, &pb, &bt, None));
        assert!(
            (sa == 200) ^ (sb == 200),
            "round {round}: exactly one wins: {sa} {ra} / {sb} {rb}"
        );
        // The loser is refused by the guard, or, if it arrived after the
        // winner's change, no longer authenticates at all.
        let loser = if sa == 200 { sb } else { sa };
        assert!(loser == 409 || loser == 401, "{ra} {rb}");
        let survivor = if sa == 200 { &a } else { &b2 };
        s.token_ok(survivor, &[]).await;
        let (st, _) = s
            .api("GET", SA, if sa == 200 { &at } else { &bt }, None)
            .await;
        assert_eq!(st, 200, "round {round}: the survivor still manages");
    }
}

/// GET with its ETag.
async fn get_tagged(s: &TestServer, path: &str, t: &str) -> (Value, String) {
    let r = s
        .http
        .get(s.url(path))
        .bearer_auth(t)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().expect("etag").to_owned();
    (r.json().await.expect("json"), etag)
}

async fn patch_if(
    s: &TestServer,
    path: &str,
    t: &str,
    if_match: &str,
    body: Value,
) -> (u16, String) {
    let r = s
        .http
        .patch(s.url(path))
        .bearer_auth(t)
        .header("if-match", if_match)
        .json(&body)
        .send()
        .await
        .expect("patch");
    let etag = r
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (r.status().as_u16(), etag)
}

/// Item: concurrent PATCHes of different fields both land, and the audit
/// log says what really changed; `If-Match` refuses a stale edit.
async fn concurrent_edits_lose_nothing(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, t) = s.caller(&["admin"]).await;
    for round in 0..20 {
        let (_, created) = s
            .api(
                "POST",
                SA,
                &t,
                Some(json!({"name": "racy", "roles": ["viewer", "risk-viewer"],
                            "allowed_ips": ["10.0.0.0/8"]})),
            )
            .await;
        let p = format!("{SA}/{}", created["id"].as_str().unwrap_or(""));
        let desc = format!("round {round}");
        let (r1, r2, r3) = tokio::join!(
            s.api("PATCH", &p, &t, Some(json!({"roles": ["viewer"]}))),
            s.api("PATCH", &p, &t, Some(json!({"description": desc}))),
            s.api("PATCH", &p, &t, Some(json!({"allowed_ips": []}))),
        );
        assert_eq!((r1.0, r2.0, r3.0), (200, 200, 200), "{r1:?} {r2:?} {r3:?}");
        let (_, now) = s.api("GET", &p, &t, None).await;
        assert_eq!(now["roles"], json!(["viewer"]), "round {round}: {now}");
        assert_eq!(now["description"], desc, "round {round}");
        assert_eq!(now["allowed_ips"], json!([]), "round {round}");
        // Each audit record's `from` is the value really replaced.
        let (_, audit) = s
            .api(
                "GET",
                &format!(
                    "/api/v1/audit-events?action=service_account.updated&target={}",
                    now["id"].as_str().unwrap_or("")
                ),
                &t,
                None,
            )
            .await;
        let items = audit["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(items.len(), 3, "{audit}");
        for e in &items {
            let d = &e["details"];
            if let Some(r) = d.get("roles") {
                assert_eq!(r["from"], json!(["risk-viewer", "viewer"]));
            }
            if let Some(r) = d.get("allowed_ips") {
                assert_eq!(r["from"], json!(["10.0.0.0/8"]));
            }
        }
    }
    // ETag and If-Match.
    let (_, created) = s
        .api(
            "POST",
            SA,
            &t,
            Some(json!({"name": "tagged", "roles": ["viewer"]})),
        )
        .await;
    let p = format!("{SA}/{}", created["id"].as_str().unwrap_or(""));
    let (_, e1) = get_tagged(&s, &p, &t).await;
    assert!(e1.starts_with('"') && e1.ends_with('"'), "{e1}");
    let (st, e2) = patch_if(&s, &p, &t, &e1, json!({"name": "first"})).await;
    assert_eq!(st, 200);
    assert_ne!(e2, e1, "the version moved on");
    let (st, _) = patch_if(&s, &p, &t, &e1, json!({"name": "stale"})).await;
    assert_eq!(st, 412, "a stale ETag is refused");
    let (st, _) = patch_if(&s, &p, &t, &format!("W/{e2}"), json!({"name": "weak"})).await;
    assert_eq!(
        st, 412,
        "weak tags never match (RFC 9110 strong comparison)"
    );
    let (now, e3) = get_tagged(&s, &p, &t).await;
    assert_eq!(now["name"], "first", "nothing written by refused edits");
    assert_eq!(e3, e2);
    let (st, _) = patch_if(&s, &p, &t, "*", json!({"name": "any"})).await;
    assert_eq!(st, 200);
    // Operator changes move the version too.
    let (_, e4) = get_tagged(&s, &p, &t).await;
    warden::manage::accounts::set_status(
        &warden::manage::Scope::operator(&s.db),
        created["id"].as_str().unwrap_or(""),
        warden::domain::account::Status::Disabled,
    )
    .await
    .expect("disable");
    let (st, _) = patch_if(&s, &p, &t, &e4, json!({"name": "late"})).await;
    assert_eq!(st, 412);
}

/// Item: each rotated-out secret keeps its own grace; live secrets are
/// capped; one can be ended early; reset ends all.
async fn rotation_keeps_every_grace(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, t) = s.caller(&["admin"]).await;
    let first = s.create_account(&["viewer"]).await;
    let rotate = |grace: &'static str| {
        let p = format!("{SA}/{}/rotate-secret", first.id);
        let t = t.clone();
        let s = &s;
        async move {
            s.api("POST", &p, &t, Some(json!({"grace_period": grace})))
                .await
        }
    };
    let (st, r2) = rotate("1h").await;
    assert_eq!(st, 200);
    // The retry of a rotation whose answer was lost: the first secret,
    // still deployed somewhere, keeps working.
    let (st, r3) = rotate("1h").await;
    assert_eq!(st, 200);
    let second = Account {
        secret: r2["client_secret"].as_str().unwrap_or("").into(),
        ..first.clone()
    };
    let third = Account {
        secret: r3["client_secret"].as_str().unwrap_or("").into(),
        ..first.clone()
    };
    for a in [&first, &second, &third] {
        s.token_ok(a, &[]).await;
    }
    assert_eq!(r3["secrets"].as_array().map(Vec::len), Some(3), "{r3}");
    // End the first one early, by its prefix.
    let prefix = &first.secret[..12];
    let (st, v) = s
        .api(
            "DELETE",
            &format!("{SA}/{}/secrets/{prefix}", first.id),
            &t,
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(s.token(&first, &[]).await.status(), 401);
    s.token_ok(&second, &[]).await;
    s.token_ok(&third, &[]).await;
    let current = &third.secret[..12];
    assert_eq!(
        s.api(
            "DELETE",
            &format!("{SA}/{}/secrets/{current}", first.id),
            &t,
            None
        )
        .await
        .0,
        409,
        "the current secret is replaced by reset, not revoked"
    );
    assert_eq!(
        s.api(
            "DELETE",
            &format!("{SA}/{}/secrets/{prefix}", first.id),
            &t,
            None
        )
        .await
        .0,
        404
    );
    // Two live now; three more rotations reach the cap of five.
    for _ in 0..3 {
        assert_eq!(rotate("1h").await.0, 200);
    }
    let (st, full) = rotate("1h").await;
    assert_eq!(st, 409, "{full}");
    // A rotation without grace replaces the current secret only, so it
    // fits under the cap.
    let (st, v) = rotate("0s").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["secrets"].as_array().map(Vec::len), Some(5));
    s.token_ok(&second, &[]).await;
    // Reset ends every other secret at once.
    let (st, reset) = s
        .api("POST", &format!("{SA}/{}/reset-secret", first.id), &t, None)
        .await;
    assert_eq!(st, 200);
    for a in [&second, &third] {
        assert_eq!(s.token(a, &[]).await.status(), 401);
    }
    s.token_ok(&account_from(&reset), &[]).await;
    assert_eq!(reset["secrets"].as_array().map(Vec::len), Some(1));
    // Ending a secret only takes access away: allowed while disabled.
    let (_, again) = rotate("1h").await;
    let base = format!("{SA}/{}", first.id);
    assert_eq!(
        s.api("POST", &format!("{base}/disable"), &t, None).await.0,
        200
    );
    let old = account_from(&reset);
    let (st, v) = s
        .api(
            "DELETE",
            &format!("{base}/secrets/{}", &old.secret[..12]),
            &t,
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        s.api("POST", &format!("{base}/enable"), &t, None).await.0,
        200
    );
    assert_eq!(s.token(&old, &[]).await.status(), 401);
    s.token_ok(&account_from(&again), &[]).await;
}

/// Item: IPv4-mapped blocks below /96 and names that hide or reorder
/// characters are refused (422, naming the field) and change nothing.
async fn spoofing_input_is_refused(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, t) = s.caller(&["admin"]).await;
    let (st, ok) = s
        .api(
            "POST",
            SA,
            &t,
            Some(json!({"name": "mapped", "roles": ["viewer"],
                        "allowed_ips": ["::ffff:10.0.0.0/104", "::ffff:192.0.2.7"]})),
        )
        .await;
    assert_eq!(st, 201, "{ok}");
    assert_eq!(ok["allowed_ips"], json!(["10.0.0.0/8", "192.0.2.7/32"]));
    let p = format!("{SA}/{}", ok["id"].as_str().unwrap_or(""));
    for cidr in ["::ffff:10.0.0.0/8", "::ffff:10.0.0.0/95"] {
        for (m, path) in [("POST", SA), ("PATCH", p.as_str())] {
            let (st, res) = s
                .api(
                    m,
                    path,
                    &t,
                    Some(json!({"name": "x", "roles": ["viewer"], "allowed_ips": [cidr]})),
                )
                .await;
            assert_eq!(st, 422, "{m} {cidr}: {res}");
            assert_eq!(res["field"], "allowed_ips");
        }
    }
    for name in [
        "deploy\u{202E}nimda",
        "ad\u{200B}min",
        "\u{FEFF}ci",
        "\u{2067}ci\u{2069}",
        "\u{200D}",
        " \u{3000} ",
        "\u{3164}",
        "a\u{2028}b",
    ] {
        for (m, path) in [("POST", SA), ("PATCH", p.as_str())] {
            let (st, res) = s
                .api(
                    m,
                    path,
                    &t,
                    Some(json!({"name": name, "roles": ["viewer"]})),
                )
                .await;
            assert_eq!(st, 422, "{m} {name:?}: {res}");
            assert_eq!(res["field"], "name");
        }
    }
    // A NUL byte in an id or a filter is a client error, not a database
    // one (PostgreSQL refuses NUL in text).
    assert_eq!(s.api("GET", &format!("{SA}/a%00b"), &t, None).await.0, 404);
    assert_eq!(
        s.api("POST", &format!("{SA}/a%00b/disable"), &t, None)
            .await
            .0,
        404
    );
    for q in ["q=a%00b", "cursor=YQBi"] {
        let st = s.api("GET", &format!("{SA}?{q}"), &t, None).await.0;
        assert!(st == 400 || st == 422, "{q}: {st}");
    }
    assert_eq!(
        s.api("GET", "/api/v1/audit-events?actor=a%00b", &t, None)
            .await
            .0,
        400
    );
    let (_, now) = s.api("GET", &p, &t, None).await;
    assert_eq!(now["name"], "mapped");
    assert_eq!(now["allowed_ips"], json!(["10.0.0.0/8", "192.0.2.7/32"]));
}

/// Item: no resource server may have the issuer as audience (it could
/// introspect and revoke every admin token), and a refresh token stops
/// working when its resource server is deleted.
async fn resource_servers_never_hold_the_issuer(b: Backend) {
    let s = TestServer::start(b).await;
    for aud in [s.issuer.clone(), format!("{}/", s.issuer)] {
        let r = warden::manage::resource_servers::create(
            &s.db,
            "sneaky",
            &aud,
            Vec::new(),
            &s.issuer,
            &warden::manage::Actor::operator(),
            warden::now_unix(),
        )
        .await;
        assert!(
            matches!(r, Err(warden::manage::ManageError::Invalid(ref f)) if f.field == "audience"),
            "{aud}: {:?}",
            r.map(|x| x.0.audience)
        );
    }
    // One registered that way before this rule (an older database) cannot
    // use its credentials at all.
    let rs = s.create_resource_server("https://sneaky.example").await;
    s.sql(
        &format!(
            "UPDATE resource_servers SET audience = '{}' WHERE id = $1",
            s.issuer
        ),
        &rs.id,
    )
    .await;
    let (adm, admin_token) = s.caller(&["admin"]).await;
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        let r = s
            .post_form(
                path,
                &[("token", &admin_token)],
                Some((&rs.client_id, &rs.secret)),
            )
            .await;
        assert_eq!(r.status(), 401, "{path}");
    }
    assert_eq!(
        s.api("GET", SA, &admin_token, None).await.0,
        200,
        "not revoked"
    );

    // Refresh re-checks the audience.
    let api = s.create_resource_server("https://billing.example").await;
    let first = s.token_ok(&adm, &[("resource", &api.audience)]).await;
    let rt = first["refresh_token"].as_str().unwrap_or("").to_owned();
    let r = s.refresh(&adm, &rt).await;
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.expect("json");
    let rt2 = second["refresh_token"].as_str().unwrap_or("").to_owned();
    warden::manage::resource_servers::delete(
        &s.db,
        &api.id,
        &warden::manage::Actor::operator(),
        warden::now_unix(),
    )
    .await
    .expect("delete");
    crate::harness::expect_error(s.refresh(&adm, &rt2).await, 400, "invalid_grant").await;
    let r = s
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt2),
                ("resource", &api.audience),
            ],
            Some((&adm.client_id, &adm.secret)),
        )
        .await;
    crate::harness::expect_error(r, 400, "invalid_target").await;
    // Nor can it be turned into a token for another audience (RFC 8707
    // §2.2: only resources within the original grant), the issuer least.
    for other in [s.issuer.clone(), "urn:warden:default".to_owned()] {
        let r = s
            .post_form(
                "/oauth/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt2),
                    ("resource", &other),
                ],
                Some((&adm.client_id, &adm.secret)),
            )
            .await;
        crate::harness::expect_error(r, 400, "invalid_target").await;
    }
    crate::harness::expect_error(
        s.token(&adm, &[("resource", &api.audience)]).await,
        400,
        "invalid_target",
    )
    .await;
}

/// Item: a revoked refresh family stays revoked as long as any of its
/// tokens can be presented, even after the refresh TTL is lowered.
async fn lowering_the_refresh_ttl_never_resurrects_a_family(b: Backend) {
    let s = TestServer::start_with(b, &[("refresh_token_ttl", "30d")]).await;
    let a = s.create_account(&["viewer"]).await;
    let first = s.token_ok(&a, &[]).await;
    let t1 = first["refresh_token"].as_str().unwrap_or("").to_owned();
    let r = s.refresh(&a, &t1).await;
    assert_eq!(r.status(), 200);
    let t2 = r.json::<Value>().await.expect("json")["refresh_token"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let long = s.token_ok(&a, &[]).await["refresh_token"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    // The operator lowers the refresh TTL to 5 minutes.
    let url = s.db_url.clone();
    let dir = s.stop().await;
    let s = TestServer::start_on(b, dir, &url, &[("refresh_token_ttl", "5m")]).await;
    // Reuse of the spent first token revokes the family, t2 included.
    crate::harness::expect_error(s.refresh(&a, &t1).await, 400, "invalid_grant").await;
    // Hourly pruning a day later: t2 still lives (30 days), so its
    // family's revocation must still be there.
    let now = warden::now_unix();
    s.db.prune_refresh_state(now + 86_400).await.expect("prune");
    crate::harness::expect_error(s.refresh(&a, &t2).await, 400, "invalid_grant").await;
    // And the same through revocation: a family issued under the long
    // TTL, revoked after it was lowered, pruned a day later.
    let r = s
        .post_form(
            "/oauth/revoke",
            &[("token", &long), ("token_type_hint", "refresh_token")],
            Some((&a.client_id, &a.secret)),
        )
        .await;
    assert_eq!(r.status(), 200);
    s.db.prune_refresh_state(now + 86_400).await.expect("prune");
    crate::harness::expect_error(s.refresh(&a, &long).await, 400, "invalid_grant").await;
}

/// Usage of `a` as the admin API reports it.
async fn usage(s: &TestServer, t: &str, a: &Account) -> Value {
    let (st, u) = s.api("GET", &format!("{SA}/{}/usage", a.id), t, None).await;
    assert_eq!(st, 200, "{u}");
    u
}

fn total(u: &Value, field: &str) -> i64 {
    u["hours"]
        .as_array()
        .map(|h| h.iter().filter_map(|x| x[field].as_i64()).sum())
        .unwrap_or(0)
}

async fn actions_for(s: &TestServer, t: &str, a: &Account) -> Vec<String> {
    s.state.bookkeeper.flush(&s.db).await;
    let (_, audit) = s
        .api(
            "GET",
            &format!("/api/v1/audit-events?target={}&limit=500", a.id),
            t,
            None,
        )
        .await;
    audit["items"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|e| e["action"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Item: per-account hourly counters and the last address are kept
/// always; which per-token events reach the audit log is a setting.
async fn token_events_are_a_setting_and_counters_always_count(b: Backend) {
    for (setting, issued_events, failed_events) in
        [("all", 4, 2), ("failures", 0, 2), ("none", 0, 0)]
    {
        let s = TestServer::start_with(b, &[("audit_token_events", setting)]).await;
        let (_, t) = s.caller(&["admin"]).await;
        let a = s.create_account(&["viewer"]).await;
        let mut rt = String::new();
        for _ in 0..3 {
            rt = s.token_ok(&a, &[]).await["refresh_token"]
                .as_str()
                .unwrap_or("")
                .to_owned();
        }
        assert_eq!(s.refresh(&a, &rt).await.status(), 200);
        let wrong = Account {
            secret: warden::domain::credentials::ClientSecret::generate()
                .expose()
                .to_owned(),
            ..a.clone()
        };
        for _ in 0..2 {
            assert_eq!(s.token(&wrong, &[]).await.status(), 401);
        }
        // Repeated failures of a minute are one event with a count, written
        // when the minute is over; shutdown writes them all.
        s.state.bookkeeper.flush_all(&s.db).await;
        let actions = actions_for(&s, &t, &a).await;
        let n = |p: &str| actions.iter().filter(|x| x.starts_with(p)).count();
        assert_eq!(n("token."), issued_events, "{setting}: {actions:?}");
        assert_eq!(n("client.auth_failed"), failed_events, "{setting}");
        assert_eq!(n("service_account.created"), 1, "admin changes always");
        let u = usage(&s, &t, &a).await;
        assert_eq!(total(&u, "issued"), 3, "{setting}: {u}");
        assert_eq!(total(&u, "refreshed"), 1, "{setting}: {u}");
        assert_eq!(total(&u, "failed"), 2, "{setting}: {u}");
        assert_eq!(u["last_used_ip"], "127.0.0.1", "{u}");
        assert!(u["last_used_at"].is_string());
        let (_, view) = s.api("GET", &format!("{SA}/{}", a.id), &t, None).await;
        assert_eq!(view["last_used_ip"], "127.0.0.1");
    }
}

/// Item: retention prunes old audit events and counts in small batches
/// while requests go on, and keeps what is recent.
async fn audit_retention_prunes_without_blocking(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, t) = s.caller(&["admin"]).await;
    let a = s.create_account(&["viewer"]).await;
    let now = warden::now_unix();
    let old = now - 200 * 86_400;
    let ev = |at: i64, n: usize| {
        warden::db::AuditEvent::new("service_account", &a.id, &format!("test.event{n}"), at)
            .in_org("default")
            .on("service_account", &a.id)
    };
    let batch = warden::bookkeeping::Batch {
        last_used: vec![],
        credential_used: vec![],
        secret_used: vec![],
        usage: vec![(a.id.clone(), old - old.rem_euclid(3600), [5, 0, 0])],
        events: (0..9_000).map(|n| ev(old + (n as i64 % 100), n)).collect(),
    };
    s.db.flush_bookkeeping(&batch).await.expect("old rows");
    let recent = warden::bookkeeping::Batch {
        last_used: vec![],
        credential_used: vec![],
        secret_used: vec![],
        usage: vec![],
        events: vec![ev(now - 86_400, 0)],
    };
    s.db.flush_bookkeeping(&recent).await.expect("recent row");
    let cutoff = now - 180 * 86_400;
    let prune =
        s.db.prune_audit(cutoff, std::time::Duration::from_millis(5));
    let traffic = async {
        let mut ok = 0;
        for _ in 0..20 {
            if s.token(&a, &[]).await.status() == 200 {
                ok += 1;
            }
        }
        ok
    };
    let (pruned, ok) = tokio::join!(prune, traffic);
    assert!(pruned.expect("prune") >= 9_001);
    assert_eq!(ok, 20, "tokens kept flowing while pruning");
    let actions = actions_for(&s, &t, &a).await;
    assert_eq!(
        actions.iter().filter(|x| x.starts_with("test.")).count(),
        1,
        "only the recent event is left"
    );
    let (st, u) = s
        .api("GET", &format!("{SA}/{}/usage?hours=2232", a.id), &t, None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(total(&u, "issued"), 20, "the old hour is gone: {u}");
}

/// Sends the head of a JSON request and part of its body; the caller
/// sends the rest later (a slow client, or one holding a request open).
async fn start_slow(
    s: &TestServer,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (tokio::net::TcpStream, String) {
    use tokio::io::AsyncWriteExt;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut c = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).await.expect("head");
    c.write_all(&body.as_bytes()[..3])
        .await
        .expect("start of body");
    (c, body[3..].to_owned())
}

async fn finish_slow(mut c: tokio::net::TcpStream, rest: String) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    c.write_all(rest.as_bytes()).await.expect("rest of body");
    let mut out = Vec::new();
    c.read_to_end(&mut out).await.expect("response");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Review finding: the caller is checked again inside every write, so a
/// request that started before its account was disabled or deleted (here
/// one whose body is still arriving) cannot finish: not a rotation of
/// another admin's secret, not a new admin account, not a new role.
async fn a_removed_caller_cannot_finish_a_request(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, root) = s.caller(&["admin"]).await;
    let victim = s.create_account(&["admin"]).await;
    // Every permission an admin holds, without the admin role itself.
    let admin = warden::domain::roles::builtin_permissions("admin").unwrap_or_default();
    s.role("all", admin).await;
    for removal in ["disable", "delete", "demote", "unadmin", "expire"] {
        let (mallory, mt) = s.caller(&["admin", "all"]).await;
        let slow = [
            (
                "POST",
                format!("{SA}/{}/rotate-secret", victim.id),
                r#"{"grace_period":"1h"}"#.to_owned(),
            ),
            (
                "POST",
                SA.to_owned(),
                format!(r#"{{"name":"backdoor-{removal}","roles":["admin"]}}"#),
            ),
            (
                "POST",
                "/api/v1/roles".to_owned(),
                format!(r#"{{"id":"backdoor-{removal}","permissions":["org:manage"]}}"#),
            ),
        ];
        let mut open = Vec::new();
        for (m, p, body) in &slow {
            open.push(start_slow(&s, m, p, &mt, body).await);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let p = format!("{SA}/{}", mallory.id);
        let st = match removal {
            "disable" => s.api("POST", &format!("{p}/disable"), &root, None).await.0,
            "delete" => s.api("DELETE", &p, &root, None).await.0,
            "demote" => {
                s.api("PATCH", &p, &root, Some(json!({"roles": ["viewer"]})))
                    .await
                    .0
            }
            // Loses the admin role but keeps every permission through
            // another role: the admin-only rules must still stop it.
            "unadmin" => {
                s.api("PATCH", &p, &root, Some(json!({"roles": ["all"]})))
                    .await
                    .0
            }
            // Expires while the request is in flight.
            _ => {
                let at = warden::now_unix() + 1;
                s.sql(
                    &format!("UPDATE service_accounts SET expires_at = {at} WHERE id = $1"),
                    &mallory.id,
                )
                .await;
                tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
                200
            }
        };
        assert_eq!(st, 200, "{removal}");
        for (c, rest) in open {
            let (st, text) = finish_slow(c, rest).await;
            assert_eq!(st, 409, "{removal}: {text}");
            assert!(!text.contains("client_secret"), "{text}");
        }
    }
    // Nothing of it landed: the victim's secret still works, no backdoor.
    s.token_ok(&victim, &[]).await;
    let (_, list) = s.api("GET", &format!("{SA}?q=backdoor"), &root, None).await;
    assert_eq!(list["items"], json!([]), "{list}");
    let (_, roles) = s.api("GET", "/api/v1/roles", &root, None).await;
    assert!(!roles.to_string().contains("backdoor"), "{roles}");
}

/// Review finding: two admins fencing each other out by allowlist (or one
/// disabling while the other fences) at the same moment: the second write
/// finds its own caller no longer able to manage and is refused, so the
/// org keeps a working admin.
async fn admins_fencing_each_other_keep_one_working(b: Backend) {
    let s = TestServer::start(b).await;
    for round in 0..6 {
        // The org's managers: exactly this pair.
        let (a, at) = s.caller(&["admin"]).await;
        let (b2, bt) = s.caller(&["admin"]).await;
        only_active(&s, &at, &[&a.id, &b2.id]).await;
        let fence = json!({"allowed_ips": ["192.0.2.1/32"]});
        let (pa, pb) = (format!("{SA}/{}", b2.id), format!("{SA}/{}", a.id));
        let disable_b = format!("{pa}/disable");
        let (ra, rb) = if round % 2 == 0 {
            tokio::join!(
                s.api("PATCH", &pa, &at, Some(fence.clone())),
                s.api("PATCH", &pb, &bt, Some(fence.clone())),
            )
        } else {
            tokio::join!(
                s.api("POST", &disable_b, &at, None),
                s.api("PATCH", &pb, &bt, Some(fence.clone())),
            )
        };
        assert!(
            (ra.0 == 200) ^ (rb.0 == 200),
            "round {round}: exactly one wins: {ra:?} {rb:?}"
        );
        let (winner, wt) = if ra.0 == 200 { (&a, &at) } else { (&b2, &bt) };
        s.token_ok(winner, &[]).await;
        assert_eq!(s.api("GET", SA, wt, None).await.0, 200, "round {round}");
    }
}

both_backends!(
    acting_on_a_more_powerful_account_is_forbidden,
    every_permission_guards_something,
    no_lockout_through_the_api,
    concurrent_edits_lose_nothing,
    rotation_keeps_every_grace,
    spoofing_input_is_refused,
    resource_servers_never_hold_the_issuer,
    lowering_the_refresh_ttl_never_resurrects_a_family,
    token_events_are_a_setting_and_counters_always_count,
    audit_retention_prunes_without_blocking,
    a_removed_caller_cannot_finish_a_request,
    admins_fencing_each_other_keep_one_working,
);
