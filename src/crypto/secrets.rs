//! Client-secret hashing and verification.
//!
//! Secrets are stored only as Argon2id hashes (OWASP parameters: 19 MiB,
//! t=2, p=1). Every Argon2 run, verification and hashing alike, goes
//! through one bounded, fair pool (`argon_pool`), so a flood of wrong
//! secrets, or an admin creating accounts in a loop, can occupy at most
//! `argon2_concurrency` cores, waits its turn with everyone else, and is
//! told to retry beyond its share of the queue.
//!
//! A secret presented for no live credential (an unknown, deleted or
//! secretless client id) is refused without Argon2. Client ids are public
//! and random, so running a dummy hash to hide whether one exists protected
//! nothing and handed a flood of invented ids the whole pool.
//!
//! A client that presents the right secret again skips Argon2: a verified
//! presentation is remembered under HMAC(process key, client_id, secret) →
//! SHA-256 of the hash it matched, for an hour from its last use. The entry
//! only counts while that hash is still the account's live one, so a reset,
//! rotation or delete written by any replica invalidates it on the next
//! request. No secret is kept.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::{digest, hmac};

use super::argon_pool::ArgonPool;
use crate::domain::credentials::{ClientSecret, MAX_CREDENTIAL_LEN, random_bytes};

const CACHE_TTL: Duration = Duration::from_secs(3600);
const CACHE_MAX: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Too many Argon2 runs queued (for this caller, or in all); the caller
    /// should retry later.
    #[error("secret verification is overloaded")]
    Overloaded,
    #[error("secret hashing failed")]
    Hash,
}

pub struct SecretVerifier {
    argon: Argon2<'static>,
    pool: Arc<ArgonPool>,
    cache_key: hmac::Key,
    cache: Mutex<HashMap<[u8; 32], (digest::Digest, Instant)>>,
}

pub fn argon2() -> Argon2<'static> {
    // Parameters are constants inside the valid range; `Params::new` cannot
    // fail on them, but fall back to the library default (also Argon2id
    // with OWASP-level cost) rather than panic.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a secret synchronously; for the CLI and blocking contexts.
pub fn hash_blocking(secret: &ClientSecret) -> Result<String, SecretError> {
    argon2()
        .hash_password(secret.expose().as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| SecretError::Hash)
}

/// Hashes a new secret on `pool`, queued under `key` (who asks).
pub async fn hash_on(
    pool: &Arc<ArgonPool>,
    key: u64,
    secret: &ClientSecret,
) -> Result<String, SecretError> {
    let s = secret.clone();
    pool.run(key, move || hash_blocking(&s))
        .await
        .map_err(|_| SecretError::Overloaded)?
}

impl SecretVerifier {
    pub fn new(concurrency: usize) -> Result<Self, SecretError> {
        Ok(Self {
            argon: argon2(),
            pool: ArgonPool::new(concurrency),
            cache_key: hmac::Key::new(hmac::HMAC_SHA256, &random_bytes::<32>()),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The pool Argon2 runs on, for the admin API's hashing.
    pub fn pool(&self) -> Arc<ArgonPool> {
        self.pool.clone()
    }

    fn cache_id(&self, client_id: &str, secret: &ClientSecret) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.cache_key);
        ctx.update(client_id.as_bytes());
        ctx.update(&[0]);
        ctx.update(secret.expose().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// Checks `secret` against `stored` (the credential's live hash), on
    /// the pool under `key` (the caller's address bucket). With no stored
    /// hash the answer is `false` at once, without Argon2.
    pub async fn verify(
        &self,
        client_id: &str,
        secret: &ClientSecret,
        stored: Option<&str>,
        key: u64,
    ) -> Result<bool, SecretError> {
        let Some(hash) = stored else {
            return Ok(false);
        };
        if secret.expose().len() > MAX_CREDENTIAL_LEN {
            return Ok(false);
        }
        let id = self.cache_id(client_id, secret);
        let live = digest::digest(&digest::SHA256, hash.as_bytes());
        if let Ok(mut cache) = self.cache.lock()
            && let Some((d, at)) = cache.get_mut(&id)
            && d.as_ref() == live.as_ref()
            && at.elapsed() < CACHE_TTL
        {
            // Refreshed on use: a client that keeps coming never falls out
            // of the cache into a flood's queue.
            *at = Instant::now();
            return Ok(true);
        }
        let (argon, presented, target) = (self.argon.clone(), secret.clone(), hash.to_owned());
        let ok = self
            .pool
            .run(key, move || {
                argon
                    .verify_password(presented.expose().as_bytes(), target.as_str())
                    .is_ok()
            })
            .await
            .map_err(|_| SecretError::Overloaded)?;
        if ok && let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(id, (live, Instant::now()));
        }
        Ok(ok)
    }

    /// Hashes a new secret on the pool, under `key`.
    pub async fn hash(&self, secret: &ClientSecret, key: u64) -> Result<String, SecretError> {
        hash_on(&self.pool, key, secret).await
    }

    /// Callers waiting for a permit right now.
    pub fn queued(&self) -> usize {
        self.pool.queued()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A secret for no stored hash is refused without Argon2; the right
    /// one verifies, then is answered from the cache.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verifies_and_skips_argon2_for_no_credential() {
        let v = SecretVerifier::new(1).unwrap_or_else(|e| unreachable!("{e}"));
        let s = ClientSecret::generate();
        let t0 = Instant::now();
        assert!(!v.verify("c", &s, None, 0).await.unwrap_or(true));
        assert!(
            t0.elapsed() < Duration::from_millis(5),
            "no Argon2 without a hash"
        );
        let h = v.hash(&s, 0).await.unwrap_or_default();
        assert!(v.verify("c", &s, Some(&h), 0).await.unwrap_or(false));
        let t0 = Instant::now();
        assert!(v.verify("c", &s, Some(&h), 0).await.unwrap_or(false));
        assert!(t0.elapsed() < Duration::from_millis(5), "cached");
        let other = ClientSecret::generate();
        assert!(!v.verify("c", &other, Some(&h), 0).await.unwrap_or(true));
    }
}
