//! The connection cap: at most `max_connections` open connections, and at
//! most `max_connections_per_ip` from one address (IPv6 by /64, which one
//! host holds whole). Without it ~20,000 idle sockets used up the
//! descriptor limit: new clients timed out and the log filled with EMFILE
//! warnings. A connection past either bound is closed as soon as it is
//! accepted, before any byte is read, so holding sockets open costs an
//! attacker its own descriptors, not everyone's. Trusted proxies are
//! exempt from the per-address share (a balancer carries everyone's
//! connections), not from the total.
//!
//! Refusals are logged at most once per `WARN_EVERY`, with how many there
//! were since the last line.
//!
//! `serve` is the accept loop itself, for the public and metrics listeners.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;

const WARN_EVERY: Duration = Duration::from_secs(10);

/// The soft limit on open files (`RLIMIT_NOFILE`), read from
/// `/proc/self/limits`; 1024, the usual default, when it cannot be read.
pub fn descriptor_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1024)
}

pub struct ConnectionLimits {
    max: usize,
    max_per_ip: usize,
    trusted: Vec<IpNet>,
    open: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    refused: AtomicU64,
    warned: Mutex<Option<Instant>>,
}

/// One open connection's place, given back when the connection ends.
pub struct Place {
    limits: Arc<ConnectionLimits>,
    ip: Option<IpAddr>,
}

impl ConnectionLimits {
    pub fn new(max: usize, max_per_ip: usize, trusted: Vec<IpNet>) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            max_per_ip: max_per_ip.max(1),
            trusted,
            open: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
            warned: Mutex::new(None),
        })
    }

    /// Connections open right now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// A place for a connection from `peer`, or `None` (close it): the
    /// server is full, or this address holds its share.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Place> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            self.refused(
                "the server holds its maximum of open connections (WARDEN_MAX_CONNECTIONS)",
            );
            return None;
        }
        let peer = crate::domain::ip::canonical(peer);
        if self.trusted.iter().any(|n| n.contains(&peer)) {
            return Some(Place {
                limits: self.clone(),
                ip: None,
            });
        }
        let key = crate::ratelimit::ip_key(peer);
        let admitted = self.per_ip.lock().is_ok_and(|mut m| {
            let n = m.entry(key).or_insert(0);
            if *n >= self.max_per_ip {
                false
            } else {
                *n += 1;
                true
            }
        });
        if !admitted {
            self.open.fetch_sub(1, Ordering::AcqRel);
            self.refused(
                "one address holds its share of open connections (WARDEN_MAX_CONNECTIONS_PER_IP)",
            );
            return None;
        }
        Some(Place {
            limits: self.clone(),
            ip: Some(key),
        })
    }

    fn refused(&self, why: &str) {
        self.refused.fetch_add(1, Ordering::AcqRel);
        metrics::counter!("warden_connections_refused_total").increment(1);
        rate_limited_warn(&self.warned, || {
            let n = self.refused.swap(0, Ordering::AcqRel);
            tracing::warn!(refused = n, "closing new connections: {why}");
        });
    }
}

/// Runs `warn` at most once per `WARN_EVERY` (per `last`).
pub fn rate_limited_warn(last: &Mutex<Option<Instant>>, warn: impl FnOnce()) {
    let due = last.lock().is_ok_and(|mut l| {
        let due = l.is_none_or(|t| t.elapsed() >= WARN_EVERY);
        if due {
            *l = Some(Instant::now());
        }
        due
    });
    if due {
        warn();
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some(ip) = self.ip
            && let Ok(mut m) = self.limits.per_ip.lock()
            && let Some(n) = m.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                m.remove(&ip);
            }
        }
        self.limits.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts HTTP/1.1 connections until `shutdown`, then stops accepting,
/// lets in-flight requests finish (closing idle keep-alive connections) and
/// returns once all connections are gone or `drain_timeout` has passed.
///
/// hyper is driven directly rather than through `axum::serve` because that
/// sets no timer, so hyper's header-read timeout never fires: a client could
/// hold a connection forever by sending its headers slowly (slowloris) or
/// not at all. Here every connection must deliver a complete request head
/// within `header_timeout`, which also closes idle keep-alive connections.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    config: &crate::config::Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    use axum::extract::ConnectInfo;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let limits = crate::connections::ConnectionLimits::new(
        config.max_connections,
        config.max_connections_per_ip,
        config.trusted_proxies.clone(),
    );
    let accept_warned = std::sync::Mutex::new(None);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off rather
                    // than spin; the listener itself stays usable. Said at
                    // most once per ten seconds, not once per attempt.
                    crate::connections::rate_limited_warn(&accept_warned, || {
                        tracing::warn!(error = %e, "accepting a connection failed");
                    });
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Past the cap the connection is closed before a byte is read.
        let Some(place) = limits.admit(peer.ip()) else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = app.clone();
        let service = hyper::service::service_fn(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(req)
            },
        );
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _place = place;
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, peer = %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections; draining in-flight requests");
    if tokio::time::timeout(config.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout = ?config.drain_timeout,
            "connections still open after the drain timeout; closing them"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn caps_the_total_and_each_address_and_gives_places_back() {
        let trusted = vec!["10.0.0.1/32".parse().unwrap_or_else(|_| unreachable!())];
        let l = ConnectionLimits::new(4, 2, trusted);
        let a1 = l.admit(ip("192.0.2.1"));
        let a2 = l.admit(ip("192.0.2.1"));
        assert!(a1.is_some() && a2.is_some());
        assert!(l.admit(ip("192.0.2.1")).is_none(), "the address's share");
        // Same /64: one host.
        let b1 = l.admit(ip("2001:db8::1"));
        let b2 = l.admit(ip("2001:db8::2"));
        assert!(b1.is_some() && b2.is_some());
        assert!(l.admit(ip("2001:db8::3")).is_none());
        assert_eq!(l.open(), 4);
        assert!(
            l.admit(ip("10.0.0.1")).is_none(),
            "the total binds proxies too"
        );
        drop(a1);
        assert!(
            l.admit(ip("10.0.0.1")).is_some(),
            "a proxy has no share limit"
        );
        drop((a2, b1, b2));
        assert_eq!(l.open(), 0);
        assert!(l.per_ip.lock().is_ok_and(|m| m.is_empty()));
    }
}
