//! The issuer's signing keys, cached. Found through its metadata (RFC
//! 8414 `jwks_uri`); kept for the answer's `max-age` (within 1 minute and
//! 1 day); refetched when a token names a key the cache lacks, at most
//! once per `refetch_interval`, by one request while the others wait for
//! its result (no refresh storm). Should a refresh fail, the keys already
//! held keep verifying: warden publishes a key for as long as tokens it
//! signed may live.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, RwLock};
use warden_token::jose::PublicJwk;

use crate::fetch::Client;
use crate::{Config, Error};

const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(86_400);
/// How long the keys held stay in use after a failed refresh.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Held {
    keys: Vec<Arc<PublicJwk>>,
    fresh_until: Option<Instant>,
    fetched_at: Option<Instant>,
    /// Bumped by every fetch, so a request that waited for one sees it.
    generation: u64,
}

pub(crate) struct Cache {
    client: Client,
    metadata_url: String,
    issuer: String,
    refetch_interval: Duration,
    default_ttl: Duration,
    held: RwLock<Held>,
    fetching: Mutex<()>,
    fetches: AtomicU64,
}

impl Cache {
    pub(crate) fn new(client: Client, config: &Config) -> Self {
        Self {
            client,
            metadata_url: format!("{}/.well-known/oauth-authorization-server", config.issuer),
            issuer: config.issuer.clone(),
            refetch_interval: config.refetch_interval,
            default_ttl: config.default_ttl,
            held: RwLock::new(Held::default()),
            fetching: Mutex::new(()),
            fetches: AtomicU64::new(0),
        }
    }

    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The key with this id: from the cache while it is fresh; else after
    /// a refetch (one for all who ask at once). `Ok(None)`: the issuer
    /// does not publish it.
    pub(crate) async fn key(&self, kid: &str) -> Result<Option<Arc<PublicJwk>>, Error> {
        let (found, fresh, seen, may_refetch) = {
            let h = self.held.read().await;
            let now = Instant::now();
            (
                find(&h.keys, kid),
                h.fresh_until.is_some_and(|t| now < t),
                h.generation,
                h.fetched_at
                    .is_none_or(|t| now.duration_since(t) >= self.refetch_interval),
            )
        };
        match (found, fresh) {
            (Some(k), true) => return Ok(Some(k)),
            (None, true) if !may_refetch => return Ok(None),
            _ => {}
        }
        let _one = self.fetching.lock().await;
        // Another request fetched while this one waited: use its result.
        {
            let h = self.held.read().await;
            if h.generation != seen {
                return Ok(find(&h.keys, kid));
            }
        }
        match self.fetch().await {
            Ok((keys, ttl)) => {
                let mut h = self.held.write().await;
                let now = Instant::now();
                h.keys = keys;
                h.fresh_until = Some(now + ttl);
                h.fetched_at = Some(now);
                h.generation += 1;
                Ok(find(&h.keys, kid))
            }
            Err(e) => {
                let mut h = self.held.write().await;
                // Counted as a try, and the keys held used for a while
                // longer, so a down issuer is not asked again (and waited
                // for) by every request.
                let now = Instant::now();
                h.fetched_at = Some(now);
                if !h.keys.is_empty() {
                    h.fresh_until = Some(now + self.refetch_interval.max(RETRY_AFTER_FAILURE));
                }
                h.generation += 1;
                match find(&h.keys, kid) {
                    Some(k) => Ok(Some(k)),
                    None if h.keys.is_empty() => Err(e),
                    None => Ok(None),
                }
            }
        }
    }

    async fn fetch(&self) -> Result<(Vec<Arc<PublicJwk>>, Duration), Error> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let (meta, _) = self.client.get_json(&self.metadata_url).await?;
        if meta["issuer"] != self.issuer.as_str() {
            return Err(Error::Unavailable(format!(
                "{} names another issuer",
                self.metadata_url
            )));
        }
        let uri = meta["jwks_uri"]
            .as_str()
            .ok_or_else(|| Error::Unavailable(format!("{} has no jwks_uri", self.metadata_url)))?;
        let (set, max_age) = self.client.get_json(uri).await?;
        let keys = set["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| PublicJwk::parse(k).ok())
            .filter(|k| k.kid.is_some())
            .map(Arc::new)
            .collect();
        let ttl = max_age.unwrap_or(self.default_ttl).clamp(MIN_TTL, MAX_TTL);
        Ok((keys, ttl))
    }
}

fn find(keys: &[Arc<PublicJwk>], kid: &str) -> Option<Arc<PublicJwk>> {
    keys.iter().find(|k| k.kid.as_deref() == Some(kid)).cloned()
}
