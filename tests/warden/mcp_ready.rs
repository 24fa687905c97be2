//! MCP-ready (issue 23), the rules under the SDKs' flows: an authorization
//! endpoint that exists and refuses, one resource in any spelling (RFC 3986
//! §6.2.3), client-assertion audiences per rfc7523bis, each API's RFC 9728
//! document, and an org without a managing account still editable.
use data_encoding::BASE64URL_NOPAD as B64;
use serde_json::{Value, json};

use crate::harness::{Backend, TestServer, both_backends, expect_error};
use crate::keys::{add_key, assertion, assertion_typed, new_key, token_with};

const API: &str = "https://api.example.com";

/// The claims of a JWT, unverified (the signature is another test's).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("payload");
    serde_json::from_slice(&B64.decode(payload.as_bytes()).expect("b64")).expect("json")
}

async fn the_authorization_endpoint_refuses_every_request(b: Backend) {
    let s = TestServer::start(b).await;
    let m = s.get_json("/.well-known/oauth-authorization-server").await;
    let endpoint = format!("{}/oauth/authorize", s.issuer);
    assert_eq!(m["authorization_endpoint"], endpoint.as_str());
    assert_eq!(m["response_types_supported"], json!([]));
    let query =
        "?response_type=code&client_id=x&redirect_uri=https://evil.example/cb&state=<script>";
    for r in [
        s.http.get(format!("{endpoint}{query}")).send().await,
        s.http
            .post(&endpoint)
            .form(&[("response_type", "token")])
            .send()
            .await,
        s.http.get(&endpoint).send().await,
    ] {
        let r = r.expect("send");
        assert!(r.headers().get("location").is_none(), "never redirects");
        expect_error(r, 400, "unsupported_response_type").await;
    }
    // A browser gets a page that says so, echoing nothing of the request.
    let r = s
        .http
        .get(format!("{endpoint}{query}"))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap_or("")
            .contains("default-src 'none'")
    );
    let page = r.text().await.expect("page");
    assert!(page.contains("unsupported_response_type"), "{page}");
    assert!(
        !page.contains("evil") && !page.contains("<script>"),
        "{page}"
    );
}

async fn a_resource_is_one_whatever_its_spelling(b: Backend) {
    let s = TestServer::start(b).await;
    let rs = s
        .create_api(API, &[("billing:read", "Read invoices")])
        .await;
    s.role("billing-reader", &["billing:read"]).await;
    let a = s.create_account(&["billing-reader"]).await;
    // As the MCP TypeScript SDK sends it (URL.href), and other spellings:
    // each gets a token whose aud is the registered spelling.
    for spelling in [
        "https://api.example.com/",
        "HTTPS://API.example.com:443",
        "https://api.example.com:443/",
    ] {
        let t = s.token_ok(&a, &[("resource", spelling)]).await;
        let token = t["access_token"].as_str().expect("token");
        assert_eq!(claims(token)["aud"], API, "{spelling}");
        assert_eq!(t["scope"], "billing:read", "{spelling}");
        assert!(s.is_active(&rs, token, None).await, "{spelling}");
        // A refresh may name its resource in any spelling too.
        let rt = t["refresh_token"].as_str().expect("refresh");
        let r = s
            .post_form(
                "/oauth/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt),
                    ("resource", "https://API.example.com/"),
                ],
                Some((&a.client_id, &a.secret)),
            )
            .await;
        assert_eq!(r.status(), 200, "{spelling}");
    }
    // Another path is another resource.
    let r = s
        .token(&a, &[("resource", "https://api.example.com/v2")])
        .await;
    expect_error(r, 400, "invalid_target").await;
    // Registering the same resource again, in another spelling, conflicts.
    let (_, op) = s.caller(&["operator"]).await;
    for spelling in ["https://api.example.com/", "https://API.EXAMPLE.COM:443"] {
        let body = json!({"name": "again", "audience": spelling});
        let (st, e) = s
            .api("POST", "/api/v1/resource-servers", &op, Some(body))
            .await;
        assert_eq!(st, 409, "{spelling}: {e}");
    }
    // The issuer with a trailing slash is the admin API: aud is the issuer.
    let (admin, _) = s.caller(&["admin"]).await;
    let slash = format!("{}/", s.issuer);
    let t = s.token_ok(&admin, &[("resource", &slash)]).await;
    let token = t["access_token"].as_str().expect("token");
    assert_eq!(claims(token)["aud"], s.issuer.as_str());
    assert_eq!(
        s.api("GET", "/api/v1/service-accounts", token, None)
            .await
            .0,
        200
    );
    // An account limited to the API in one spelling gets it in another.
    let id = format!("/api/v1/service-accounts/{}", a.id);
    let (_, admin_token) = s.caller(&["admin"]).await;
    let body = json!({"allowed_resources": ["https://API.example.com/", API]});
    let (st, v) = s.api("PATCH", &id, &admin_token, Some(body)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["allowed_resources"],
        json!(["https://API.example.com/"]),
        "one entry"
    );
    let t = s.token_ok(&a, &[("resource", API)]).await;
    let token = t["access_token"].as_str().expect("token");
    assert!(s.is_active(&rs, token, None).await);
}

