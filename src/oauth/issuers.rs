//! External issuers' signing keys, for federated credentials: found by
//! OpenID discovery (`{issuer}/.well-known/openid-configuration`, whose
//! `issuer` must be the one asked for) and its `jwks_uri`, then cached.
//!
//! - Only an issuer a federated credential names is ever fetched: the
//!   caller asks after the database matched a credential, never for an
//!   `iss` it merely read from a token.
//! - Fetched by `outbound`: https only (plain http and loopback only with
//!   `WARDEN_FEDERATION_ALLOW_HTTP=true`), never to a link-local address,
//!   no redirect, capped in time and size.
//! - Keys are kept as fresh as the JWKS response's `Cache-Control` says
//!   (within bounds). A known key is used from the cache even when stale,
//!   while a background refresh runs (never on the request's path); an
//!   unknown `kid` refetches at most once per `REFRESH_INTERVAL` per
//!   issuer, and a failed fetch is not retried sooner either.
//! - Each issuer has its own lock: a slow or down issuer delays only the
//!   requests for its own tokens with keys not yet cached.
//! - The cache is sized from the credentials that name a source (`named`,
//!   refreshed from the database by the server's maintenance loop), plus
//!   `UNNAMED_SLACK` for sources named since. When full, an entry no
//!   credential names goes first, then a named one that holds no keys; a
//!   working entry a credential still names is never evicted, so another
//!   tenant cycling throwaway issuers cannot push out your issuer's keys
//!   (the cached key keeps your workloads going while your issuer is
//!   down). An entry goes with the last credential naming it.
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use super::outbound::{FetchError, Outbound, REQUEST_TIMEOUT, refused};
use crate::crypto::jose::PublicJwk;

/// The least time between two fetches for one issuer (an unknown `kid`,
/// a failure, a stale cache).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// Entries kept beyond those live credentials name (sources named since
/// the last refresh of `named`).
const UNNAMED_SLACK: usize = 64;

/// The most keys kept from one JWK Set; a larger set is refused (each key
/// may cost a signature verification per request, and memory).
pub const MAX_SET_KEYS: usize = 20;

/// The most signature verifications one token or assertion may cost: one
/// without a `kid` is tried against at most this many keys.
pub const MAX_VERIFY_ATTEMPTS: usize = 4;

/// The issuers' key caches and the client that fills them.
#[derive(Clone)]
pub struct Issuers {
    inner: Arc<Inner>,
}

struct Inner {
    http: Outbound,
    /// By issuer URL, and by `jwks_uri`.
    entries: [Mutex<HashMap<String, Arc<Entry>>>; 2],
    /// The sources live credentials name (issuers, `jwks_uri`s), and the
    /// console's single sign-on issuer.
    named: RwLock<[HashSet<String>; 2]>,
}

/// Where a set of keys comes from: an issuer (OpenID discovery names its
/// JWKS) or a client's own `jwks_uri`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource<'a> {
    Issuer(&'a str),
    Jwks(&'a str),
}

impl KeySource<'_> {
    fn url(&self) -> &str {
        match self {
            Self::Issuer(u) | Self::Jwks(u) => u,
        }
    }

    fn slot(&self) -> usize {
        match self {
            Self::Issuer(_) => 0,
            Self::Jwks(_) => 1,
        }
    }
}

#[derive(Default)]
struct Entry {
    snapshot: RwLock<Snapshot>,
    /// Held while fetching: one fetch per issuer at a time.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Snapshot {
    keys: Vec<Arc<PublicJwk>>,
    fresh_until: Option<Instant>,
    last_attempt: Option<Instant>,
}

impl Snapshot {
    fn matching(&self, kid: Option<&str>) -> Vec<Arc<PublicJwk>> {
        self.keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid)
            .cloned()
            .collect()
    }

    fn may_fetch(&self, now: Instant) -> bool {
        self.last_attempt
            .is_none_or(|t| now.duration_since(t) >= REFRESH_INTERVAL)
    }
}

