//! GETting the issuer's metadata and JWKS: https (plain http only when the
//! configuration allows it), no redirect followed, each answer capped in
//! time and size, TLS on aws-lc-rs with the system's roots.
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_rustls::{ConfigBuilderExt, HttpsConnector};
use hyper_util::client::legacy::Client as Hyper;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::Error;

const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BODY: usize = 256 * 1024;

pub(crate) struct Client {
    http: Hyper<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    allow_http: bool,
}

impl Client {
    pub(crate) fn new(allow_http: bool) -> Result<Self, Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(e.to_string()))?
            .with_native_roots()
            .map_err(|e| Error::Config(e.to_string()))?
            .with_no_client_auth();
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Ok(Self {
            http: Hyper::builder(TokioExecutor::new()).build(https),
            allow_http,
        })
    }

    /// A JSON document and how long it may be used (`max-age`), if said.
    pub(crate) async fn get_json(&self, url: &str) -> Result<(Value, Option<Duration>), Error> {
        let allowed =
            url.starts_with("https://") || (self.allow_http && url.starts_with("http://"));
        if !allowed {
            return Err(Error::Unavailable(format!("{url}: not an https URL")));
        }
        let uri: hyper::Uri = url
            .parse()
            .map_err(|_| Error::Unavailable(format!("{url}: not a URL")))?;
        let fetch = async {
            let resp = self
                .http
                .get(uri)
                .await
                .map_err(|e| Error::Unavailable(format!("{url}: {e}")))?;
            if resp.status() != hyper::StatusCode::OK {
                return Err(Error::Unavailable(format!(
                    "{url} answered {}",
                    resp.status()
                )));
            }
            let max_age = resp
                .headers()
                .get(hyper::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok())
                .and_then(max_age);
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|_| Error::Unavailable(format!("{url}: unreadable or too large")))?
                .to_bytes();
            let v = serde_json::from_slice(&body)
                .map_err(|_| Error::Unavailable(format!("{url}: not JSON")))?;
            Ok((v, max_age))
        };
        tokio::time::timeout(TIMEOUT, fetch)
            .await
            .map_err(|_| Error::Unavailable(format!("{url}: no answer within 5 s")))?
    }
}

/// `max-age=N` of a Cache-Control value (`no-store`, `no-cache`: zero).
fn max_age(v: &str) -> Option<Duration> {
    v.split(',').map(str::trim).find_map(|d| {
        if d.eq_ignore_ascii_case("no-store") || d.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        let (k, n) = d.split_once('=')?;
        k.eq_ignore_ascii_case("max-age")
            .then(|| n.trim().parse().ok().map(Duration::from_secs))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::max_age;
    use std::time::Duration;

    #[test]
    fn max_age_is_read() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=x"), None);
    }
}
