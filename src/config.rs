//! Configuration: `WARDEN_*` environment variables over an optional TOML
//! file over defaults. Every value is validated here, once, so a bad one
//! stops start-up with a message that names the setting.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use crate::crypto::keys::Alg;
use crate::domain::ip::parse_cidr;
use crate::ratelimit::Quota;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    /// Where `database_url` came from: the variable, the file's key, or
    /// `default` (commands say which database they used, and why).
    pub database_url_source: String,
    pub listen: SocketAddr,
    /// A separate address for `/metrics`; when set, the public listener no
    /// longer serves it.
    pub metrics_listen: Option<SocketAddr>,
    /// `None` until the listener is bound when not configured: the default
    /// issuer is derived from the actual address (which matters for port 0).
    pub issuer: Option<String>,
    pub keys_dir: PathBuf,
    pub default_audience: Option<String>,
    pub trusted_proxies: Vec<IpNet>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub log: String,
    pub log_format: LogFormat,
    /// Concurrent Argon2 verifications; bounds the CPU a flood of wrong
    /// secrets can take. Default: half the cores, at least one.
    pub argon2_concurrency: usize,
    /// How often batched bookkeeping (`last used`, credential audit events)
    /// is written.
    pub flush_interval: Duration,
    /// Failed authentications allowed per (client id, source address)
    /// before that pair is throttled; `None` turns the limit off.
    pub auth_failures_per_client: Option<Quota>,
    /// Failed authentications allowed per source address (IPv6: per /64).
    pub auth_failures_per_ip: Option<Quota>,
    /// A connection must deliver a complete request head within this time
    /// (slow or idle clients are disconnected).
    pub header_timeout: Duration,
    /// One log line per request (`WARDEN_ACCESS_LOG`), not only for the
    /// refused ones.
    pub access_log: bool,
    /// Which per-token events reach the audit log.
    pub audit_token_events: crate::bookkeeping::TokenEvents,
    /// Audit events and usage counts older than this are pruned; `None`
    /// keeps them forever.
    pub audit_retention: Option<Duration>,
    /// Deadline for a request that waits on the database or Argon2; past
    /// it the request is dropped and answered 503.
    pub request_timeout: Duration,
    /// On shutdown, how long in-flight requests may take to finish.
    pub drain_timeout: Duration,
    /// On shutdown, how long to keep accepting connections (with readiness
    /// failing) before refusing them, for load balancers to notice.
    pub shutdown_delay: Duration,
    /// Algorithm of keys warden creates (the first key, automatic rotation).
    pub key_algorithm: Alg,
    /// How long a new key is published before it signs; longer than
    /// resource servers cache the JWKS.
    pub key_publication_delay: Duration,
    /// How often each replica re-reads the keys directory.
    pub key_reload_interval: Duration,
    /// Automatic rotation period; `None` rotates only on `warden keys rotate`.
    pub key_rotation_interval: Option<Duration>,
}

/// The longest refresh-token lifetime warden accepts (90 days). No refresh
/// token, issued under any setting, outlives its issue by more.
pub const MAX_REFRESH_TOKEN_TTL_SECS: i64 = 90 * 86_400;

/// A bad setting: the message names it and is one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The keys a TOML file or the environment may set (env: `WARDEN_` + upper).
const KEYS: &[&str] = &[
    "database_url",
    "listen",
    "metrics_listen",
    "issuer",
    "keys_dir",
    "default_audience",
    "trusted_proxies",
    "access_token_ttl",
    "refresh_token_ttl",
    "log",
    "log_format",
    "argon2_concurrency",
    "flush_interval",
    "auth_failures_per_client",
    "auth_failures_per_ip",
    "header_timeout",
    "request_timeout",
    "audit_token_events",
    "access_log",
    "audit_retention",
    "drain_timeout",
    "shutdown_delay",
    "key_algorithm",
    "key_publication_delay",
    "key_reload_interval",
    "key_rotation_interval",
];

