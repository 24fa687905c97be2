//! What a new user trips on in the first hour: answers that say what is
//! wrong, fields in one format, and nothing advertised that is not true.
use serde_json::{Value, json};

use crate::harness::{Backend, TestServer, both_backends, expect_error};

const SA: &str = "/api/v1/service-accounts";

/// `expires_at` (RFC 3339, future, within ten years) besides the presets.
async fn expiry_as_a_time(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["admin"]).await;
    let t = s.admin_token(&a).await;
    let (st, v) = s
        .api(
            "POST",
            SA,
            &t,
            Some(
                json!({"name": "dated", "roles": ["viewer"], "expires_at": "2030-06-30T12:00:00Z"}),
            ),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["expires_at"], "2030-06-30T12:00:00Z");
    let p = format!("{SA}/{}", v["id"].as_str().unwrap_or(""));
    let (st, v) = s
        .api(
            "PATCH",
            &p,
            &t,
            Some(json!({"expires_at": "2031-01-01T00:00:00+01:00"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["expires_at"], "2030-12-31T23:00:00Z");
    for body in [
        json!({"expires_at": "2001-01-01T00:00:00Z"}),
        json!({"expires_at": "2999-01-01T00:00:00Z"}),
        json!({"expires_at": "next tuesday"}),
        json!({"expires_at": "2030-01-01T00:00:00Z", "expires_in": "30d"}),
    ] {
        let (st, v) = s.api("PATCH", &p, &t, Some(body.clone())).await;
        assert_eq!(st, 422, "{body}: {v}");
        assert_eq!(v["field"], "expires_at", "{v}");
    }
    // Audit details carry times as RFC 3339, like every other field.
    let (_, rotated) = s.api("POST", &format!("{p}/rotate-secret"), &t, None).await;
    assert!(rotated["client_secret"].is_string());
    let (_, audit) = s
        .api(
            "GET",
            &format!("/api/v1/audit-events?target={}", v_id(&p)),
            &t,
            None,
        )
        .await;
    let items = audit["items"].as_array().cloned().unwrap_or_default();
    let find = |action: &str| {
        items
            .iter()
            .find(|e| e["action"] == action)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let rfc3339 = |v: &Value| {
        v.as_str().is_some_and(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
        })
    };
    assert!(rfc3339(
        &find("service_account.secret_rotated")["details"]["grace_until"]
    ));
    assert!(rfc3339(
        &find("service_account.created")["details"]["expires_at"]
    ));
    assert!(rfc3339(
        &find("service_account.updated")["details"]["expires_at"]["to"]
    ));
}

fn v_id(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// A service account calling introspection is told that only resource
/// servers may, whatever its secret (the answer depends on the id alone),
/// and it does not count as a failed authentication.
async fn introspection_explains_who_may_call_it(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["viewer"]).await;
    let t = s.token_ok(&a, &[]).await;
    let token = t["access_token"].as_str().unwrap_or("").to_owned();
    for _ in 0..12 {
        let r = s
            .post_form(
                "/oauth/introspect",
                &[("token", &token)],
                Some((&a.client_id, &a.secret)),
            )
            .await;
        let body = expect_error(r, 401, "invalid_client").await;
        assert!(
            body["error_description"]
                .as_str()
                .unwrap_or("")
                .contains("only resource servers"),
            "{body}"
        );
    }
    // Twelve tries, still no throttling of the account at the token endpoint.
    s.token_ok(&a, &[]).await;
}

both_backends!(expiry_as_a_time, introspection_explains_who_may_call_it);
