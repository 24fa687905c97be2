//! The outbound HTTP client federation fetches with (discovery documents
//! and JWKS): https only (plain http, and loopback addresses, only when
//! the deployment allows it), never to a link-local, unspecified,
//! multicast or broadcast address whatever a name resolves to, no redirect
//! followed, each response capped in time and size. TLS runs on aws-lc-rs
//! (as the signing keys) and trusts the system's roots: a private CA is
//! added to the system's store, or named by `SSL_CERT_FILE`.
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_rustls::{ConfigBuilderExt, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Freshness when a response says nothing, and its bounds.
const DEFAULT_FRESH: Duration = Duration::from_secs(300);
const MIN_FRESH: Duration = Duration::from_secs(60);
const MAX_FRESH: Duration = Duration::from_secs(86_400);
/// Each request's deadline, and the connection's.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest document read.
const MAX_BODY: usize = 256 * 1024;

/// Why a fetch failed (logged; never shown to a token's presenter).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Refused(String),
    #[error("request failed: {0}")]
    Http(String),
}

pub fn refused(why: impl Into<String>) -> FetchError {
    FetchError::Refused(why.into())
}

/// The deepest cause of an error ("Connection refused (os error 111)"),
/// which says more than hyper's "client error (Connect)".
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

type HttpClient = Client<HttpsConnector<HttpConnector<Resolver>>, Full<Bytes>>;

/// The client, and whether plain http and loopback are allowed.
pub struct Outbound {
    http: HttpClient,
    allow_http: bool,
}

impl Outbound {
    /// `allow_http`: plain http and loopback addresses are allowed (for
    /// development and tests).
    pub fn new(allow_http: bool) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_native_roots()?
            .with_no_client_auth();
        let mut connector = HttpConnector::new_with_resolver(Resolver { allow_http });
        connector.enforce_http(false);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self { http, allow_http })
    }

    pub fn allow_http(&self) -> bool {
        self.allow_http
    }

    /// GETs a JSON document: a 200 (no redirect is followed), at most
    /// `MAX_BODY`, within `REQUEST_TIMEOUT`; and its freshness.
    pub async fn get_json(&self, url: &str) -> Result<(Value, Duration), FetchError> {
        let req = hyper::Request::get(url);
        self.send(url, req, Bytes::new()).await
    }

    /// POSTs a form (`application/x-www-form-urlencoded`), with HTTP Basic
    /// credentials when given, under the same rules as `get_json`: for
    /// the console's single sign-on, at its provider's token endpoint.
    pub async fn post_form(
        &self,
        url: &str,
        form: String,
        basic: Option<String>,
    ) -> Result<Value, FetchError> {
        let mut req = hyper::Request::post(url).header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
        if let Some(b) = basic {
            req = req.header(hyper::header::AUTHORIZATION, format!("Basic {b}"));
        }
        self.send(url, req, Bytes::from(form)).await.map(|(v, _)| v)
    }

    async fn send(
        &self,
        url: &str,
        req: hyper::http::request::Builder,
        body: Bytes,
    ) -> Result<(Value, Duration), FetchError> {
        check_url(url, self.allow_http)?;
        let req = req
            .header(hyper::header::ACCEPT, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("warden/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body))
            .map_err(|_| refused("not a URL"))?;
        let fetch = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| FetchError::Http(innermost(&e)))?;
            if resp.status() != hyper::StatusCode::OK {
                return Err(refused(format!("{url} answered {}", resp.status())));
            }
            let fresh = freshness(resp.headers().get(hyper::header::CACHE_CONTROL));
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|_| refused(format!("{url}: unreadable or over {MAX_BODY} bytes")))?
                .to_bytes();
            Ok((body, fresh))
        };
        let (body, fresh) = tokio::time::timeout(REQUEST_TIMEOUT, fetch)
            .await
            .map_err(|_| refused(format!("{url}: no answer within {REQUEST_TIMEOUT:?}")))??;
        let v = serde_json::from_slice(&body).map_err(|_| refused(format!("{url}: not JSON")))?;
        Ok((v, fresh))
    }
}

