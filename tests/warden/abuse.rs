//! The adversarial suite: brute force, floods, hostile headers and real
//! source addresses. Requests come from several loopback addresses
//! (127.0.0.0/8 all reach `lo` on Linux), so the server sees genuinely
//! different peers, not just different headers.
use std::net::IpAddr;
use std::time::{Duration, Instant};

use reqwest::{Client, Response};
use serde_json::json;
use warden::domain::credentials::ClientSecret;

use crate::harness::{Account, Backend, TestServer, both_backends, expect_error};

const API: &str = "https://api.example.com";

/// An HTTP client whose connections come from `ip`.
pub fn client_from(ip: &str) -> Client {
    Client::builder()
        .local_address(ip.parse::<IpAddr>().expect("ip"))
        .build()
        .expect("client")
}

/// POSTs a form from `client` with optional Basic credentials and headers.
pub async fn post_from(
    s: &TestServer,
    client: &Client,
    path: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
    headers: &[(&str, &str)],
) -> Response {
    let mut req = client
        .post(s.url(path))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    req.body(body).send().await.expect("request sent")
}

async fn token_from(s: &TestServer, c: &Client, a: &Account, secret: &str) -> Response {
    post_from(
        s,
        c,
        "/oauth/token",
        &[("grant_type", "client_credentials")],
        Some((&a.client_id, secret)),
        &[],
    )
    .await
}

fn wrong_secret() -> String {
    ClientSecret::generate().expose().to_owned()
}

async fn expect_throttled(r: Response) -> u64 {
    let wait: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("429 carries Retry-After in seconds");
    let body = expect_error(r, 429, "temporarily_unavailable").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or("")
            .contains("retry")
    );
    assert!(wait >= 1);
    wait
}

/// Five wrong secrets for one client from one address block that client
/// from that address (even with the right secret), and only there.
async fn brute_force_is_throttled_per_client_and_address(b: Backend) {
    let s = TestServer::start_with(
        b,
        &[
            ("auth_failures_per_client", "5/1m"),
            ("auth_failures_per_ip", "1000/1m"),
        ],
    )
    .await;
    let victim = s.create_account(&["viewer"]).await;
    let bystander = s.create_account(&["viewer"]).await;
    let attacker = client_from("127.0.0.2");
    for _ in 0..5 {
        let r = token_from(&s, &attacker, &victim, &wrong_secret()).await;
        expect_error(r, 401, "invalid_client").await;
    }
    // Throttled now: even the right secret is refused, before any work.
    let r = token_from(&s, &attacker, &victim, &victim.secret).await;
    let wait = expect_throttled(r).await;
    assert!(wait <= 12, "one interval of 5/1m, got {wait}");
    // The legitimate client, from its own address, is not locked out.
    let legit = client_from("127.0.0.3");
    let r = token_from(&s, &legit, &victim, &victim.secret).await;
    assert_eq!(r.status(), 200);
    // Other clients from the attacker's address are unaffected by the
    // per-client limit.
    let r = token_from(&s, &attacker, &bystander, &bystander.secret).await;
    assert_eq!(r.status(), 200);
    // The trip is audited on the victim, with the attacker's address.
    s.state.bookkeeper.flush(&s.db).await;
    let events = s.db.audit_for_target(&victim.id).await.expect("audit");
    let trip = events
        .iter()
        .find(|e| e.action == "client.auth_throttled")
        .expect("throttle audited");
    assert_eq!(trip.source_ip.as_deref(), Some("127.0.0.2"));
    // Failures are aggregated per account, address and minute: the first
    // is written at once, the rest counted into one event when the minute
    // is over (junk_assertions_do_not_flood_the_audit_log).
    let failed = events
        .iter()
        .filter(|e| e.action == "client.auth_failed")
        .count();
    assert!((1..=3).contains(&failed), "{failed} rows");
}