impl Config {
    /// Reads the process environment and, if given, a TOML file.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let mut raw = HashMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("--config {}: {e}", path.display())))?;
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                ConfigError(format!("--config {}: {}", path.display(), e.message()))
            })?;
            for (k, v) in table {
                if !KEYS.contains(&k.as_str()) {
                    return Err(ConfigError(format!(
                        "--config {}: unknown setting `{k}`",
                        path.display()
                    )));
                }
                let s = match v {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    toml::Value::Array(a) => a
                        .iter()
                        .map(|x| x.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| {
                            ConfigError(format!(
                                "--config {}: `{k}` must be a list of strings",
                                path.display()
                            ))
                        })?
                        .join(","),
                    _ => {
                        return Err(ConfigError(format!(
                            "--config {}: `{k}` has an unsupported type",
                            path.display()
                        )));
                    }
                };
                let src = format!("`{k}` in {}", path.display());
                raw.insert(k, (s, src));
            }
        }
        for k in KEYS {
            let var = format!("WARDEN_{}", k.to_ascii_uppercase());
            if let Ok(v) = std::env::var(&var) {
                raw.insert((*k).to_owned(), (v, var));
            }
        }
        Self::from_raw(&raw)
    }

    /// `WARDEN_*` variables in the environment that are no setting (a
    /// typo such as `WARDEN_ISUER` would otherwise be ignored in silence),
    /// each with the setting it most likely meant. The test and benchmark
    /// harnesses' own `WARDEN_TEST_*` and `WARDEN_BENCH_*` are not settings
    /// and not reported.
    pub fn unknown_variables() -> Vec<(String, Option<String>)> {
        let mut out: Vec<(String, Option<String>)> = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter(|k| k.starts_with("WARDEN_"))
            .filter(|k| !k.starts_with("WARDEN_TEST_") && !k.starts_with("WARDEN_BENCH_"))
            .filter(|k| {
                let key = k["WARDEN_".len()..].to_ascii_lowercase();
                !KEYS.contains(&key.as_str())
            })
            .map(|k| {
                let key = k["WARDEN_".len()..].to_ascii_lowercase();
                let near = KEYS
                    .iter()
                    .map(|c| (edit_distance(&key, c), c))
                    .filter(|(d, _)| *d <= 2)
                    .min()
                    .map(|(_, c)| format!("WARDEN_{}", c.to_ascii_uppercase()));
                (k, near)
            })
            .collect();
        out.sort();
        out
    }

    /// Builds a configuration from `(key, value)` pairs named like the TOML
    /// keys, on top of the defaults; for embedding and tests.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<Self, ConfigError> {
        let raw = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), ((*v).to_owned(), format!("`{k}`"))))
            .collect();
        Self::from_raw(&raw)
    }

    fn from_raw(raw: &HashMap<String, (String, String)>) -> Result<Self, ConfigError> {
        let get = |k: &str| raw.get(k).map(|(v, src)| (v.as_str(), src.as_str()));
        let bad = |src: &str, why: &str| ConfigError(format!("invalid {src}: {why}"));

        let database_url = match get("database_url") {
            Some((v, src)) => {
                if !(v.starts_with("sqlite:")
                    || v.starts_with("postgres://")
                    || v.starts_with("postgresql://"))
                {
                    return Err(bad(src, "expected a sqlite:// or postgres:// URL"));
                }
                v.to_owned()
            }
            None => "sqlite://warden.db".to_owned(),
        };
        let database_url_source = get("database_url")
            .map(|(_, src)| src.to_owned())
            .unwrap_or_else(|| "the default".to_owned());
        let listen = match get("listen") {
            Some((v, src)) => v
                .parse()
                .map_err(|_| bad(src, "expected HOST:PORT, e.g. 127.0.0.1:8080"))?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let metrics_listen = match get("metrics_listen") {
            Some((v, src)) => Some(
                v.parse()
                    .map_err(|_| bad(src, "expected HOST:PORT, e.g. 127.0.0.1:9090"))?,
            ),
            None => None,
        };
        let issuer = match get("issuer") {
            Some((v, src)) => Some(validate_url(v).map_err(|why| bad(src, why))?),
            None => None,
        };
        let keys_dir = PathBuf::from(get("keys_dir").map(|(v, _)| v).unwrap_or("keys"));
        let default_audience = match get("default_audience") {
            Some((v, src)) if v.trim().is_empty() || v.len() > 512 => {
                return Err(bad(src, "must be a non-empty URI"));
            }
            Some((v, _)) => Some(v.trim().to_owned()),
            None => None,
        };
        let trusted_proxies = match get("trusted_proxies") {
            Some((v, src)) => v
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| parse_cidr(s).map_err(|e| bad(src, &e.to_string())))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let access_token_ttl = duration(get("access_token_ttl"), "15m", 60, 86_400)?;
        let refresh_token_ttl = duration(
            get("refresh_token_ttl"),
            "7d",
            300,
            MAX_REFRESH_TOKEN_TTL_SECS as u64,
        )?;
        let log = get("log")
            .map(|(v, _)| v.to_owned())
            .unwrap_or_else(|| "info".to_owned());
        if let Some((v, src)) = get("log") {
            tracing_subscriber::EnvFilter::try_new(v).map_err(|e| bad(src, &e.to_string()))?;
        }
        let log_format = match get("log_format") {
            None | Some(("text", _)) => LogFormat::Text,
            Some(("json", _)) => LogFormat::Json,
            Some((_, src)) => return Err(bad(src, "expected `text` or `json`")),
        };
        let default_conc = std::thread::available_parallelism()
            .map(|n| n.get() / 2)
            .unwrap_or(1)
            .max(1);
        let argon2_concurrency = match get("argon2_concurrency") {
            Some((v, src)) => match v.parse::<usize>() {
                Ok(n) if (1..=256).contains(&n) => n,
                _ => return Err(bad(src, "expected an integer from 1 to 256")),
            },
            None => default_conc,
        };
        let flush_interval = duration(get("flush_interval"), "1s", 0, 60)?;
        let flush_interval = if flush_interval.is_zero() {
            Duration::from_millis(200)
        } else {
            flush_interval
        };
        let quota = |key: &str, default: &str| {
            let (v, src) = get(key).unwrap_or((default, "default"));
            Quota::parse(v).map_err(|why| bad(src, why))
        };
        let auth_failures_per_client = quota("auth_failures_per_client", "10/1m")?;
        let auth_failures_per_ip = quota("auth_failures_per_ip", "100/1m")?;
        let header_timeout = duration(get("header_timeout"), "30s", 1, 300)?;
        let request_timeout = duration(get("request_timeout"), "30s", 0, 300)?;
        if request_timeout < Duration::from_millis(100) {
            return Err(bad(
                get("request_timeout").map(|(_, s)| s).unwrap_or("default"),
                "must be at least 100ms",
            ));
        }
        let access_log = match get("access_log") {
            None | Some(("false", _)) => false,
            Some(("true", _)) => true,
            Some((_, src)) => return Err(bad(src, "expected true or false")),
        };
        let audit_token_events = match get("audit_token_events") {
            None => crate::bookkeeping::TokenEvents::All,
            Some((v, src)) => crate::bookkeeping::TokenEvents::parse(v)
                .ok_or_else(|| bad(src, "expected all, failures or none"))?,
        };
        let audit_retention = match get("audit_retention") {
            Some(("off", _)) => None,
            v => Some(duration(
                v.or(Some(("180d", "default"))),
                "180d",
                86_400,
                100 * 365 * 86_400,
            )?),
        };
        let drain_timeout = duration(get("drain_timeout"), "30s", 1, 600)?;
        let shutdown_delay = duration(get("shutdown_delay"), "0s", 0, 300)?;
        let key_algorithm = match get("key_algorithm") {
            None => Alg::ES256,
            Some((v, src)) => {
                Alg::parse(v).ok_or_else(|| bad(src, "expected ES256, EdDSA or RS256"))?
            }
        };
        let key_reload_interval = duration(get("key_reload_interval"), "30s", 1, 3600)?;
        let key_publication_delay = duration(get("key_publication_delay"), "10m", 0, 7 * 86_400)?;
        if key_publication_delay < key_reload_interval {
            return Err(ConfigError(format!(
                "invalid {}: must be at least key_reload_interval ({}s), or replicas could sign before every replica publishes",
                get("key_publication_delay")
                    .map(|(_, s)| s)
                    .unwrap_or("default"),
                key_reload_interval.as_secs()
            )));
        }
        let key_rotation_interval = match get("key_rotation_interval") {
            None | Some(("off", _)) => None,
            Some(v) => Some(duration(Some(v), "", 1, 365 * 86_400)?),
        };
        Ok(Self {
            key_algorithm,
            key_publication_delay,
            key_reload_interval,
            key_rotation_interval,
            header_timeout,
            request_timeout,
            access_log,
            audit_token_events,
            audit_retention,
            drain_timeout,
            shutdown_delay,
            auth_failures_per_client,
            auth_failures_per_ip,
            database_url,
            database_url_source,
            listen,
            metrics_listen,
            issuer,
            keys_dir,
            default_audience,
            trusted_proxies,
            access_token_ttl,
            refresh_token_ttl,
            log,
            log_format,
            argon2_concurrency,
            flush_interval,
        })
    }

    /// The issuer URL, once the listener address is known.
    pub fn issuer_for(&self, bound: SocketAddr) -> String {
        self.issuer
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
    }
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
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
fn validate_url(v: &str) -> Result<String, &'static str> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> HashMap<String, (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    (v.to_string(), format!("WARDEN_{}", k.to_uppercase())),
                )
            })
            .collect()
    }

    #[test]
    fn defaults() {
        let c = Config::from_raw(&raw(&[])).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(c.database_url, "sqlite://warden.db");
        assert_eq!(c.access_token_ttl, Duration::from_secs(900));
        assert_eq!(c.refresh_token_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(c.issuer_for(c.listen), "http://127.0.0.1:8080");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("listen", "nope"),
            ("access_token_ttl", "forever"),
            ("trusted_proxies", "10.0.0.0/99"),
            ("issuer", "ftp://x"),
            ("log_format", "xml"),
            ("database_url", "mysql://x"),
            ("auth_failures_per_client", "10"),
            ("auth_failures_per_ip", "0/1m"),
        ] {
            let e = Config::from_raw(&raw(&[(k, v)]))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(&format!("WARDEN_{}", k.to_uppercase())), "{e}");
            assert!(!e.contains('\n'));
        }
    }
}
