//! Protect an API with warden's access tokens.
//!
//! [`Verifier`] checks a bearer token offline, as RFC 9068 and warden's
//! token contract (`warden-token`) say: a compact JWS with `typ: at+jwt`,
//! an asymmetric algorithm (never `none` or HMAC), signed by a key of the
//! issuer's JWKS (found through its RFC 8414 metadata), issued by that
//! issuer, for this API's audience (compared in RFC 3986 normalized form,
//! as warden compares it), unexpired. The JWKS is cached; a token naming a
//! key the cache lacks triggers one refetch, shared by every request that
//! waits for it and at most once per `refetch_interval`, so a storm of
//! tokens with made-up key ids costs one fetch, not thousands.
#![doc = include_str!("../README.md")]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fetch;
mod jwks;

use std::time::Duration;

pub use warden_token::access::{AccessClaims, Audience};

/// What a [`Verifier`] checks tokens against.
#[derive(Debug, Clone)]
pub struct Config {
    /// warden's issuer URL, exactly as its tokens' `iss` (no trailing `/`).
    pub issuer: String,
    /// This API's audience (its registration in warden); a token must name
    /// it in `aud`, in any spelling of it.
    pub audience: String,
    /// The least time between two JWKS fetches caused by unknown key ids.
    pub refetch_interval: Duration,
    /// How long a fetched JWKS is used when its answer says nothing
    /// (`Cache-Control: max-age` wins, within 1 minute and 1 day).
    pub default_ttl: Duration,
    /// Plain `http://` issuers, for development and tests.
    pub allow_http: bool,
}

impl Config {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            audience: audience.into(),
            refetch_interval: Duration::from_secs(30),
            default_ttl: Duration::from_secs(300),
            allow_http: false,
        }
    }
}

/// Why a token is refused, or why the verifier cannot tell.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not a valid access token of this issuer (format, algorithm, key,
    /// signature, issuer or time): RFC 6750 `invalid_token`.
    #[error("the access token is not valid")]
    InvalidToken,
    /// A valid token of this issuer for another API: `invalid_token`.
    #[error("the access token is for another audience")]
    WrongAudience,
    /// The issuer's metadata or keys could not be fetched: the caller
    /// should answer 503, never accept.
    #[error("cannot fetch the issuer's keys: {0}")]
    Unavailable(String),
    /// The configuration cannot work (a bad URL, http without `allow_http`).
    #[error("{0}")]
    Config(String),
}

/// Verifies warden's access tokens offline. Cheap to share (`Arc` it).
pub struct Verifier {
    config: Config,
    keys: jwks::Cache,
}

impl Verifier {
    pub fn new(config: Config) -> Result<Self, Error> {
        if !config.allow_http && !config.issuer.starts_with("https://") {
            return Err(Error::Config(format!(
                "the issuer {} is not https (set allow_http for development)",
                config.issuer
            )));
        }
        let client = fetch::Client::new(config.allow_http)?;
        Ok(Self {
            keys: jwks::Cache::new(client, &config),
            config,
        })
    }

    /// The claims of a token valid now for this API, or why not.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, Error> {
        let now = now_unix();
        let kid = warden_token::jose::Unverified::decode(token)
            .and_then(|j| j.kid)
            .ok_or(Error::InvalidToken)?;
        let key = self.keys.key(&kid).await?.ok_or(Error::InvalidToken)?;
        let (_, claims) =
            warden_token::access::verify_access_token(token, &self.config.issuer, now, |_| {
                Some(&*key)
            })
            .ok_or(Error::InvalidToken)?;
        if !claims.aud.names(&self.config.audience) {
            return Err(Error::WrongAudience);
        }
        Ok(claims)
    }

    /// How many times the JWKS was fetched (for metrics and tests).
    pub fn jwks_fetches(&self) -> u64 {
        self.keys.fetches()
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
