//! Signing keys: files in the keys directory, the JWKS built from them, and
//! JWT signing with a key parsed once (re-parsing PKCS#8 per token costs
//! more than the signature itself).
//!
//! Each key is two files: `<kid>.key` (PKCS#8 PEM, mode 0600) and
//! `<kid>.json` (algorithm and lifecycle times, not secret). The `kid` is the
//! RFC 7638 thumbprint of the public key, so every replica derives the same
//! one. The signing key is the active key with the latest activation time,
//! so replicas sharing a directory agree on it without talking.
mod files;
mod signing;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde_json::json;

pub use files::{create_key, exposed_files, load_or_create_secret, refuse_exposed_keys};
use files::{ensure_dir, load_all, with_dir_lock};
pub use signing::{Alg, KeyError, KeyMeta, LoadedKey};

/// Every key in the directory, the chosen signing key, and the JWKS
/// document pre-serialized for the hot path.
pub struct KeySet {
    pub keys: Vec<Arc<LoadedKey>>,
    pub signing: Arc<LoadedKey>,
    /// The JWKS document, rendered once per key-set change.
    pub jwks: Arc<[u8]>,
}

impl KeySet {
    /// Where a published key stands, in the words the CLI, the metrics and
    /// the docs all use: `signing` (signs new tokens), `upcoming`
    /// (published, signs once its publication delay is over) or `retired`
    /// (signs no more; published while tokens it signed may live).
    pub fn state_of(&self, key: &LoadedKey, now: i64) -> &'static str {
        if key.meta.kid == self.signing.meta.kid {
            "signing"
        } else if key.meta.activate_at > now {
            "upcoming"
        } else {
            "retired"
        }
    }

    fn build(mut keys: Vec<Arc<LoadedKey>>, now: i64, dir: &Path) -> Result<Self, KeyError> {
        keys.sort_by(|a, b| {
            (a.meta.activate_at, &a.meta.kid).cmp(&(b.meta.activate_at, &b.meta.kid))
        });
        let signing = keys
            .iter()
            .rev()
            .find(|k| k.meta.activate_at <= now && k.meta.retired_at.is_none())
            .or_else(|| keys.iter().rev().find(|k| k.meta.activate_at <= now))
            .cloned()
            .ok_or_else(|| KeyError::NoKey(dir.display().to_string()))?;
        let doc = json!({"keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()});
        let jwks: Arc<[u8]> = doc.to_string().into_bytes().into();
        Ok(Self {
            keys,
            signing,
            jwks,
        })
    }
}

/// The keys directory and its current key set.
pub struct KeyStore {
    dir: PathBuf,
    current: RwLock<Arc<KeySet>>,
}

impl KeyStore {
    /// Loads every key in `dir`, creating the directory and a first ES256
    /// key when there is none.
    pub fn open(dir: &Path, now: i64) -> Result<Self, KeyError> {
        Self::open_with(dir, Alg::ES256, now)
    }

    /// As `open`, creating the first key with `alg`.
    pub fn open_with(dir: &Path, alg: Alg, now: i64) -> Result<Self, KeyError> {
        ensure_dir(dir)?;
        let mut keys = load_all(dir)?;
        // Replicas starting together on an empty directory must not each
        // create a first key: one does, under the lock, the others wait.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while keys.is_empty() {
            if let Some(()) = with_dir_lock(dir, || {
                if load_all(dir)?.is_empty() {
                    create_key(dir, alg, now, now)?;
                }
                Ok(())
            })? {
                keys = load_all(dir)?;
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(KeyError::NoKey(dir.display().to_string()));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            keys = load_all(dir)?;
        }
        let set = KeySet::build(keys, now, dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            current: RwLock::new(Arc::new(set)),
        })
    }

    pub fn current(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Re-reads the directory (keys added or retired by another process).
    pub fn reload(&self, now: i64) -> Result<(), KeyError> {
        let set = Arc::new(KeySet::build(load_all(&self.dir)?, now, &self.dir)?);
        match self.current.write() {
            Ok(mut g) => *g = set,
            Err(p) => *p.into_inner() = set,
        }
        Ok(())
    }
}

/// Creates a signing key that is published at once and signs at least
/// `delay` seconds later (always after the newest existing key, so the
/// rotation wins even within the same second). Times are whole seconds and
/// `now` is truncated, so a key made late in a second would start signing
/// up to a second early; one second more keeps the full publication delay,
/// which is what lets every replica load the key before any signs with it.
pub fn rotate(dir: &Path, alg: Alg, delay: i64, now: i64) -> Result<KeyMeta, KeyError> {
    let newest = load_all(dir)?
        .iter()
        .map(|k| k.meta.activate_at)
        .max()
        .unwrap_or(now);
    let after = if delay > 0 { now + delay + 1 } else { now };
    create_key(dir, alg, now, after.max(newest + 1))
}

/// Kids of keys no unexpired token can have been signed with. A key stops
/// signing when the next one activates, replicas notice within `reload`
/// seconds, and a token lives `ttl` seconds plus the verification leeway.
/// The current signing key and keys not yet retired are never listed.
pub fn prunable(set: &KeySet, ttl: i64, reload: i64, now: i64) -> Vec<String> {
    let grace = ttl + reload + crate::crypto::verify::LEEWAY_SECS;
    set.keys
        .windows(2)
        .filter(|pair| {
            pair[0].meta.kid != set.signing.meta.kid && pair[1].meta.activate_at + grace <= now
        })
        .map(|pair| pair[0].meta.kid.clone())
        .collect()
}

/// Deletes the keys `prunable` names; another replica pruning the same
/// key at the same time is not an error.
pub fn prune(dir: &Path, ttl: i64, reload: i64, now: i64) -> Result<Vec<String>, KeyError> {
    let set = KeySet::build(load_all(dir)?, now, dir)?;
    let kids = prunable(&set, ttl, reload, now);
    for kid in &kids {
        // The sidecar first: without it the key is no longer loaded.
        for ext in ["json", "key"] {
            let p = dir.join(format!("{kid}.{ext}"));
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(KeyError::Io(p.display().to_string(), e)),
            }
        }
    }
    Ok(kids)
}

/// The automatic rotation schedule: when the newest key is `every`
/// seconds old, one replica creates the next one. Replicas sharing the
/// directory coordinate through an exclusive lock file, so each period
/// yields one key, not one per replica. Returns the key created, if any.
pub fn rotate_if_due(
    dir: &Path,
    alg: Alg,
    every: i64,
    delay: i64,
    now: i64,
) -> Result<Option<KeyMeta>, KeyError> {
    let due = |dir: &Path| -> Result<bool, KeyError> {
        let newest = load_all(dir)?.iter().map(|k| k.meta.created_at).max();
        Ok(newest.is_none_or(|c| c + every <= now))
    };
    if !due(dir)? {
        return Ok(None);
    }
    // Re-check under the lock: another replica may just have rotated.
    let result = with_dir_lock(dir, || match due(dir)? {
        true => rotate(dir, alg, delay, now).map(Some),
        false => Ok(None),
    })?;
    Ok(result.flatten())
}
