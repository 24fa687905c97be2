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

/// At the default log level every refused request leaves one line saying
/// why, for which client, from where (never the secret); with
/// `WARDEN_ACCESS_LOG=true` every request does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_leave_a_line() {
    for access_log in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = format!("sqlite://{}/w.db", dir.path().display());
        let flag = if access_log { "true" } else { "false" };
        let mut c = crate::replicas::Cluster::on_database(
            dir,
            &db,
            &[("WARDEN_ACCESS_LOG", flag), ("WARDEN_LOG", "info")],
        );
        let a = c.account("a", "viewer");
        c.start(1).await;
        let wrong = warden::domain::credentials::ClientSecret::generate();
        let r = c
            .http
            .post(c.r(0).url("/oauth/token"))
            .basic_auth(&a.client_id, Some(wrong.expose()))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token");
        assert_eq!(r.status(), 401);
        let r = c
            .http
            .get(c.r(0).url("/api/v1/service-accounts"))
            .bearer_auth("not-a-token")
            .send()
            .await
            .expect("admin");
        assert_eq!(r.status(), 401);
        let r = c
            .http
            .get(c.r(0).url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("jwks");
        assert_eq!(r.status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let log = std::fs::read_to_string(&c.r(0).log).expect("log");
        let refused: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("request refused"))
            .collect();
        assert_eq!(refused.len(), 2, "{log}");
        assert!(
            refused[0].contains("client authentication failed")
                && refused[0].contains(&a.client_id)
                && refused[0].contains("127.0.0.1"),
            "{}",
            refused[0]
        );
        assert!(refused[1].contains("bearer token"), "{}", refused[1]);
        assert!(!log.contains(wrong.expose()), "no secret in the log");
        let jwks_lines = log
            .lines()
            .filter(|l| l.contains("jwks.json") && l.contains("status=200"))
            .count();
        assert_eq!(jwks_lines, usize::from(access_log), "{log}");
    }
}
