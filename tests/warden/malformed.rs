//! Malformed token requests: each gets an RFC 6749 error and changes nothing.
use data_encoding::BASE64;

use crate::harness::{Backend, TestServer, both_backends, expect_error};

async fn malformed_requests_get_oauth_errors(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["viewer"]).await;
    let basic = Some((a.client_id.as_str(), a.secret.as_str()));

    // Missing and unsupported grant types.
    expect_error(
        s.post_form("/oauth/token", &[], basic).await,
        400,
        "invalid_request",
    )
    .await;
    expect_error(
        s.post_form("/oauth/token", &[("grant_type", "password")], basic)
            .await,
        400,
        "unsupported_grant_type",
    )
    .await;
    expect_error(
        s.post_form(
            "/oauth/token",
            &[("grant_type", "authorization_code")],
            basic,
        )
        .await,
        400,
        "unsupported_grant_type",
    )
    .await;

    // Repeated parameters.
    let r = s
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("scope", "org:read"),
                ("scope", "risks:read"),
            ],
            basic,
        )
        .await;
    let body = expect_error(r, 400, "invalid_request").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or("")
            .contains("scope")
    );

    // Both Basic and client_secret in the body.
    let r = s
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", &a.secret),
            ],
            basic,
        )
        .await;
    expect_error(r, 400, "invalid_request").await;

    let raw =
        |auth: Option<String>, ctype: Option<&'static str>, body: String, query: &'static str| {
            let mut req = s.http.post(format!("{}{query}", s.url("/oauth/token")));
            if let Some(v) = auth {
                req = req.header("authorization", v);
            }
            if let Some(c) = ctype {
                req = req.header("content-type", c);
            }
            req.body(body).send()
        };
    let form = "application/x-www-form-urlencoded";
    // Bad Basic encodings.
    for header in [
        "Basic !!!notbase64".to_owned(),
        format!("Basic {}", BASE64.encode(b"no-colon-here")),
        format!("Basic {}", BASE64.encode(b"arm_sa_x:%zz")),
        "Basic".to_owned(),
        "Bearer abc".to_owned(),
    ] {
        let r = raw(
            Some(header),
            Some(form),
            "grant_type=client_credentials".into(),
            "",
        )
        .await
        .expect("send");
        expect_error(r, 400, "invalid_request").await;
    }
    // Wrong content types.
    let ok_auth = Some(format!(
        "Basic {}",
        BASE64.encode(format!("{}:{}", a.client_id, a.secret).as_bytes())
    ));
    for ctype in [
        Some("application/json"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let r = raw(
            ok_auth.clone(),
            ctype,
            "grant_type=client_credentials".into(),
            "",
        )
        .await
        .expect("send");
        expect_error(r, 400, "invalid_request").await;
    }
    let r = raw(
        ok_auth.clone(),
        Some("application/json"),
        r#"{"grant_type":"client_credentials"}"#.into(),
        "",
    )
    .await
    .expect("send");
    expect_error(r, 400, "invalid_request").await;
    // Parameters (let alone credentials) in the query string.
    let r = raw(
        None,
        Some(form),
        "grant_type=client_credentials".into(),
        "?client_id=x&client_secret=y",
    )
    .await
    .expect("send");
    expect_error(r, 400, "invalid_request").await;
    // Oversized body.
    let big = format!(
        "grant_type=client_credentials&pad={}",
        "a".repeat(64 * 1024)
    );
    // On a client of its own: the server answers before reading the rest
    // and closes the connection, which a shared pool could hand to the
    // next request (a broken pipe that is no bug of either side).
    let mut req = reqwest::Client::new()
        .post(s.url("/oauth/token"))
        .header("content-type", form)
        .body(big);
    if let Some(v) = ok_auth.clone() {
        req = req.header("authorization", v);
    }
    let r = req.send().await.expect("send");
    expect_error(r, 413, "invalid_request").await;
    // Over-long credentials are refused before any hashing.
    let long = "x".repeat(4000);
    let r = s
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some((&a.client_id, &long)),
        )
        .await;
    expect_error(r, 401, "invalid_client").await;
    // Non-ASCII and escaped characters in Basic decode per RFC 6749 §2.3.1.
    let weird = format!(
        "Basic {}",
        BASE64.encode("arm_sa_%C3%A9:p%3Aw+d".as_bytes())
    );
    let r = raw(
        Some(weird),
        Some(form),
        "grant_type=client_credentials".into(),
        "",
    )
    .await
    .expect("send");
    expect_error(r, 401, "invalid_client").await;
    // Charset parameter on the content type is fine.
    let r = raw(
        ok_auth.clone(),
        Some("application/x-www-form-urlencoded; charset=UTF-8"),
        "grant_type=client_credentials".into(),
        "",
    )
    .await
    .expect("send");
    assert_eq!(r.status(), 200);

    // None of this changed the account: it still works, nothing is
    // disabled, and only the deliberate successes were recorded.
    s.token_ok(&a, &[]).await;
    let acc =
        s.db.find_account(None, &a.id)
            .await
            .expect("read")
            .expect("account");
    assert_eq!(acc.status, warden::domain::account::Status::Active);
}

async fn unknown_paths_and_methods(b: Backend) {
    let s = TestServer::start(b).await;
    let r = s.http.get(s.url("/nope")).send().await.expect("get");
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = s.http.get(s.url("/oauth/token")).send().await.expect("get");
    assert_eq!(r.status(), 405);
}

both_backends!(
    malformed_requests_get_oauth_errors,
    unknown_paths_and_methods
);