/// One address guessing across many client ids is throttled as an address;
/// other addresses are not.
async fn brute_force_is_throttled_per_address(b: Backend) {
    let s = TestServer::start_with(
        b,
        &[
            ("auth_failures_per_client", "100/1m"),
            ("auth_failures_per_ip", "8/1m"),
        ],
    )
    .await;
    let a = s.create_account(&["viewer"]).await;
    let attacker = client_from("127.0.0.4");
    for i in 0..8 {
        let id = format!("arm_sa_{:0>26}", "a".repeat(i + 1));
        let r = post_from(
            &s,
            &attacker,
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some((&id, &wrong_secret())),
            &[],
        )
        .await;
        expect_error(r, 401, "invalid_client").await;
    }
    expect_throttled(token_from(&s, &attacker, &a, &a.secret).await).await;
    // Forwarded headers from an untrusted peer do not buy a fresh bucket.
    let r = post_from(
        &s,
        &attacker,
        "/oauth/token",
        &[("grant_type", "client_credentials")],
        Some((&a.client_id, &a.secret)),
        &[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-real-ip", "203.0.113.9"),
        ],
    )
    .await;
    expect_throttled(r).await;
    let r = token_from(&s, &client_from("127.0.0.5"), &a, &a.secret).await;
    assert_eq!(r.status(), 200);
}

/// Resource servers are throttled the same way at introspection.
async fn introspection_callers_are_throttled(b: Backend) {
    let s = TestServer::start_with(
        b,
        &[
            ("auth_failures_per_client", "3/1m"),
            ("auth_failures_per_ip", "1000/1m"),
        ],
    )
    .await;
    let rs = s.create_resource_server(API).await;
    let a = s.create_account(&["viewer"]).await;
    let t = s.token_ok(&a, &[("resource", API)]).await;
    let token = t["access_token"].as_str().unwrap_or_default();
    let attacker = client_from("127.0.0.6");
    for _ in 0..3 {
        let r = post_from(
            &s,
            &attacker,
            "/oauth/introspect",
            &[("token", token)],
            Some((&rs.client_id, &wrong_secret())),
            &[],
        )
        .await;
        expect_error(r, 401, "invalid_client").await;
    }
    let r = post_from(
        &s,
        &attacker,
        "/oauth/introspect",
        &[("token", token)],
        Some((&rs.client_id, &rs.secret)),
        &[],
    )
    .await;
    expect_throttled(r).await;
    // Revocation shares the resource servers' buckets.
    let r = post_from(
        &s,
        &attacker,
        "/oauth/revoke",
        &[("token", token)],
        Some((&rs.client_id, &rs.secret)),
        &[],
    )
    .await;
    expect_throttled(r).await;
    // The resource server from its own address is unaffected.
    assert!(s.is_active(&rs, token, None).await);
}

/// A value without a valid checksum is rejected without a database lookup
/// or Argon2: it costs next to nothing and audits nothing on the account.
async fn mistyped_secrets_fail_fast(b: Backend) {
    let s = TestServer::start(b).await;
    let a = s.create_account(&["viewer"]).await;
    let mut typo = a.secret.clone().into_bytes();
    let i = typo.len() - 10;
    typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).expect("ascii");
    let c = client_from("127.0.0.1");
    let r = token_from(&s, &c, &a, &typo).await;
    expect_error(r, 401, "invalid_client").await;
    s.state.bookkeeper.flush(&s.db).await;
    let events = s.db.audit_for_target(&a.id).await.expect("audit");
    assert!(!events.iter().any(|e| e.action == "client.auth_failed"));
    // A well-formed wrong secret is checked (and audited) as before.
    expect_error(
        token_from(&s, &c, &a, &wrong_secret()).await,
        401,
        "invalid_client",
    )
    .await;
    s.state.bookkeeper.flush(&s.db).await;
    let events = s.db.audit_for_target(&a.id).await.expect("audit");
    assert!(events.iter().any(|e| e.action == "client.auth_failed"));
    // A refresh token with a typo is refused as invalid_grant.
    let t = s.token_ok(&a, &[]).await;
    let rt = t["refresh_token"].as_str().unwrap_or_default();
    let mut bad = rt.to_owned().into_bytes();
    let j = bad.len() - 3;
    bad[j] = if bad[j] == b'a' { b'b' } else { b'a' };
    let bad = String::from_utf8(bad).expect("ascii");
    expect_error(s.refresh(&a, &bad).await, 400, "invalid_grant").await;
    assert_eq!(s.refresh(&a, rt).await.status(), 200);
}

