//! From raw `(value, source)` pairs to a validated `Config`: one small
//! parser per setting, each naming the setting's source when it refuses.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::{Config, ConfigError, LogFormat, MAX_REFRESH_TOKEN_TTL_SECS};
use crate::bookkeeping::TokenEvents;
use crate::crypto::keys::Alg;
use crate::domain::ip::parse_cidr;
use crate::ratelimit::Quota;

/// The settings as read: key → (value, where it came from).
struct Raw<'a>(&'a HashMap<String, (String, String)>);

fn bad(src: &str, why: &str) -> ConfigError {
    ConfigError(format!("invalid {src}: {why}"))
}

impl Raw<'_> {
    fn get(&self, k: &str) -> Option<(&str, &str)> {
        self.0.get(k).map(|(v, src)| (v.as_str(), src.as_str()))
    }

    /// Where `k` came from, or `default`.
    fn source(&self, k: &str) -> &str {
        self.get(k).map_or("default", |(_, s)| s)
    }

    fn duration(
        &self,
        k: &str,
        default: &str,
        min_s: u64,
        max_s: u64,
    ) -> Result<Duration, ConfigError> {
        duration(self.get(k), default, min_s, max_s)
    }

    fn address(&self, k: &str, example: &str) -> Result<Option<SocketAddr>, ConfigError> {
        self.get(k)
            .map(|(v, src)| {
                v.parse()
                    .map_err(|_| bad(src, &format!("expected HOST:PORT, e.g. {example}")))
            })
            .transpose()
    }

    fn flag(&self, k: &str) -> Result<bool, ConfigError> {
        match self.get(k) {
            None | Some(("false", _)) => Ok(false),
            Some(("true", _)) => Ok(true),
            Some((_, src)) => Err(bad(src, "expected true or false")),
        }
    }

    fn federation_client_id(&self) -> Result<bool, ConfigError> {
        match self.get("federation_client_id") {
            None | Some(("required", _)) => Ok(false),
            Some(("optional", _)) => Ok(true),
            Some((_, src)) => Err(bad(src, "expected required or optional")),
        }
    }

    fn client_assertion_audience(&self) -> Result<bool, ConfigError> {
        match self.get("client_assertion_audience") {
            None | Some(("issuer-or-endpoint", _)) => Ok(false),
            Some(("strict", _)) => Ok(true),
            Some((_, src)) => Err(bad(src, "expected issuer-or-endpoint or strict")),
        }
    }

    /// A whole number in `min..=max` (`default` when unset).
    fn count(&self, k: &str, default: usize, min: usize, max: usize) -> Result<usize, ConfigError> {
        match self.get(k) {
            None => Ok(default),
            Some((v, src)) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| bad(src, &format!("expected a whole number from {min} to {max}"))),
        }
    }

    /// The connection cap: by default three quarters of the open-file
    /// limit (the rest is for the database, key files and outbound
    /// fetches), at most 50,000.
    fn max_connections(&self) -> Result<usize, ConfigError> {
        let default =
            (crate::connections::descriptor_limit().saturating_mul(3) / 4).clamp(64, 50_000);
        self.count("max_connections", default, 1, 1_000_000)
    }

    fn quota(&self, k: &str, default: &str) -> Result<Option<Quota>, ConfigError> {
        let (v, src) = self.get(k).unwrap_or((default, "default"));
        Quota::parse(v).map_err(|why| bad(src, why))
    }

    fn database_url(&self) -> Result<String, ConfigError> {
        match self.get("database_url") {
            Some((v, _))
                if v.starts_with("sqlite:")
                    || v.starts_with("postgres://")
                    || v.starts_with("postgresql://") =>
            {
                Ok(v.to_owned())
            }
            Some((_, src)) => Err(bad(src, "expected a sqlite:// or postgres:// URL")),
            None => Ok("sqlite://warden.db".to_owned()),
        }
    }

    fn default_audience(&self) -> Result<Option<String>, ConfigError> {
        match self.get("default_audience") {
            Some((v, src)) if v.trim().is_empty() || v.len() > 512 => {
                Err(bad(src, "must be a non-empty URI"))
            }
            Some((v, _)) => Ok(Some(v.trim().to_owned())),
            None => Ok(None),
        }
    }

    fn trusted_proxies(&self) -> Result<Vec<IpNet>, ConfigError> {
        let Some((v, src)) = self.get("trusted_proxies") else {
            return Ok(Vec::new());
        };
        v.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| parse_cidr(s).map_err(|e| bad(src, &e.to_string())))
            .collect()
    }

    fn log(&self) -> Result<String, ConfigError> {
        match self.get("log") {
            Some((v, src)) => {
                tracing_subscriber::EnvFilter::try_new(v).map_err(|e| bad(src, &e.to_string()))?;
                Ok(v.to_owned())
            }
            None => Ok("info".to_owned()),
        }
    }

    fn log_format(&self) -> Result<LogFormat, ConfigError> {
        match self.get("log_format") {
            None | Some(("text", _)) => Ok(LogFormat::Text),
            Some(("json", _)) => Ok(LogFormat::Json),
            Some((_, src)) => Err(bad(src, "expected `text` or `json`")),
        }
    }

    fn argon2_concurrency(&self) -> Result<usize, ConfigError> {
        match self.get("argon2_concurrency") {
            Some((v, src)) => match v.parse::<usize>() {
                Ok(n) if (1..=256).contains(&n) => Ok(n),
                _ => Err(bad(src, "expected an integer from 1 to 256")),
            },
            None => Ok(std::thread::available_parallelism()
                .map(|n| n.get() / 2)
                .unwrap_or(1)
                .max(1)),
        }
    }

    /// `0s` means the shortest sensible interval, 200 ms.
    fn flush_interval(&self) -> Result<Duration, ConfigError> {
        let d = self.duration("flush_interval", "1s", 0, 60)?;
        Ok(if d.is_zero() {
            Duration::from_millis(200)
        } else {
            d
        })
    }

    fn request_timeout(&self) -> Result<Duration, ConfigError> {
        let d = self.duration("request_timeout", "30s", 0, 300)?;
        if d < Duration::from_millis(100) {
            return Err(bad(
                self.source("request_timeout"),
                "must be at least 100ms",
            ));
        }
        Ok(d)
    }

    fn audit_token_events(&self) -> Result<TokenEvents, ConfigError> {
        match self.get("audit_token_events") {
            None => Ok(TokenEvents::All),
            Some((v, src)) => {
                TokenEvents::parse(v).ok_or_else(|| bad(src, "expected all, failures or none"))
            }
        }
    }

    fn audit_retention(&self) -> Result<Option<Duration>, ConfigError> {
        match self.get("audit_retention") {
            Some(("off", _)) => Ok(None),
            _ => self
                .duration("audit_retention", "180d", 86_400, 100 * 365 * 86_400)
                .map(Some),
        }
    }

    fn key_algorithm(&self) -> Result<Alg, ConfigError> {
        match self.get("key_algorithm") {
            None => Ok(Alg::ES256),
            Some((v, src)) => {
                Alg::parse(v).ok_or_else(|| bad(src, "expected ES256, EdDSA or RS256"))
            }
        }
    }

    fn key_reload_interval(&self) -> Result<Duration, ConfigError> {
        self.duration("key_reload_interval", "30s", 1, 3600)
    }

    /// At least the reload interval, or a replica could sign with a key
    /// others do not publish yet.
    fn key_publication_delay(&self, reload: Duration) -> Result<Duration, ConfigError> {
        let d = self.duration("key_publication_delay", "10m", 0, 7 * 86_400)?;
        if d < reload {
            return Err(ConfigError(format!(
                "invalid {}: must be at least key_reload_interval ({}s), or replicas could sign before every replica publishes",
                self.source("key_publication_delay"),
                reload.as_secs()
            )));
        }
        Ok(d)
    }

    fn key_rotation_interval(&self) -> Result<Option<Duration>, ConfigError> {
        match self.get("key_rotation_interval") {
            None | Some(("off", _)) => Ok(None),
            Some(v) => duration(Some(v), "", 1, 365 * 86_400).map(Some),
        }
    }
}

