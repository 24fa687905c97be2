//! A stand-in external issuer for the federation (jwt-bearer) scenario: it
//! serves OpenID discovery and a JWKS with one ES256 key over plain http on
//! loopback (warden runs with `WARDEN_FEDERATION_ALLOW_HTTP=true`), and
//! signs the tokens the workers present. warden fetches its keys once; the
//! scenario measures the token endpoint with a warm key cache.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use data_encoding::BASE64URL_NOPAD as B64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Issuer {
    pub url: String,
    pair: Arc<EcdsaKeyPair>,
    /// Requests served (discovery and JWKS).
    pub served: Arc<AtomicU64>,
}

impl Issuer {
    pub async fn start() -> Self {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap_or_else(|_| unreachable!("key generation"));
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .unwrap_or_else(|_| unreachable!("key parse"));
        let point = pair.public_key().as_ref().to_vec();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let url = format!(
            "http://{}",
            listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
        );
        let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "bench-issuer",
            "alg": "ES256", "use": "sig", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])}]})
        .to_string();
        let discovery =
            serde_json::json!({"issuer": url, "jwks_uri": format!("{url}/jwks")}).to_string();
        let served = Arc::new(AtomicU64::new(0));
        let count = served.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (jwks, discovery, count) = (jwks.clone(), discovery.clone(), count.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut n = 0;
                    while n < buf.len() {
                        match conn.read(&mut buf[n..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => n += k,
                        }
                        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    let head = String::from_utf8_lossy(&buf[..n]);
                    let path = head.split_whitespace().nth(1).unwrap_or("");
                    let (status, body) = match path {
                        "/.well-known/openid-configuration" => ("200 OK", discovery),
                        "/jwks" => ("200 OK", jwks),
                        _ => ("404 Not Found", "{}".to_owned()),
                    };
                    count.fetch_add(1, Ordering::Relaxed);
                    let resp = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                         Cache-Control: max-age=3600\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(resp.as_bytes()).await;
                });
            }
        });
        Self {
            url,
            pair: Arc::new(pair),
            served,
        }
    }

    /// A token for `sub` with audience `aud`, valid for half an hour (a
    /// workload presents the same token many times, as a Kubernetes pod
    /// does its projected token).
    pub fn token(&self, sub: &str, aud: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let header = B64.encode(br#"{"alg":"ES256","typ":"JWT","kid":"bench-issuer"}"#);
        let claims = serde_json::json!({"iss": self.url, "sub": sub, "aud": aud,
            "iat": now, "exp": now + 1800, "repository_id": "1001"});
        let input = format!("{header}.{}", B64.encode(claims.to_string().as_bytes()));
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = self
            .pair
            .sign(&rng, input.as_bytes())
            .unwrap_or_else(|_| unreachable!("signing cannot fail"));
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }
}