/// How long a response stays fresh: its `max-age`, within bounds
/// (`no-store`, `no-cache`: the least).
fn freshness(cc: Option<&hyper::header::HeaderValue>) -> Duration {
    let Some(cc) = cc.and_then(|v| v.to_str().ok()) else {
        return DEFAULT_FRESH;
    };
    let mut fresh = DEFAULT_FRESH;
    for d in cc.split(',').map(str::trim) {
        let d = d.to_ascii_lowercase();
        if d == "no-store" || d == "no-cache" {
            return MIN_FRESH;
        }
        if let Some(n) = d
            .strip_prefix("max-age=")
            .and_then(|n| n.parse::<u64>().ok())
        {
            fresh = Duration::from_secs(n);
        }
    }
    fresh.clamp(MIN_FRESH, MAX_FRESH)
}

pub use crate::domain::ip::fetchable as address_allowed;

/// An https URL (http only when allowed) whose host, when an address
/// literal, is one warden connects to (names are checked as they resolve,
/// by `Resolver`).
fn check_url(url: &str, allow_http: bool) -> Result<(), FetchError> {
    let u = url::Url::parse(url).map_err(|_| refused("not a URL"))?;
    if !(u.scheme() == "https" || (allow_http && u.scheme() == "http")) {
        return Err(refused(format!("{url}: not https")));
    }
    let ip = match u.host() {
        Some(url::Host::Ipv4(a)) => IpAddr::V4(a),
        Some(url::Host::Ipv6(a)) => IpAddr::V6(a),
        _ => return Ok(()),
    };
    if address_allowed(ip, allow_http) {
        Ok(())
    } else {
        Err(refused(format!(
            "{ip} is not an address warden connects to"
        )))
    }
}

/// Resolves names as the system does, dropping every address federation
/// may not connect to.
#[derive(Clone)]
struct Resolver {
    allow_http: bool,
}

type Resolving =
    Pin<Box<dyn Future<Output = std::io::Result<std::vec::IntoIter<SocketAddr>>> + Send>>;

impl tower::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow = self.allow_http;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| address_allowed(a.ip(), allow))
                .collect();
            if addrs.is_empty() {
                return Err(std::io::Error::other(format!(
                    "{host} has no address warden connects to"
                )));
            }
            Ok(addrs.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_loopback_addresses_are_refused() {
        for (ip, loopback_ok, ok) in [
            ("169.254.169.254", true, false),
            ("fe80::1", true, false),
            ("0.0.0.0", true, false),
            ("::", true, false),
            ("224.0.0.1", true, false),
            ("100.100.100.200", true, false),
            ("::ffff:169.254.169.254", true, false),
            ("::a9fe:a9fe", true, false),
            ("64:ff9b::a9fe:a9fe", true, false),
            ("fd00:ec2::254", true, false),
            ("168.63.129.16", true, false),
            ("64:ff9b::8c52:7003", false, true),
            ("fd00::1", false, true),
            ("127.0.0.1", false, false),
            ("::1", false, false),
            ("127.0.0.1", true, true),
            ("10.0.0.5", false, true),
            ("192.168.1.10", false, true),
            ("140.82.112.3", false, true),
        ] {
            let addr: IpAddr = ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
            assert_eq!(address_allowed(addr, loopback_ok), ok, "{ip}");
        }
        assert!(check_url("https://169.254.169.254/x", true).is_err());
        assert!(check_url("https://[fe80::1]/x", true).is_err());
        assert!(check_url("https://issuer.example/x", false).is_ok());
        assert!(check_url("http://issuer.example/x", false).is_err());
        assert!(check_url("http://127.0.0.1:8080/x", true).is_ok());
    }

    #[test]
    fn freshness_follows_cache_control_within_bounds() {
        let hv = |s: &'static str| hyper::header::HeaderValue::from_static(s);
        assert_eq!(freshness(None), DEFAULT_FRESH);
        assert_eq!(
            freshness(Some(&hv("public, max-age=600"))),
            Duration::from_secs(600)
        );
        assert_eq!(freshness(Some(&hv("max-age=1"))), MIN_FRESH);
        assert_eq!(freshness(Some(&hv("max-age=99999999"))), MAX_FRESH);
        assert_eq!(freshness(Some(&hv("no-store"))), MIN_FRESH);
    }
}