pub(super) fn from_raw(raw: &HashMap<String, (String, String)>) -> Result<Config, ConfigError> {
    let r = Raw(raw);
    let max_refresh = MAX_REFRESH_TOKEN_TTL_SECS as u64;
    // Fields are checked in this order, so of two bad settings the first
    // named here is the one reported.
    Ok(Config {
        database_url: r.database_url()?,
        database_url_source: r
            .get("database_url")
            .map_or_else(|| "the default".to_owned(), |(_, s)| s.to_owned()),
        listen: r
            .address("listen", "127.0.0.1:8080")?
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
        metrics_listen: r.address("metrics_listen", "127.0.0.1:9090")?,
        issuer: r
            .get("issuer")
            .map(|(v, src)| validate_url(v).map_err(|why| bad(src, why)))
            .transpose()?,
        issuer_source: match (r.get("issuer"), r.get("listen")) {
            (Some((_, s)), _) => s.to_owned(),
            (None, Some((_, s))) => format!("the listen address, {s}"),
            (None, None) => "the default listen address".to_owned(),
        },
        keys_dir: PathBuf::from(r.get("keys_dir").map_or("keys", |(v, _)| v)),
        role_catalog: r
            .get("role_catalog")
            .map(|(v, _)| v.trim())
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        default_audience: r.default_audience()?,
        trusted_proxies: r.trusted_proxies()?,
        access_token_ttl: r.duration("access_token_ttl", "15m", 60, 86_400)?,
        refresh_token_ttl: r.duration("refresh_token_ttl", "7d", 300, max_refresh)?,
        log: r.log()?,
        log_format: r.log_format()?,
        argon2_concurrency: r.argon2_concurrency()?,
        flush_interval: r.flush_interval()?,
        auth_failures_per_client: r.quota("auth_failures_per_client", "10/1m")?,
        auth_failures_per_ip: r.quota("auth_failures_per_ip", "100/1m")?,
        header_timeout: r.duration("header_timeout", "30s", 1, 300)?,
        request_timeout: r.request_timeout()?,
        access_log: r.flag("access_log")?,
        audit_token_events: r.audit_token_events()?,
        audit_retention: r.audit_retention()?,
        drain_timeout: r.duration("drain_timeout", "30s", 1, 600)?,
        shutdown_delay: r.duration("shutdown_delay", "0s", 0, 300)?,
        key_algorithm: r.key_algorithm()?,
        key_reload_interval: r.key_reload_interval()?,
        key_publication_delay: r.key_publication_delay(r.key_reload_interval()?)?,
        key_rotation_interval: r.key_rotation_interval()?,
        federation_allow_http: r.flag("federation_allow_http")?,
        federation_client_id_optional: r.federation_client_id()?,
        client_assertion_audience_strict: r.client_assertion_audience()?,
        max_connections: r.max_connections()?,
        max_connections_per_ip: r.count("max_connections_per_ip", 256, 1, 1_000_000)?,
        console_sso: super::console::parse(|k| {
            r.get(k).map(|(v, s)| (v.to_owned(), s.to_owned()))
        })?,
    })
}

fn duration(
    v: Option<(&str, &str)>,
    default: &str,
    min_s: u64,
    max_s: u64,
) -> Result<Duration, ConfigError> {
    let (text, src) = v.unwrap_or((default, "default"));
    let d = humantime::parse_duration(text).map_err(|_| {
        ConfigError(format!(
            "invalid {src}: expected a duration such as 90s, 15m, 7d"
        ))
    })?;
    if d.as_secs() < min_s || d.as_secs() > max_s {
        return Err(ConfigError(format!(
            "invalid {src}: must be between {min_s}s and {max_s}s"
        )));
    }
    Ok(d)
}

/// An issuer is an absolute http(s) URL without query or fragment
/// (RFC 8414 §2); a trailing slash is dropped so `iss` compares exactly.
pub(super) fn validate_url(v: &str) -> Result<String, &'static str> {
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !v.contains(['?', '#', ' ']) => {
            Ok(v.trim_end_matches('/').to_owned())
        }
        _ => Err("expected an http(s) URL without query or fragment"),
    }
}
