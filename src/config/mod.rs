//! Configuration: `WARDEN_*` environment variables over an optional TOML
//! file over defaults. Every value is validated here, once, so a bad one
//! stops start-up with a message that names the setting.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

mod console;
mod parse;

pub use console::ConsoleSso;

use crate::crypto::keys::Alg;
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
    /// Where the issuer came from (a variable, the file, or the listen
    /// address it defaults to), for the CLI's line saying which it used.
    pub issuer_source: String,
    pub keys_dir: PathBuf,
    /// A role catalog applied at start and by `migrate`
    /// (`WARDEN_ROLE_CATALOG`, a TOML file; `manage::catalog`).
    pub role_catalog: Option<PathBuf>,
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
    /// Federation may reach issuers over plain http, and on loopback
    /// addresses (`WARDEN_FEDERATION_ALLOW_HTTP`; for development only).
    pub federation_allow_http: bool,
    /// Federated grants may omit `client_id` and be matched by the token
    /// alone (`WARDEN_FEDERATION_CLIENT_ID=optional`): only for a
    /// single-tenant deployment. Default `required`.
    pub federation_client_id_optional: bool,
    /// Client assertions (`private_key_jwt`) must name the issuer as their
    /// only `aud` (`WARDEN_CLIENT_ASSERTION_AUDIENCE=strict`). Default
    /// `issuer-or-endpoint`: the issuer or the endpoint's URL, alone or
    /// together, never beside a foreign value.
    pub client_assertion_audience_strict: bool,
    /// Open connections at most (`WARDEN_MAX_CONNECTIONS`); past it new
    /// ones are closed at once. Default: below the descriptor limit.
    pub max_connections: usize,
    /// Open connections one address may hold (`WARDEN_MAX_CONNECTIONS_PER_IP`).
    pub max_connections_per_ip: usize,
    /// The admin console's single sign-on, when configured.
    pub console_sso: Option<ConsoleSso>,
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
    "role_catalog",
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
    "federation_allow_http",
    "federation_client_id",
    "client_assertion_audience",
    "max_connections",
    "max_connections_per_ip",
    "console_oidc_issuer",
    "console_oidc_client_id",
    "console_oidc_client_secret",
    "console_oidc_rules",
    "console_oidc_scopes",
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
        parse::from_raw(&raw)
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
        parse::from_raw(&raw)
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
        let c = parse::from_raw(&raw(&[])).unwrap_or_else(|e| unreachable!("{e}"));
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
            let e = parse::from_raw(&raw(&[(k, v)]))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(&format!("WARDEN_{}", k.to_uppercase())), "{e}");
            assert!(!e.contains('\n'));
        }
    }
}

/// A database URL with any password replaced, for error messages: the
/// `user:password@` form and a `password=` query parameter alike.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &base[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &base[..s + 3], &creds[..c], &base[at..]),
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    let Some(query) = query else {
        return base;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

#[cfg(test)]
mod redact_tests {
    use super::redact_url;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("postgres://u:hunter2@db:5432/w"),
            "postgres://u:***@db:5432/w"
        );
        assert_eq!(
            redact_url("postgres://u@db/w?sslmode=require&password=hunter2"),
            "postgres://u@db/w?sslmode=require&password=***"
        );
        assert_eq!(redact_url("sqlite://warden.db"), "sqlite://warden.db");
    }
}