/// A flood of wrong (well-formed) secrets saturates the Argon2 pool, yet a
/// client that already authenticated keeps getting tokens, and
/// introspection and JWKS keep answering.
async fn bad_secret_flood_does_not_starve_good_clients(b: Backend) {
    let s = TestServer::start_with(
        b,
        &[
            ("argon2_concurrency", "1"),
            ("auth_failures_per_client", "off"),
            ("auth_failures_per_ip", "off"),
        ],
    )
    .await;
    let good = s.create_account(&["viewer"]).await;
    let victim = s.create_account(&["viewer"]).await;
    let rs = s.create_resource_server(API).await;
    // Warm the verified-credential caches.
    s.token_ok(&good, &[]).await;
    let t = s.token_ok(&good, &[("resource", API)]).await;
    let token = t["access_token"].as_str().unwrap_or_default().to_owned();
    assert!(s.is_active(&rs, &token, None).await);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut flood = Vec::new();
    for _ in 0..24 {
        let (base, id, stop) = (
            s.url("/oauth/token"),
            victim.client_id.clone(),
            stop.clone(),
        );
        flood.push(tokio::spawn(async move {
            let c = Client::new();
            let mut codes = std::collections::BTreeMap::<u16, u32>::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = c
                    .post(&base)
                    .basic_auth(&id, Some(wrong_secret()))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .expect("flood request");
                *codes.entry(r.status().as_u16()).or_default() += 1;
            }
            codes
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let mut good_tokens = 0;
    let mut worst = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(3) {
        let t0 = Instant::now();
        let r = s.token(&good, &[]).await;
        assert_eq!(r.status(), 200, "good client refused during the flood");
        worst = worst.max(t0.elapsed());
        good_tokens += 1;
        assert!(s.is_active(&rs, &token, None).await);
        let j = s
            .http
            .get(s.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("jwks");
        assert_eq!(j.status(), 200);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = std::collections::BTreeMap::<u16, u32>::new();
    for f in flood {
        for (k, v) in f.await.expect("flood task") {
            *total.entry(k).or_default() += v;
        }
    }
    eprintln!("flood: {total:?}; good client: {good_tokens} tokens in 3 s, worst {worst:?}");
    // The flood really ran into Argon2 (401) and its queue bound (503).
    assert!(total.get(&401).copied().unwrap_or(0) > 0, "{total:?}");
    assert!(
        total.keys().all(|k| *k == 401 || *k == 503),
        "flood answers: {total:?}"
    );
    // Correctness, not speed: a generous bound that only a starved client
    // (queued behind the Argon2 flood) would exceed.
    assert!(good_tokens >= 10, "only {good_tokens} tokens in 3 s");
    assert!(
        worst < Duration::from_secs(2),
        "worst good request {worst:?}"
    );
}

/// Forwarded headers count only from trusted proxies, and then the
/// right-most untrusted hop decides; tested with real peer addresses.
async fn real_source_addresses_and_forwarded_headers(b: Backend) {
    let s = TestServer::start_with(b, &[("trusted_proxies", "127.0.0.2/32")]).await;
    let a = s
        .create_account_with(&["viewer"], &["127.0.0.3/32"], None)
        .await;
    let form = [("grant_type", "client_credentials")];
    let go = |from: &'static str, headers: Vec<(&'static str, &'static str)>| {
        let s = &s;
        let a = &a;
        async move {
            post_from(
                s,
                &client_from(from),
                "/oauth/token",
                &form,
                Some((&a.client_id, &a.secret)),
                &headers,
            )
            .await
            .status()
            .as_u16()
        }
    };
    // Directly from the allowed address, and not from another.
    assert_eq!(go("127.0.0.3", vec![]).await, 200);
    assert_eq!(go("127.0.0.4", vec![]).await, 403);
    // Spoofing headers from an untrusted peer changes nothing.
    for h in [
        ("x-forwarded-for", "127.0.0.3"),
        ("x-real-ip", "127.0.0.3"),
        ("forwarded", "for=127.0.0.3"),
    ] {
        assert_eq!(go("127.0.0.4", vec![h]).await, 403, "{h:?}");
    }
    // Through the trusted proxy: the right-most untrusted hop.
    assert_eq!(
        go("127.0.0.2", vec![("x-forwarded-for", "127.0.0.3")]).await,
        200
    );
    assert_eq!(
        go(
            "127.0.0.2",
            vec![("x-forwarded-for", "127.0.0.9, 127.0.0.3")]
        )
        .await,
        200,
        "a client-supplied left-most hop is ignored"
    );
    assert_eq!(
        go(
            "127.0.0.2",
            vec![("x-forwarded-for", "127.0.0.3, 127.0.0.9")]
        )
        .await,
        403,
        "the hop the proxy saw decides"
    );
    assert_eq!(
        go(
            "127.0.0.2",
            vec![("x-forwarded-for", "127.0.0.3, 127.0.0.2")]
        )
        .await,
        200,
        "trusted hops are skipped"
    );
    assert_eq!(
        go("127.0.0.2", vec![("x-forwarded-for", "::ffff:127.0.0.3")]).await,
        200,
        "IPv4-mapped IPv6 is the IPv4 address"
    );
    // X-Real-IP and Forwarded are not read even from a trusted proxy:
    // the proxy's own address (not allowed) decides.
    assert_eq!(go("127.0.0.2", vec![("x-real-ip", "127.0.0.3")]).await, 403);
    assert_eq!(
        go("127.0.0.2", vec![("x-forwarded-for", "not-an-ip")]).await,
        403
    );
}

/// A peer that arrives over IPv6 as an IPv4-mapped address is matched as
/// the IPv4 address it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_mapped_peers_match_ipv4_allowlists() {
    let s = TestServer::start_with(Backend::Sqlite, &[("listen", "[::]:0")]).await;
    let port = s.base.rsplit(':').next().unwrap_or_default().to_owned();
    let a = s
        .create_account_with(&["viewer"], &["127.0.0.7/32"], None)
        .await;
    for (from, want) in [("::ffff:127.0.0.7", 200), ("::ffff:127.0.0.8", 403)] {
        let c = client_from(from);
        let r = c
            .post(format!("http://[::ffff:127.0.0.1]:{port}/oauth/token"))
            .basic_auth(&a.client_id, Some(&a.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("send over IPv6");
        assert_eq!(r.status(), want, "from {from}");
    }
}

/// The admin API refuses malformed, leading-zero and host-bit CIDRs with a
/// 422 naming the field, and stores nothing.
async fn admin_rejects_malformed_cidrs(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = s.create_account(&["admin"]).await;
    let token = s.admin_token(&admin).await;
    for bad in [
        "010.0.0.0/8",
        "10.0.0.01",
        "10.0.0.0/33",
        "10.0.0.0/-1",
        "10.0.0.0/8/8",
        "10.0.0",
        "::ffff:10.0.0.0/129",
        "2001:db8::/0x20",
        "",
        "10.0.0.0%0a/8",
    ] {
        let (st, body) = s
            .api(
                "POST",
                "/api/v1/service-accounts",
                &token,
                Some(json!({"name": "x", "roles": ["viewer"], "allowed_ips": [bad]})),
            )
            .await;
        assert_eq!(st, 422, "{bad:?}: {body}");
        assert_eq!(body["field"], "allowed_ips", "{body}");
    }
    let (_, list) = s.api("GET", "/api/v1/service-accounts", &token, None).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
}

/// A wrong-secret flood from 32 addresses (behind a trusted proxy) aimed
/// at real client ids: a correct client and a resource server that were
/// never verified before (so not cached) are served within seconds. The
/// Argon2 queue is per address, in turns; before, one FIFO queue full of
/// the flood answered every uncached caller 503 for as long as it ran.
async fn a_fresh_client_is_served_during_a_flood(b: Backend) {
    let s = TestServer::start_with(
        b,
        &[
            ("argon2_concurrency", "1"),
            ("trusted_proxies", "127.0.0.1/32"),
        ],
    )
    .await;
    let mut victims = Vec::new();
    for _ in 0..12 {
        victims.push(s.create_account(&["viewer"]).await.client_id);
    }
    let fresh = s.create_account(&["viewer"]).await;
    let rs = s.create_resource_server(API).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut flood = Vec::new();
    for i in 0..160usize {
        let (base, ids, stop) = (s.url("/oauth/token"), victims.clone(), stop.clone());
        flood.push(tokio::spawn(async move {
            let c = Client::new();
            let from = format!("198.51.100.{}", i % 32);
            let mut codes = std::collections::BTreeMap::<u16, u32>::new();
            let mut n = i;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let Ok(r) = c
                    .post(&base)
                    .header("x-forwarded-for", &from)
                    .basic_auth(&ids[n % ids.len()], Some(wrong_secret()))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                else {
                    continue;
                };
                *codes.entry(r.status().as_u16()).or_default() += 1;
                if r.status() == 429 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            codes
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let served_within = |what: &'static str, f: futures::future::BoxFuture<'static, u16>| async move {
        let t0 = Instant::now();
        let st = f.await;
        (what, st, t0.elapsed())
    };
    let (base, id, secret) = (
        s.url("/oauth/token"),
        fresh.client_id.clone(),
        fresh.secret.clone(),
    );
    let client = served_within(
        "fresh client",
        Box::pin(async move {
            Client::new()
                .post(&base)
                .header("x-forwarded-for", "203.0.113.7")
                .basic_auth(&id, Some(&secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .map_or(0, |r| r.status().as_u16())
        }),
    )
    .await;
    let t = s.token_ok(&fresh, &[("resource", API)]).await;
    let token = t["access_token"].as_str().unwrap_or_default().to_owned();
    let (base, id, secret) = (
        s.url("/oauth/introspect"),
        rs.client_id.clone(),
        rs.secret.clone(),
    );
    let server = served_within(
        "fresh resource server",
        Box::pin(async move {
            Client::new()
                .post(&base)
                .header("x-forwarded-for", "203.0.113.8")
                .basic_auth(&id, Some(&secret))
                .form(&[("token", token.as_str())])
                .send()
                .await
                .map_or(0, |r| r.status().as_u16())
        }),
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = std::collections::BTreeMap::<u16, u32>::new();
    for f in flood {
        for (k, v) in f.await.expect("flood task") {
            *total.entry(k).or_default() += v;
        }
    }
    eprintln!("flood: {total:?}; {client:?}; {server:?}");
    assert!(
        total.get(&401).copied().unwrap_or(0) > 50,
        "the flood really ran Argon2: {total:?}"
    );
    for (what, st, took) in [client, server] {
        assert_eq!(st, 200, "{what} refused during the flood ({total:?})");
        assert!(took < Duration::from_secs(3), "{what} took {took:?}");
    }
}

/// Idle sockets cannot use up the server: one address holds at most its
/// share of connections (past it a new one is closed before a byte is
/// read), and a client from another address is still served. Before,
/// ~20,000 idle sockets exhausted the descriptor limit for everyone.
async fn connections_are_capped_per_address(b: Backend) {
    use tokio::io::AsyncReadExt;
    let s = TestServer::start_with(b, &[("max_connections_per_ip", "8")]).await;
    let a = s.create_account(&["viewer"]).await;
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().expect("addr");
    let from = |ip: &str| {
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind(format!("{ip}:0").parse().expect("local"))
            .expect("bind");
        sock
    };
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(from("127.0.0.9").connect(addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut over = from("127.0.0.9").connect(addr).await.expect("connect");
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(2), over.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the ninth connection from one address is closed at once: {closed:?}"
    );
    let other = client_from("127.0.0.10");
    let r = other
        .post(s.url("/oauth/token"))
        .basic_auth(&a.client_id, Some(&a.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 200, "another address is served");
    drop(idle);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = client_from("127.0.0.9");
    let r = again.get(s.url("/healthz")).send().await.expect("healthz");
    assert_eq!(r.status(), 200, "places come back when connections close");
}

/// Junk client assertions naming a public client id cost no Argon2, so
/// each used to write its own `client.auth_failed` row (732 a second in
/// the review). Failures are aggregated per account, address and minute:
/// the first is written at once, the rest as one event with their count.
async fn junk_assertions_do_not_flood_the_audit_log(b: Backend) {
    let s = TestServer::start_with(
        b,
        &[
            ("auth_failures_per_client", "off"),
            ("auth_failures_per_ip", "off"),
        ],
    )
    .await;
    let a = s.create_account(&["viewer"]).await;
    let b64 =
        |v: &serde_json::Value| data_encoding::BASE64URL_NOPAD.encode(v.to_string().as_bytes());
    let now = warden::now_unix();
    for i in 0..60 {
        let claims = serde_json::json!({"iss": a.client_id, "sub": a.client_id,
            "aud": s.url("/oauth/token"), "exp": now + 60, "jti": format!("junk-{i}")});
        let junk = format!(
            "{}.{}.{}",
            b64(&serde_json::json!({"alg": "ES256"})),
            b64(&claims),
            data_encoding::BASE64URL_NOPAD.encode(&[7u8; 64])
        );
        let r = s
            .post_form(
                "/oauth/token",
                &[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &junk),
                ],
                None,
            )
            .await;
        assert_eq!(r.status(), 401);
    }
    // What shutdown writes last: every aggregate, also of this minute.
    s.state.bookkeeper.flush_all(&s.db).await;
    let failed: Vec<_> =
        s.db.audit_for_target(&a.id)
            .await
            .expect("audit")
            .into_iter()
            .filter(|e| e.event.action == "client.auth_failed")
            .collect();
    let total: u64 = failed
        .iter()
        .map(|e| e.event.details["count"].as_u64().unwrap_or(1))
        .sum();
    assert!(
        failed.len() <= 4,
        "{} rows for 60 failures: one per minute and address, plus its count",
        failed.len()
    );
    assert_eq!(total, 60, "every failure is still counted");
}

both_backends!(
    brute_force_is_throttled_per_client_and_address,
    junk_assertions_do_not_flood_the_audit_log,
    connections_are_capped_per_address,
    a_fresh_client_is_served_during_a_flood,
    brute_force_is_throttled_per_address,
    introspection_callers_are_throttled,
    mistyped_secrets_fail_fast,
    bad_secret_flood_does_not_starve_good_clients,
    real_source_addresses_and_forwarded_headers,
    admin_rejects_malformed_cidrs,
    slow_and_idle_connections_are_closed,
);

/// Unknown client id, wrong secret and deleted account get the same
/// answer, but only a secret presented for a live credential costs an
/// Argon2 run: client ids are public and random, so a dummy hash for an
/// invented one hid nothing and handed a flood of invented ids the whole
/// Argon2 pool. Samples are interleaved so machine noise hits every group
/// alike; medians are compared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_live_credentials_cost_argon2() {
    let s = TestServer::start_with(
        Backend::Sqlite,
        &[
            ("auth_failures_per_client", "off"),
            ("auth_failures_per_ip", "off"),
        ],
    )
    .await;
    let live = s.create_account(&["viewer"]).await;
    let deleted = s.create_account(&["viewer"]).await;
    warden::manage::accounts::delete(&warden::manage::Scope::operator(&s.db), &deleted.id)
        .await
        .expect("delete");
    let unknown = "arm_sa_aaaaaaaaaaaaaaaaaaaaaaaaaa";
    let c = Client::new();
    let groups: [(&str, &str); 3] = [
        ("unknown client id", unknown),
        ("deleted account", &deleted.client_id),
        ("wrong secret", &live.client_id),
    ];
    const N: usize = 30;
    let mut samples = vec![Vec::with_capacity(N); groups.len()];
    for round in 0..N + 3 {
        for (g, (_, id)) in groups.iter().enumerate() {
            let secret = wrong_secret();
            let t0 = Instant::now();
            let r = c
                .post(s.url("/oauth/token"))
                .basic_auth(id, Some(&secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .expect("send");
            let took = t0.elapsed();
            let body = expect_error(r, 401, "invalid_client").await;
            assert_eq!(body["error_description"], "client authentication failed");
            if round >= 3 {
                samples[g].push(took.as_secs_f64() * 1000.0);
            }
        }
    }
    let medians: Vec<f64> = samples
        .iter_mut()
        .map(|v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect();
    let report: Vec<String> = groups
        .iter()
        .zip(&medians)
        .map(|((name, _), m)| format!("{name}: {m:.2} ms"))
        .collect();
    eprintln!("failure latency medians: {report:?}");
    // Argon2 (19 MiB, t=2) costs tens of milliseconds; a lookup does not.
    assert!(
        medians[2] > 2.0 * medians[0].max(medians[1]),
        "a wrong secret for a live credential should pay Argon2, the others not: {report:?}"
    );
}

/// Slow or silent clients cannot hold connections: a request head must
/// arrive complete within `header_timeout` (slowloris), and an idle
/// connection is closed after it too. Real requests are unaffected.
async fn slow_and_idle_connections_are_closed(b: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start_with(b, &[("header_timeout", "1s")]).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let closed_within = |mut c: tokio::net::TcpStream| async move {
        let t0 = Instant::now();
        let mut buf = [0u8; 256];
        loop {
            match tokio::time::timeout(Duration::from_secs(6), c.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return t0.elapsed(),
                Ok(Ok(_)) => continue,
                Err(_) => panic!("connection still open after 6 s"),
            }
        }
    };
    // Headers trickled one byte every 200 ms, never finished.
    let mut slow = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let trickle = tokio::spawn(async move {
        for b in
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        {
            if slow.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        slow
    });
    // A connection that never says anything.
    let idle = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let idle_closed = closed_within(idle).await;
    assert!(
        idle_closed < Duration::from_secs(4),
        "idle: {idle_closed:?}"
    );
    let slow = trickle.await.expect("trickle");
    let _ = closed_within(slow).await;
    // Meanwhile, and afterwards, real clients are served.
    let a = s.create_account(&["viewer"]).await;
    s.token_ok(&a, &[]).await;
}

/// Requests dropped while they wait for an Argon2 permit must leave the
/// bounded queue: those cut off by the request deadline, and those whose
/// client resets the connection. Before the fix each dropped waiter leaked
/// a place, and once the queue had leaked full every uncached
/// authentication answered 503 until restart. Real process, real TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_requests_do_not_leak_argon2_queue_places() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}/w.db", dir.path().display());
    let mut c = crate::replicas::Cluster::on_database(
        dir,
        &db,
        &[
            ("WARDEN_ARGON2_CONCURRENCY", "1"),
            ("WARDEN_REQUEST_TIMEOUT", "100ms"),
            ("WARDEN_AUTH_FAILURES_PER_CLIENT", "off"),
            ("WARDEN_AUTH_FAILURES_PER_IP", "off"),
        ],
    );
    let fresh = c.account("fresh", "viewer");
    let victim = c.account("victim", "viewer");
    c.start(1).await;
    let addr = c.r(0).base.trim_start_matches("http://").to_owned();
    // Each request needs an uncached Argon2 run (a wrong secret for a real
    // client, from one of many addresses); with one permit most queue,
    // and the 100 ms deadline drops the ones queued too long. Half the
    // clients also reset their connection while waiting.
    let mut timed_out = 0;
    for _wave in 0..5 {
        let mut conns = Vec::new();
        for i in 0..60 {
            let (addr, id) = (addr.clone(), victim.client_id.clone());
            conns.push(tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(&addr).await.ok()?;
                let auth = data_encoding::BASE64
                    .encode(format!("{id}:{}", wrong_secret()).as_bytes());
                let body = "grant_type=client_credentials";
                let req = format!(
                    "POST /oauth/token HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\n\
                     Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(req.as_bytes()).await.ok()?;
                if i % 2 == 0 {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    // SO_LINGER 0: close with a reset, as a client giving up.
                    #[allow(deprecated)]
                    s.set_linger(Some(Duration::ZERO)).ok()?;
                    return Some(false);
                }
                let mut head = [0u8; 12];
                use tokio::io::AsyncReadExt;
                s.read_exact(&mut head).await.ok()?;
                Some(&head == b"HTTP/1.1 503")
            }));
        }
        for h in conns {
            if let Ok(Some(true)) = h.await {
                timed_out += 1;
            }
        }
    }
    assert!(timed_out > 0, "no request was cut off: nothing was tested");
    // The queue empties once the flood is over.
    let http = c.http.clone();
    let queued = || async {
        let text = http
            .get(c.r(0).url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix("warden_argon2_queued "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .expect("warden_argon2_queued in /metrics")
    };
    let t0 = Instant::now();
    while queued().await > 0.0 {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "Argon2 queue places leaked: {} still counted 15 s after the flood",
            queued().await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Once the work already handed to Argon2 has finished, the fresh
    // account's correct secret (never verified, so not cached) is checked,
    // not refused as overloaded.
    let t0 = Instant::now();
    loop {
        let r = crate::replicas::token(&http, c.r(0), &fresh, crate::replicas::ISSUER).await;
        let st = r.status().as_u16();
        if st == 200 {
            break;
        }
        assert_eq!(st, 503, "{}", r.text().await.unwrap_or_default());
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "uncached authentication still overloaded 15 s after the flood"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
