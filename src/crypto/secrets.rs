//! Client-secret hashing and verification.
//!
//! Secrets are stored only as Argon2id hashes (OWASP parameters: 19 MiB,
//! t=2, p=1). Verification runs on the blocking pool behind a semaphore, so
//! a flood of wrong secrets can occupy at most `argon2_concurrency` cores
//! and a bounded queue; beyond it callers are told to retry.
//!
//! A client that presents the right secret again skips Argon2: a verified
//! presentation is remembered under HMAC(process key, client_id, secret) →
//! SHA-256 of the hash it matched. The entry only counts while that hash is
//! still the account's live one, so a reset, rotation or delete written by
//! any replica invalidates it on the next request. No secret is kept.
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::{digest, hmac};
use tokio::sync::Semaphore;

use crate::domain::credentials::{ClientSecret, MAX_CREDENTIAL_LEN, random_bytes};

const CACHE_TTL: Duration = Duration::from_secs(3600);
const CACHE_MAX: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Too many verifications queued; the caller should retry later.
    #[error("secret verification is overloaded")]
    Overloaded,
    #[error("secret hashing failed")]
    Hash,
}

pub struct SecretVerifier {
    argon: Argon2<'static>,
    dummy_hash: String,
    permits: Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
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

impl SecretVerifier {
    pub fn new(concurrency: usize) -> Result<Self, SecretError> {
        let dummy_hash = hash_blocking(&ClientSecret::generate())?;
        Ok(Self {
            argon: argon2(),
            dummy_hash,
            permits: Semaphore::new(concurrency.max(1)),
            waiting: AtomicUsize::new(0),
            max_waiting: 64 * concurrency.max(1),
            cache_key: hmac::Key::new(hmac::HMAC_SHA256, &random_bytes::<32>()),
            cache: Mutex::new(HashMap::new()),
        })
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

    /// Checks `secret` against `stored` (the account's live hash). With no
    /// account (`None`), a dummy hash is verified so an unknown client id
    /// costs the same as a wrong secret.
    pub async fn verify(
        &self,
        client_id: &str,
        secret: &ClientSecret,
        stored: Option<&str>,
    ) -> Result<bool, SecretError> {
        let well_formed = secret.expose().len() <= MAX_CREDENTIAL_LEN;
        let id = self.cache_id(client_id, secret);
        if let Some(hash) = stored {
            let live = digest::digest(&digest::SHA256, hash.as_bytes());
            if let Ok(cache) = self.cache.lock()
                && let Some((d, at)) = cache.get(&id)
                && d.as_ref() == live.as_ref()
                && at.elapsed() < CACHE_TTL
            {
                return Ok(true);
            }
        }
        let target = match stored {
            Some(h) if well_formed => h.to_owned(),
            _ => self.dummy_hash.clone(),
        };
        let presented = if well_formed {
            secret.clone()
        } else {
            ClientSecret::presented("")
        };
        let ok = self
            .run_argon(move |argon| {
                argon
                    .verify_password(presented.expose().as_bytes(), target.as_str())
                    .is_ok()
            })
            .await?;
        let ok = ok && stored.is_some() && well_formed;
        if ok && let (Some(hash), Ok(mut cache)) = (stored, self.cache.lock()) {
            if cache.len() >= CACHE_MAX {
                cache.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(
                id,
                (
                    digest::digest(&digest::SHA256, hash.as_bytes()),
                    Instant::now(),
                ),
            );
        }
        Ok(ok)
    }

    /// Hashes a new secret on the bounded pool.
    pub async fn hash(&self, secret: &ClientSecret) -> Result<String, SecretError> {
        let s = secret.clone();
        self.run_argon(move |argon| {
            argon
                .hash_password(s.expose().as_bytes())
                .map(|h| h.to_string())
                .ok()
        })
        .await?
        .ok_or(SecretError::Hash)
    }

    async fn run_argon<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, SecretError> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(SecretError::Overloaded);
        }
        let permit = self.permits.acquire().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let _permit = permit.map_err(|_| SecretError::Overloaded)?;
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || f(&argon))
            .await
            .map_err(|_| SecretError::Hash)
    }
}
