//! Concurrent resets, and listing with filters and pages.
use serde_json::{Value, json};

use crate::harness::{Backend, TestServer, account_from, both_backends};

use super::SA;

async fn concurrent_resets_leave_one_secret(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, token) = s.caller(&["admin"]).await;
    let (_, created) = s
        .api(
            "POST",
            SA,
            &token,
            Some(json!({"name": "racy", "roles": ["viewer"]})),
        )
        .await;
    let path = format!("{SA}/{}/reset-secret", created["id"].as_str().unwrap_or(""));
    let calls = (0..6).map(|_| s.api("POST", &path, &token, None));
    let results = futures::future::join_all(calls).await;
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(st, _)| *st == 200)
        .map(|(_, b)| b)
        .collect();
    assert!(
        results.iter().all(|(st, _)| *st == 200 || *st == 409),
        "{results:?}"
    );
    let working: Vec<&Value> = {
        let mut w = Vec::new();
        for v in &winners {
            if s.token(&account_from(v), &[]).await.status() == 200 {
                w.push(*v);
            }
        }
        w
    };
    assert_eq!(
        working.len(),
        1,
        "exactly one secret survives ({} winners)",
        winners.len()
    );
    // Resets that overlap: one wins, the others get 409. A reset that
    // starts after another finished legitimately succeeds too; each
    // success is a real, audited reset, and only the last one's secret
    // works.
    let (_, audit) = s
        .api(
            "GET",
            &format!(
                "/api/v1/audit-events?action=service_account.secret_reset&target={}",
                created["id"].as_str().unwrap_or("")
            ),
            &token,
            None,
        )
        .await;
    assert_eq!(
        audit["items"].as_array().map(Vec::len),
        Some(winners.len()),
        "every caller told it succeeded made a reset ({} winners)",
        winners.len()
    );
}

async fn listing_filters_and_pages(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, token) = s.caller(&["admin"]).await;
    for i in 0..5 {
        s.api(
            "POST",
            SA,
            &token,
            Some(json!({"name": format!("batch-{i}"), "roles": ["viewer"]})),
        )
        .await;
    }
    s.api("POST", SA, &token, Some(json!({"name": "Wiz", "type": "integration", "integration": "wiz", "roles": ["viewer"]}))).await;
    let mut seen = Vec::new();
    let mut url = format!("{SA}?limit=2");
    loop {
        let (st, page) = s.api("GET", &url, &token, None).await;
        assert_eq!(st, 200);
        for it in page["items"].as_array().cloned().unwrap_or_default() {
            seen.push(it["id"].as_str().unwrap_or("").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => url = format!("{SA}?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "admin + 5 + integration, each once");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "stable order");
    let (_, integ) = s
        .api("GET", &format!("{SA}?type=integration"), &token, None)
        .await;
    assert_eq!(integ["items"].as_array().map(Vec::len), Some(1));
    let (_, found) = s.api("GET", &format!("{SA}?q=BATCH-3"), &token, None).await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1));
    let cid = found["items"][0]["client_id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let (_, by_prefix) = s
        .api("GET", &format!("{SA}?q={}", &cid[..12]), &token, None)
        .await;
    assert!(
        by_prefix["items"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x["client_id"] == cid.as_str()))
    );
    // Parameters are judged in the order sent: a bad cursor is named even
    // when an unknown parameter follows it.
    for (q, field) in [
        ("cursor=%21%21&zzz=1", "cursor"),
        ("limit=0&cursor=%21%21", "limit"),
    ] {
        let (st, p) = s.api("GET", &format!("{SA}?{q}"), &token, None).await;
        assert_eq!((st, p["field"].as_str()), (422, Some(field)), "{q}: {p}");
        let (st, p) = s
            .api("GET", &format!("/api/v1/audit-events?{q}"), &token, None)
            .await;
        assert_eq!((st, p["field"].as_str()), (422, Some(field)), "{q}: {p}");
    }
    let (_, pct) = s.api("GET", &format!("{SA}?q=%25"), &token, None).await;
    assert_eq!(
        pct["items"].as_array().map(Vec::len),
        Some(0),
        "`%` is literal"
    );
    s.api(
        "POST",
        &format!(
            "{SA}/{}/disable",
            found["items"][0]["id"].as_str().unwrap_or("")
        ),
        &token,
        None,
    )
    .await;
    let (_, disabled) = s
        .api("GET", &format!("{SA}?status=disabled"), &token, None)
        .await;
    assert_eq!(disabled["items"].as_array().map(Vec::len), Some(1));
    // DELETE /api/v1/oauth/clients/{client_id}.
    let (st, gone) = s
        .api(
            "DELETE",
            &format!("/api/v1/oauth/clients/{cid}"),
            &token,
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert!(gone["deleted_at"].is_string());
    // Audit filters and pagination.
    let (_, created_events) = s
        .api(
            "GET",
            "/api/v1/audit-events?action=service_account.created&limit=3",
            &token,
            None,
        )
        .await;
    assert_eq!(created_events["items"].as_array().map(Vec::len), Some(3));
    let c = created_events["next_cursor"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let (_, rest) = s
        .api(
            "GET",
            &format!("/api/v1/audit-events?action=service_account.created&limit=3&cursor={c}"),
            &token,
            None,
        )
        .await;
    assert_eq!(
        rest["items"].as_array().map(Vec::len),
        Some(3),
        "5 + integration + admin (by the operator)"
    );
    let (_, none) = s
        .api(
            "GET",
            "/api/v1/audit-events?since=2099-01-01T00:00:00Z",
            &token,
            None,
        )
        .await;
    assert_eq!(none["items"], json!([]));
    assert_eq!(
        s.api("GET", "/api/v1/audit-events?since=yesterday", &token, None)
            .await
            .0,
        422
    );
}

both_backends!(
    concurrent_resets_leave_one_secret,
    listing_filters_and_pages
);
