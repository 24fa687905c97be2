//! Structured logs: with `WARDEN_LOG_FORMAT=json` every line is a JSON
//! object, every line logged while handling a request carries that
//! request's id (the one returned in `x-request-id`), and database calls
//! are spans inside the request.
use serde_json::Value;

use crate::replicas::{Cluster, ISSUER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id_on_every_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}/w.db", dir.path().display());
    let mut c = Cluster::on_database(
        dir,
        &db,
        &[("WARDEN_LOG_FORMAT", "json"), ("WARDEN_LOG", "debug")],
    );
    let x = c.account("x", "admin");
    c.start(1).await;
    let (r, http) = (c.r(0), c.http.clone());
    let mut ids = Vec::new();
    for secret in [x.secret.as_str(), "arm_sk_wrong"] {
        let resp = http
            .post(r.url("/oauth/token"))
            .basic_auth(&x.client_id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("resource", ISSUER)])
            .send()
            .await
            .expect("token");
        ids.push(
            resp.headers()["x-request-id"]
                .to_str()
                .expect("ascii")
                .to_owned(),
        );
    }
    r.signal("TERM");
    let replica = &mut c.replicas[0];
    let _ = tokio::task::block_in_place(|| replica.child.wait());
    let log = std::fs::read_to_string(&replica.log).expect("log");

    let mut in_requests = 0;
    let mut db_spans = 0;
    let mut seen_ids = std::collections::BTreeSet::new();
    for line in log.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        let spans = v["spans"].as_array().cloned().unwrap_or_default();
        let request = spans.iter().find(|s| s["name"] == "request");
        let target = v["target"].as_str().unwrap_or("");
        let handling = target.starts_with("warden::http")
            || target.starts_with("warden::oauth")
            || target.starts_with("tower_http");
        if handling {
            assert!(
                request.is_some(),
                "a request line without its request span: {line}"
            );
        }
        if let Some(req) = request {
            in_requests += 1;
            let id = req["request_id"].as_str().unwrap_or("");
            assert!(!id.is_empty(), "no request id: {line}");
            seen_ids.insert(id.to_owned());
            if spans.iter().any(|s| s["name"] == "db") {
                db_spans += 1;
            }
        }
        assert!(!line.contains(&x.secret), "a secret in the log");
    }
    assert!(in_requests >= 4, "request lines were logged: {in_requests}");
    assert!(db_spans >= 1, "database calls are spans inside requests");
    for id in &ids {
        assert!(seen_ids.contains(id), "x-request-id {id} not in the log");
    }
}
