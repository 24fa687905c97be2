//! The outermost request layer, written by hand because it runs on every
//! request: it gives the request an id (kept from `x-request-id` when the
//! caller sent a sane one), opens the `request` span every log line of the
//! request carries, logs server errors, and returns the id on the response.
//!
//! It replaces tower-http's SetRequestId, Trace and PropagateRequestId
//! layers, which did the same in three layers with a boxed service clone
//! and a body wrapper each.
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::http::{HeaderName, HeaderValue, Request, Response};
use tower::{Layer, Service};
use tracing::Span;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest incoming request id that is kept; anything longer, empty or
/// not printable ASCII is replaced with a fresh one.
const MAX_INCOMING_ID: usize = 128;

/// `access_log`: one `info` line for every request (else only for the
/// refused ones, 401 and 403, and failures).
#[derive(Clone, Copy, Default)]
pub struct ObserveLayer {
    pub access_log: bool,
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            access_log: self.access_log,
        }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    access_log: bool,
}

/// Why a request was refused, attached to its response by the code that
/// refused it, for the one log line the observe layer writes. Never holds
/// a secret: the reason is the answer's own text, the client id only one
/// shaped like a client id.
#[derive(Clone, Debug, Default)]
pub struct Refusal {
    pub reason: String,
    pub client_id: Option<String>,
    pub ip: Option<std::net::IpAddr>,
}

impl<S, B, R> Service<Request<B>> for Observe<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let req_peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let id = match req.headers().get(&REQUEST_ID) {
            Some(v) if acceptable(v) => v.clone(),
            _ => {
                let v = fresh_id();
                req.headers_mut().insert(REQUEST_ID, v.clone());
                v
            }
        };
        // Spans carry the path only: a query string could hold credentials
        // a misbehaving client put there.
        let span = tracing::info_span!(
            "request",
            method = req.method().as_str(),
            path = req.uri().path(),
            request_id = id.to_str().unwrap_or("-"),
        );
        let inner = {
            let _entered = span.enter();
            tracing::debug!("started processing request");
            self.inner.call(req)
        };
        ObserveFuture {
            inner,
            span,
            id: Some(id),
            start: Instant::now(),
            peer: req_peer,
            access_log: self.access_log,
        }
    }
}

pin_project_lite::pin_project! {
    pub struct ObserveFuture<F> {
        #[pin]
        inner: F,
        span: Span,
        id: Option<HeaderValue>,
        start: Instant,
        peer: Option<std::net::IpAddr>,
        access_log: bool,
    }
}

impl<F, R, E> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let mut res = ready!(this.inner.poll(cx))?;
        let status = res.status().as_u16();
        let latency_ms = this.start.elapsed().as_secs_f64() * 1000.0;
        let refused = status == 401 || status == 403;
        if status >= 500 || refused || *this.access_log {
            // Only a request that is logged pays for formatting its address.
            let refusal = res.extensions().get::<Refusal>();
            let ip = refusal.and_then(|r| r.ip).or(*this.peer);
            let ip = ip.map(|i| i.to_string());
            let ip = ip.as_deref().unwrap_or("-");
            if status >= 500 {
                tracing::error!(status, latency_ms, ip, "response failed");
            } else if refused {
                let reason = refusal.map(|r| r.reason.as_str()).unwrap_or("-");
                let client_id = refusal.and_then(|r| r.client_id.as_deref()).unwrap_or("-");
                tracing::info!(status, reason, client_id, ip, latency_ms, "request refused");
            } else {
                tracing::info!(status, latency_ms, ip, "request");
            }
        } else {
            tracing::debug!(status, latency_ms, "finished processing request");
        }
        if let Some(id) = this.id.take() {
            res.headers_mut().insert(REQUEST_ID, id);
        }
        Poll::Ready(Ok(res))
    }
}

/// A caller's id is kept when it is short printable ASCII: it ends up in
/// log lines, where control characters or megabytes would not belong.
fn acceptable(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= MAX_INCOMING_ID && b.iter().all(|c| c.is_ascii_graphic())
}

/// Request ids: unique, unguessable-looking UUIDs (v4 layout) without a
/// random draw per request. The high half is random per process and the
/// low half is a counter run through a bijective mixer (SplitMix64's
/// finaliser), so ids never repeat within a process and differ between
/// processes. A correlation id needs uniqueness, not secrecy; drawing 16
/// bytes from the CSPRNG per request had cost 4 % of the server's CPU at
/// JWKS load.
fn fresh_id() -> HeaderValue {
    let mut buf = uuid::Uuid::encode_buffer();
    let text = next_request_id().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("-"))
}

static REQUEST_ID_SEED: std::sync::LazyLock<(u64, u64)> = std::sync::LazyLock::new(|| {
    let b: [u8; 16] = crate::domain::credentials::random_bytes();
    let (hi, lo) = b.split_at(8);
    let word = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or_default());
    (word(hi), word(lo))
});
static REQUEST_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn next_request_id() -> uuid::Uuid {
    let (hi, lo) = *REQUEST_ID_SEED;
    let n = REQUEST_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The low half keeps its 64 bits distinct per `n`; the version and
    // variant bits overwrite only the high (per-process) half.
    let v = (u128::from(hi) << 64) | u128::from(mix64(n ^ lo));
    uuid::Builder::from_u128(v)
        .with_version(uuid::Version::Random)
        .with_variant(uuid::Variant::RFC4122)
        .into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_v4_uuids() {
        let ids: std::collections::HashSet<uuid::Uuid> =
            (0..10_000).map(|_| next_request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            assert_eq!(id.get_version(), Some(uuid::Version::Random));
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        }
    }

    #[test]
    fn the_mixer_is_a_bijection_on_a_sample() {
        let out: std::collections::HashSet<u64> = (0..100_000u64).map(mix64).collect();
        assert_eq!(out.len(), 100_000);
    }

    #[test]
    fn incoming_ids_are_kept_only_when_sane() {
        assert!(acceptable(&HeaderValue::from_static("abc-123")));
        assert!(!acceptable(&HeaderValue::from_static("")));
        assert!(!acceptable(&HeaderValue::from_static("a b")));
        let long = "x".repeat(MAX_INCOMING_ID + 1);
        assert!(!acceptable(
            &HeaderValue::from_str(&long).unwrap_or(HeaderValue::from_static(""))
        ));
    }
}
