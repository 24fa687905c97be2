//! The flood scenario (issue 30, finding 7): while `connections` clients
//! from 32 addresses (behind the trusted proxy 127.0.0.1) send wrong,
//! checksum-valid secrets for real client ids, correct clients that were
//! never verified before (so not in the verified-secret cache) ask for a
//! token, one after another, each from its own address. Reported: how
//! long each took to be served (retrying after a 503 counts in its time),
//! as p50/p99, and how many answers on the way were refusals. The flood's
//! own answers (401, 429, 503) are counted apart.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Cred, Outcome, http1};

/// A token request with Basic credentials, from `from` (X-Forwarded-For).
fn request(host: &str, id: &str, secret: &str, from: &str) -> Vec<u8> {
    let body = "grant_type=client_credentials";
    let auth = data_encoding::BASE64.encode(format!("{id}:{secret}").as_bytes());
    format!(
        "POST /oauth/token HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n\
         X-Forwarded-For: {from}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub async fn run(host: &str, connections: usize, victims: &[Cred], fresh: &[Cred]) -> Outcome {
    let name = "token (fresh, under flood)";
    if victims.is_empty()
        || fresh.is_empty()
        || super::ONLY
            .get()
            .is_some_and(|o| !name.contains(o.as_str()))
    {
        return Outcome::empty(name);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flood_answers = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let mut flood = Vec::new();
    for i in 0..connections {
        let from = format!("198.51.100.{}", i % 32);
        let reqs: Vec<Vec<u8>> = victims
            .iter()
            .map(|v| {
                let wrong = warden::domain::credentials::ClientSecret::generate();
                request(host, &v.id, wrong.expose(), &from)
            })
            .collect();
        let (host, stop, answers) = (host.to_owned(), stop.clone(), flood_answers.clone());
        flood.push(tokio::spawn(async move {
            let mut conn = http1::Conn::new(&host);
            let mut n = i;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let slot = match conn.send(&reqs[n % reqs.len()]).await {
                    Some((401, _)) => 0,
                    Some((429, _)) => 1,
                    _ => 2,
                };
                answers[slot].fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // The flood fills the Argon2 queue first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut out = Outcome::empty(name);
    let mut refusals = 0u64;
    let start = Instant::now();
    for (k, c) in fresh.iter().enumerate() {
        let req = request(
            host,
            &c.id,
            &c.secret,
            &format!("203.0.113.{}", k % 250 + 1),
        );
        let mut conn = http1::Conn::new(host);
        let t0 = Instant::now();
        // Served, or not within 30 s (an error).
        let served = loop {
            match conn.send(&req).await {
                Some((200, _)) => break true,
                _ if t0.elapsed() > Duration::from_secs(30) => break false,
                _ => {
                    refusals += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        if served {
            out.ok += 1;
            let _ = out.hist.record(t0.elapsed().as_micros() as u64);
        } else {
            out.errors += 1;
        }
    }
    out.seconds = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        let _ = f.await;
    }
    let [a, b, c] = &*flood_answers;
    println!(
        "(the flood: {} answered 401, {} throttled 429, {} refused 503; {} fresh clients served, \
         {} refusals on the way)",
        a.load(Ordering::Relaxed),
        b.load(Ordering::Relaxed),
        c.load(Ordering::Relaxed),
        out.ok,
        refusals
    );
    out
}