async fn each_api_has_its_protected_resource_metadata(b: Backend) {
    let s = TestServer::start(b).await;
    let rs = s
        .create_api(
            API,
            &[("mcp:tools:call", "Call tools"), ("mcp:read", "Read")],
        )
        .await;
    let bare = s.create_resource_server("urn:example:bare").await;
    let (_, op) = s.caller(&["operator"]).await;
    let path = |id: &str| format!("/api/v1/resource-servers/{id}/protected-resource-metadata");
    let (st, doc) = s.api("GET", &path(&rs.id), &op, None).await;
    assert_eq!(st, 200, "{doc}");
    assert_eq!(
        doc,
        json!({"resource": API, "authorization_servers": [s.issuer],
               "scopes_supported": ["mcp:read", "mcp:tools:call"],
               "bearer_methods_supported": ["header"], "resource_name": "api"})
    );
    // One that declares no permissions lists no scopes (its tokens carry
    // all the account's).
    let (_, doc) = s.api("GET", &path(&bare.client_id), &op, None).await;
    assert!(doc.get("scopes_supported").is_none(), "{doc}");
    // The platform's: an org admin may not read it; a deleted one has none.
    let (_, admin) = s.caller(&["admin"]).await;
    assert_eq!(s.api("GET", &path(&rs.id), &admin, None).await.0, 403);
    assert_eq!(
        s.api(
            "DELETE",
            &format!("/api/v1/resource-servers/{}", bare.id),
            &op,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(s.api("GET", &path(&bare.id), &op, None).await.0, 404);
    assert_eq!(s.api("GET", &path("nope"), &op, None).await.0, 404);
}

async fn client_assertion_audiences(b: Backend) {
    for strict in [false, true] {
        let extra: &[(&str, &str)] = if strict {
            &[("client_assertion_audience", "strict")]
        } else {
            &[]
        };
        let s = TestServer::start_with(b, extra).await;
        let (_, admin) = s.caller(&["admin"]).await;
        let a = s.create_account(&["viewer"]).await;
        let key = new_key("k1");
        assert_eq!(add_key(&s, &admin, &a, &key.jwk).await.0, 201);
        let iss = s.issuer.clone();
        let endpoint = format!("{iss}/oauth/token");
        // (aud, accepted by default, accepted when strict)
        for (aud, default_ok, strict_ok) in [
            (json!(iss), true, true),
            (json!([iss]), true, true),
            (json!(endpoint), true, false),
            (json!([iss, endpoint]), true, false),
            (json!([iss, "https://other.example"]), false, false),
            (json!(["https://other.example", endpoint]), false, false),
            (json!(format!("{iss}/oauth/introspect")), false, false),
            (json!([]), false, false),
        ] {
            let jwt = assertion(&s, &key, &a.client_id, json!({ "aud": aud }));
            let (st, body) = token_with(&s, &jwt, &[]).await;
            let want = if strict { strict_ok } else { default_ok };
            assert_eq!(
                st,
                if want { 200 } else { 401 },
                "strict={strict} aud={aud}: {body}"
            );
        }
        // The header's typ: a client assertion's, never an access token's.
        for (typ, ok) in [
            (None, true),
            (Some("JWT"), true),
            (Some("client-authentication+jwt"), true),
            (Some("at+jwt"), false),
            (Some("application/at+jwt"), false),
        ] {
            let jwt = assertion_typed(&s, &key, &a.client_id, json!({"aud": iss}), typ);
            let (st, body) = token_with(&s, &jwt, &[]).await;
            assert_eq!(st, if ok { 200 } else { 401 }, "typ {typ:?}: {body}");
        }
        // At revocation, the endpoint called is a fine audience too (found
        // by review: only the token endpoint's was taken).
        let t = token_with(
            &s,
            &assertion(&s, &key, &a.client_id, json!({"aud": iss})),
            &[],
        )
        .await
        .1;
        let revoke = format!("{iss}/oauth/revoke");
        let jwt = assertion(&s, &key, &a.client_id, json!({ "aud": revoke }));
        let form = [
            ("token", t["refresh_token"].as_str().unwrap_or_default()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", jwt.as_str()),
        ];
        let st = s
            .post_form("/oauth/revoke", &form, None)
            .await
            .status()
            .as_u16();
        assert_eq!(
            st,
            if strict { 401 } else { 200 },
            "strict={strict}: revoke"
        );
        // A secret and an assertion together: one method per request.
        let jwt = assertion(&s, &key, &a.client_id, json!({"aud": iss}));
        let (st, body) = token_with(
            &s,
            &jwt,
            &[("client_id", &a.client_id), ("client_secret", &a.secret)],
        )
        .await;
        assert_eq!(
            (st, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{body}"
        );
        let form = [
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", jwt.as_str()),
        ];
        let r = s
            .post_form("/oauth/token", &form, Some((&a.client_id, &a.secret)))
            .await;
        expect_error(r, 400, "invalid_request").await;
    }
}

/// Found while measuring (issue 23, item 5): an org that has no active
/// account holding `org:manage` can still be edited; what is refused is a
/// change that takes the last holder away.
async fn an_org_without_a_manager_stays_editable(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, op) = s.caller(&["operator"]).await;
    let (st, _) = s
        .api(
            "POST",
            "/api/v1/orgs",
            &op,
            Some(json!({"slug": "acme", "name": "Acme"})),
        )
        .await;
    assert_eq!(st, 201);
    let base = "/api/v1/orgs/acme/service-accounts";
    let (st, v) = s
        .api(
            "POST",
            base,
            &op,
            Some(json!({"name": "reader", "roles": ["viewer"]})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let reader = format!("{base}/{}", v["id"].as_str().expect("id"));
    // No one in acme holds org:manage: a change that removes no one's is fine.
    for body in [
        json!({"allowed_resources": [API]}),
        json!({"name": "reader 2"}),
        json!({"roles": ["viewer"], "expires_in": "30d"}),
    ] {
        let (st, v) = s.api("PATCH", &reader, &op, Some(body.clone())).await;
        assert_eq!(st, 200, "{body}: {v}");
    }
    assert_eq!(
        s.api("POST", &format!("{reader}/disable"), &op, None)
            .await
            .0,
        200
    );
    // Once acme has a manager, taking the last one away is refused.
    let (st, v) = s
        .api(
            "POST",
            base,
            &op,
            Some(json!({"name": "boss", "roles": ["admin"]})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let boss = format!("{base}/{}", v["id"].as_str().expect("id"));
    for (m, p, body) in [
        ("PATCH", boss.clone(), Some(json!({"roles": ["viewer"]}))),
        ("POST", format!("{boss}/disable"), None),
        ("DELETE", boss.clone(), None),
    ] {
        let (st, e) = s.api(m, &p, &op, body).await;
        assert_eq!(st, 409, "{m} {p}: {e}");
        assert!(
            e["detail"].as_str().unwrap_or("").contains("org:manage"),
            "{e}"
        );
    }
    let (_, now) = s.api("GET", &boss, &op, None).await;
    assert_eq!(
        (now["roles"].clone(), now["status"].clone()),
        (json!(["admin"]), json!("active"))
    );
}

both_backends!(
    the_authorization_endpoint_refuses_every_request,
    a_resource_is_one_whatever_its_spelling,
    each_api_has_its_protected_resource_metadata,
    client_assertion_audiences,
    an_org_without_a_manager_stays_editable,
);