impl Issuers {
    /// `allow_http`: plain http and loopback addresses are allowed (for
    /// development and tests).
    pub fn new(allow_http: bool) -> anyhow::Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                http: Outbound::new(allow_http)?,
                entries: Default::default(),
                named: Default::default(),
            }),
        })
    }

    pub fn allow_http(&self) -> bool {
        self.inner.http.allow_http()
    }

    /// The client the caches fetch with, under the same rules, for other
    /// documents of a configured provider (the console's single sign-on).
    pub fn outbound(&self) -> &Outbound {
        &self.inner.http
    }

    /// Sets the sources live credentials name (`issuers`, `jwks_uris`)
    /// and drops the cached entries of sources no longer named.
    pub fn set_named(&self, issuers: HashSet<String>, jwks_uris: HashSet<String>) {
        let named = [issuers, jwks_uris];
        for (slot, names) in named.iter().enumerate() {
            let mut map = self.inner.entries[slot]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            map.retain(|url, _| names.contains(url));
        }
        *self.inner.named.write().unwrap_or_else(|e| e.into_inner()) = named;
    }

    fn entry(&self, source: KeySource<'_>) -> Arc<Entry> {
        let slot = source.slot();
        let mut map = self.inner.entries[slot]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get(source.url()) {
            return e.clone();
        }
        let named = self.inner.named.read().unwrap_or_else(|e| e.into_inner());
        if map.len() >= named[slot].len() + UNNAMED_SLACK {
            let working = |e: &Entry| {
                !e.snapshot
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .keys
                    .is_empty()
            };
            let victim = map
                .iter()
                .find(|(url, _)| !named[slot].contains(*url))
                .or_else(|| map.iter().find(|(_, e)| !working(e)))
                .map(|(url, _)| url.clone());
            if let Some(url) = victim {
                map.remove(&url);
            }
        }
        map.entry(source.url().to_owned()).or_default().clone()
    }

    /// Cached sources right now (for tests and metrics): issuers, JWKS.
    pub fn cached(&self) -> (usize, usize) {
        let n = |slot: usize| {
            self.inner.entries[slot]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len()
        };
        (n(0), n(1))
    }

    /// The keys of `source` that may have signed a token with `kid`: from
    /// the cache when it has one (refreshed in the background when stale),
    /// else after one fetch (at most one per interval per source). Empty
    /// when none is known and none can be fetched now.
    pub async fn keys(&self, source: KeySource<'_>, kid: Option<&str>) -> Vec<Arc<PublicJwk>> {
        let entry = self.entry(source);
        let now = Instant::now();
        let (found, stale, may_fetch, seen) = {
            let s = entry.snapshot.read().unwrap_or_else(|e| e.into_inner());
            (
                s.matching(kid),
                s.fresh_until.is_none_or(|t| now >= t),
                s.may_fetch(now),
                s.last_attempt,
            )
        };
        if !found.is_empty() {
            if stale && may_fetch {
                let this = self.clone();
                let url = source.url().to_owned();
                let jwks = matches!(source, KeySource::Jwks(_));
                tokio::spawn(async move {
                    let source = if jwks {
                        KeySource::Jwks(&url)
                    } else {
                        KeySource::Issuer(&url)
                    };
                    this.refresh(source, &entry, seen).await
                });
            }
            return found;
        }
        if !may_fetch {
            return found;
        }
        self.refresh(source, &entry, seen).await;
        let s = entry.snapshot.read().unwrap_or_else(|e| e.into_inner());
        s.matching(kid)
    }

    /// Fetches `source`'s keys into `entry` unless another fetch ran since
    /// `seen` (the attempt the caller saw): concurrent callers share one.
    async fn refresh(&self, source: KeySource<'_>, entry: &Entry, seen: Option<Instant>) {
        let _one = entry.fetching.lock().await;
        {
            let s = entry.snapshot.read().unwrap_or_else(|e| e.into_inner());
            if s.last_attempt != seen {
                return;
            }
        }
        let started = Instant::now();
        let budget = REQUEST_TIMEOUT * 2;
        let fetch = async {
            match source {
                KeySource::Issuer(issuer) => self.discover(issuer).await,
                KeySource::Jwks(uri) => self.jwks(uri).await,
            }
        };
        let result = match tokio::time::timeout(budget, fetch).await {
            Ok(r) => r,
            Err(_) => Err(refused("timed out")),
        };
        let mut s = entry.snapshot.write().unwrap_or_else(|e| e.into_inner());
        s.last_attempt = Some(started);
        match result {
            Ok((keys, fresh)) => {
                metrics::counter!("warden_federation_fetches_total", "result" => "ok").increment(1);
                tracing::info!(source = ?source, keys = keys.len(), "fetched signing keys");
                s.keys = keys;
                s.fresh_until = Some(started + fresh);
            }
            Err(e) => {
                metrics::counter!("warden_federation_fetches_total", "result" => "failed")
                    .increment(1);
                tracing::warn!(source = ?source, error = %e, "cannot fetch signing keys; keeping those cached");
            }
        }
    }

    /// Discovery, then the JWKS: the usable keys and how long they stay
    /// fresh.
    async fn discover(&self, issuer: &str) -> Result<(Vec<Arc<PublicJwk>>, Duration), FetchError> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let base = issuer.trim_end_matches('/');
        let url = format!("{base}/.well-known/openid-configuration");
        let (doc, _) = self.inner.http.get_json(&url).await?;
        let doc: Discovery = serde_json::from_value(doc)
            .map_err(|_| refused("the discovery document has no issuer or jwks_uri"))?;
        if doc.issuer != issuer {
            // Quoted and escaped: the text is another party's.
            return Err(refused(format!(
                "the discovery document names another issuer ({:?})",
                doc.issuer.chars().take(128).collect::<String>()
            )));
        }
        crate::domain::federation::validate_issuer(&doc.jwks_uri, self.inner.http.allow_http())
            .map_err(|e| refused(format!("jwks_uri: {}", e.1)))?;
        self.jwks(&doc.jwks_uri).await
    }

    /// A JWK Set: its usable signing keys and how long they stay fresh.
    async fn jwks(&self, uri: &str) -> Result<(Vec<Arc<PublicJwk>>, Duration), FetchError> {
        let (jwks, fresh) = self.inner.http.get_json(uri).await?;
        let listed = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| refused("the JWKS has no keys array"))?;
        let keys: Vec<Arc<PublicJwk>> = listed
            .iter()
            .filter_map(|k| PublicJwk::parse(k).ok().map(Arc::new))
            .collect();
        if keys.len() > MAX_SET_KEYS {
            return Err(refused(format!(
                "the JWKS has {} signing keys; warden keeps at most {MAX_SET_KEYS}",
                keys.len()
            )));
        }
        if keys.is_empty() {
            return Err(refused("the JWKS has no signing key warden accepts"));
        }
        Ok((keys, fresh))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use data_encoding::BASE64URL_NOPAD;

    fn a_key() -> Arc<PublicJwk> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .unwrap_or_else(|_| unreachable!());
        let p = pair.public_key().as_ref();
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256",
            "x": BASE64URL_NOPAD.encode(&p[1..33]), "y": BASE64URL_NOPAD.encode(&p[33..65])});
        Arc::new(PublicJwk::parse(&jwk).unwrap_or_else(|_| unreachable!()))
    }

    /// Thousands of entries for sources nobody names, or that hold no
    /// keys, never push out a named issuer's cached keys; the cache stays
    /// bounded by what is named; an entry goes with its last credential.
    #[test]
    fn a_named_working_entry_is_never_evicted() {
        let cache = Issuers::new(true).unwrap_or_else(|_| unreachable!());
        let mine = "https://ci.example";
        let named: HashSet<String> = (0..10)
            .map(|i| format!("https://named-{i}.example"))
            .chain([mine.to_owned()])
            .collect();
        cache.set_named(named.clone(), HashSet::new());
        let entry = cache.entry(KeySource::Issuer(mine));
        entry
            .snapshot
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .keys = vec![a_key()];
        for i in 0..3000 {
            cache.entry(KeySource::Issuer(&format!("https://throwaway-{i}.example")));
            if i % 300 == 0 {
                cache.entry(KeySource::Issuer(&format!(
                    "https://named-{}.example",
                    i % 10
                )));
            }
        }
        assert!(cache.cached().0 <= named.len() + UNNAMED_SLACK);
        let still = cache.entry(KeySource::Issuer(mine));
        assert!(Arc::ptr_eq(&still, &entry), "the working entry was evicted");
        assert_eq!(still.snapshot.read().map(|s| s.keys.len()).unwrap_or(0), 1);
        // Its last credential goes: so does the entry.
        cache.set_named(HashSet::new(), HashSet::new());
        assert_eq!(cache.cached(), (0, 0));
    }
}
