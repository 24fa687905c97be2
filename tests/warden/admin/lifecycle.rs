//! An account's whole life over the admin API, and validation that names
//! the field and changes nothing.
use serde_json::{Value, json};

use crate::harness::{Account, Backend, TestServer, account_from, both_backends};

use super::SA;

async fn whole_life_of_an_account_over_the_api(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, token) = s.caller(&["admin"]).await;
    let rs = s.create_resource_server("https://api.example.com").await;

    // Create: the secret once.
    let (st, created) = s
        .api(
            "POST",
            SA,
            &token,
            Some(json!({"name": "deployer", "roles": ["risk-editor"], "expires_in": "90d"})),
        )
        .await;
    assert_eq!(st, 201, "{created}");
    let acct = account_from(&created);
    assert!(acct.secret.starts_with("arm_sk_"));
    assert_eq!(created["secrets"].as_array().map(Vec::len), Some(1));
    assert!(created["expires_at"].is_string());
    let path = format!("{SA}/{}", acct.id);
    let (_, got) = s.api("GET", &path, &token, None).await;
    assert!(got.get("client_secret").is_none());

    // Use.
    let t1 = s
        .token_ok(&acct, &[("resource", "https://api.example.com")])
        .await;
    let at1 = t1["access_token"].as_str().unwrap_or_default().to_owned();
    assert!(s.is_active(&rs, &at1, Some("127.0.0.1")).await);

    // Rotate: both secrets work during the grace period.
    let (st, rotated) = s
        .api(
            "POST",
            &format!("{path}/rotate-secret"),
            &token,
            Some(json!({"grace_period": "1h"})),
        )
        .await;
    assert_eq!(st, 200, "{rotated}");
    let new = Account {
        secret: rotated["client_secret"].as_str().unwrap_or_default().into(),
        ..acct.clone()
    };
    assert_eq!(rotated["client_id"], acct.client_id.as_str());
    assert_eq!(rotated["secrets"].as_array().map(Vec::len), Some(2));
    assert!(rotated["secrets"][1]["expires_at"].is_string());
    s.token_ok(&acct, &[]).await;
    s.token_ok(&new, &[]).await;
    // Refresh tokens survive a rotation.
    assert_eq!(
        s.refresh(&new, t1["refresh_token"].as_str().unwrap_or_default())
            .await
            .status(),
        200
    );
    assert_eq!(
        s.api(
            "POST",
            &format!("{path}/rotate-secret"),
            &token,
            Some(json!({"grace_period": "8d"}))
        )
        .await
        .0,
        422
    );

    // Reset ends the grace period: only the newest secret works.
    let (st, reset) = s
        .api("POST", &format!("{path}/reset-secret"), &token, None)
        .await;
    assert_eq!(st, 200);
    let newest = Account {
        secret: reset["client_secret"].as_str().unwrap_or_default().into(),
        ..acct.clone()
    };
    assert_eq!(s.token(&acct, &[]).await.status(), 401);
    assert_eq!(s.token(&new, &[]).await.status(), 401);
    s.token_ok(&newest, &[]).await;
    assert_eq!(reset["secrets"].as_array().map(Vec::len), Some(1));
    // Access tokens issued before the reset stay active until they expire.
    assert!(s.is_active(&rs, &at1, Some("127.0.0.1")).await);

    // Restrict by IP.
    let (st, _) = s
        .api(
            "PATCH",
            &path,
            &token,
            Some(json!({"allowed_ips": ["10.0.0.0/8"]})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(s.token(&newest, &[]).await.status(), 403);
    assert!(!s.is_active(&rs, &at1, Some("127.0.0.1")).await);
    assert!(s.is_active(&rs, &at1, Some("10.2.3.4")).await);
    s.api("PATCH", &path, &token, Some(json!({"allowed_ips": []})))
        .await;

    // Demote: the role disappears from live answers at once.
    let (st, demoted) = s
        .api(
            "PATCH",
            &path,
            &token,
            Some(json!({"roles": ["risk-viewer"]})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(demoted["roles"], json!(["risk-viewer"]));
    let live = s.introspect(&rs, &at1, None).await;
    assert_eq!(live["active"], true);
    // Roles are intersected: risk-editor was removed and risk-viewer was
    // never in the token, so the token keeps no role and no permission.
    assert_eq!(live["roles"], json!([]));
    assert_eq!(live["scope"], "");

    // Expiry: omitted keeps, `never` clears.
    let (_, kept) = s
        .api("PATCH", &path, &token, Some(json!({"name": "deployer 2"})))
        .await;
    assert_eq!(kept["expires_at"], created["expires_at"]);
    let (_, cleared) = s
        .api("PATCH", &path, &token, Some(json!({"expires_in": "never"})))
        .await;
    assert_eq!(cleared["expires_at"], Value::Null);

    // Disable, re-enable.
    let (_, d) = s
        .api("POST", &format!("{path}/disable"), &token, None)
        .await;
    assert_eq!(d["status"], "disabled");
    assert_eq!(s.token(&newest, &[]).await.status(), 403);
    assert_eq!(
        s.api("POST", &format!("{path}/reset-secret"), &token, None)
            .await
            .0,
        409
    );
    let (_, e) = s.api("POST", &format!("{path}/enable"), &token, None).await;
    assert_eq!(e["status"], "active");
    s.token_ok(&newest, &[]).await;

    // Delete: a tombstone, listed only with include=deleted, not editable.
    let (st, del) = s.api("DELETE", &path, &token, None).await;
    assert_eq!(st, 200);
    assert!(del["deleted_at"].is_string());
    assert_eq!(del["status"], "deleted", "a tombstone says so");
    assert_eq!(s.token(&newest, &[]).await.status(), 401);
    assert_eq!(
        s.api("PATCH", &path, &token, Some(json!({"name": "x"})))
            .await
            .0,
        409
    );
    // Every action on a tombstone says why it is refused.
    for action in ["enable", "disable", "reset-secret", "rotate-secret"] {
        let (st, why) = s
            .api("POST", &format!("{path}/{action}"), &token, None)
            .await;
        assert_eq!(st, 409, "{action}: {why}");
        assert!(
            why["detail"].as_str().unwrap_or("").contains("deleted"),
            "{why}"
        );
    }
    assert_eq!(s.api("DELETE", &path, &token, None).await.0, 409);
    let (st, still) = s.api("GET", &path, &token, None).await;
    assert_eq!((st, still["status"].as_str()), (200, Some("deleted")));
    let (_, list) = s.api("GET", SA, &token, None).await;
    assert!(
        !list["items"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x["id"] == acct.id.as_str()))
    );
    let (_, list) = s
        .api("GET", &format!("{SA}?include=deleted"), &token, None)
        .await;
    assert!(
        list["items"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x["id"] == acct.id.as_str()))
    );

    // Every step is in the audit log, with no secret anywhere in it.
    let (st, audit) = s
        .api(
            "GET",
            &format!("/api/v1/audit-events?target={}&limit=500", acct.id),
            &token,
            None,
        )
        .await;
    assert_eq!(st, 200);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .map(|l| l.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    for want in [
        "service_account.created",
        "token.issued",
        "token.refreshed",
        "service_account.secret_rotated",
        "service_account.secret_reset",
        "service_account.updated",
        "service_account.disabled",
        "service_account.enabled",
        "service_account.deleted",
        "client.auth_failed",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    let text = audit.to_string();
    for secret in [&acct.secret, &new.secret, &newest.secret, &at1] {
        assert!(!text.contains(secret.as_str()));
    }
    let updated = audit["items"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["action"] == "service_account.updated"))
        .cloned();
    assert!(
        updated
            .is_some_and(|e| e["actor_type"] == "service_account" && e["source_ip"] == "127.0.0.1")
    );
}

async fn validation_names_the_field_and_changes_nothing(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, token) = s.caller(&["admin"]).await;
    let (_, created) = s
        .api(
            "POST",
            SA,
            &token,
            Some(json!({"name": "x", "roles": ["viewer"]})),
        )
        .await;
    let path = format!("{SA}/{}", created["id"].as_str().unwrap_or(""));
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"roles": []}), "roles"),
        (json!({"roles": ["nope"]}), "roles"),
        (json!({"allowed_ips": ["10.0.0.0/33"]}), "allowed_ips"),
        (json!({"allowed_ips": ["010.0.0.1"]}), "allowed_ips"),
        (json!({"allowed_ips": ["not-an-ip"]}), "allowed_ips"),
        (json!({"expires_in": "7d"}), "expires_in"),
    ] {
        let (st, p) = s.api("PATCH", &path, &token, Some(body.clone())).await;
        assert_eq!(st, 422, "{body} -> {p}");
        assert_eq!(p["field"], field, "{p}");
        assert_eq!(p["status"], 422);
    }
    for body in [
        json!({"name": "y", "bogus": true}),
        json!({"roles": "viewer"}),
        json!([1]),
    ] {
        assert_eq!(s.api("PATCH", &path, &token, Some(body)).await.0, 400);
    }
    assert_eq!(
        s.api("POST", SA, &token, Some(json!({"roles": ["viewer"]})))
            .await
            .0,
        400,
        "missing name"
    );
    assert_eq!(
        s.api(
            "POST",
            SA,
            &token,
            Some(json!({"name": "n", "roles": ["viewer"], "type": "robot"}))
        )
        .await
        .0,
        422
    );
    assert_eq!(
        s.api(
            "POST",
            SA,
            &token,
            Some(json!({"name": "n", "roles": ["viewer"], "type": "integration"}))
        )
        .await
        .0,
        422
    );
    let r = s
        .http
        .patch(s.url(&path))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let r = s
        .http
        .patch(s.url(&path))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 415);
    assert_eq!(
        s.api("GET", &format!("{SA}?limit=0"), &token, None).await.0,
        422
    );
    assert_eq!(
        s.api("GET", &format!("{SA}?colour=red"), &token, None)
            .await
            .0,
        400
    );
    // Nothing changed.
    let (_, after) = s.api("GET", &path, &token, None).await;
    assert_eq!(after["name"], "x");
    assert_eq!(after["roles"], json!(["viewer"]));
    assert_eq!(after["allowed_ips"], json!([]));
    let (_, audit) = s
        .api(
            "GET",
            &format!(
                "/api/v1/audit-events?target={}&action=service_account.updated",
                after["id"].as_str().unwrap_or("")
            ),
            &token,
            None,
        )
        .await;
    assert_eq!(audit["items"], json!([]));
    // Integration accounts: no credentials.
    let (st, integ) = s.api("POST", SA, &token, Some(json!({"name": "Jira", "type": "integration", "integration": "jira", "roles": ["viewer"]}))).await;
    assert_eq!(st, 201);
    assert_eq!(integ["client_id"], Value::Null);
    assert!(integ.get("client_secret").is_none());
    assert_eq!(integ["integration"], "jira");
    let ipath = format!("{SA}/{}", integ["id"].as_str().unwrap_or(""));
    assert_eq!(
        s.api("POST", &format!("{ipath}/disable"), &token, None)
            .await
            .1["status"],
        "disabled"
    );
    assert_eq!(
        s.api("POST", &format!("{ipath}/reset-secret"), &token, None)
            .await
            .0,
        409
    );
    assert_eq!(
        s.api(
            "DELETE",
            &format!(
                "/api/v1/oauth/clients/{}",
                integ["id"].as_str().unwrap_or("")
            ),
            &token,
            None
        )
        .await
        .0,
        404
    );
}

both_backends!(
    whole_life_of_an_account_over_the_api,
    validation_names_the_field_and_changes_nothing
);
