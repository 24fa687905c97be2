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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Owned permits move into the blocking task, so the cap holds even
    /// when the request that started the work is dropped.
    permits: Arc<Semaphore>,
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
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
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

    /// Runs `f` on the blocking pool once a permit is free. A caller
    /// dropped while queued (client reset, deadline) leaves the queue by
    /// the guard's `Drop`; one dropped while the work runs leaves the
    /// permit with the work, which finishes and only then frees it.
    async fn run_argon<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, SecretError> {
        let queued = QueueSlot::enter(&self.waiting, self.max_waiting)?;
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| SecretError::Overloaded)?;
        drop(queued);
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&argon)
        })
        .await
        .map_err(|_| SecretError::Hash)
    }

    /// Callers waiting for a permit right now.
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

/// One place in the bounded queue, given back on drop whatever happens to
/// the waiting future.
struct QueueSlot<'a>(&'a AtomicUsize);

impl<'a> QueueSlot<'a> {
    fn enter(waiting: &'a AtomicUsize, max: usize) -> Result<Self, SecretError> {
        if waiting.fetch_add(1, Ordering::AcqRel) >= max {
            waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(SecretError::Overloaded);
        }
        Ok(Self(waiting))
    }
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cancelling callers neither leaks queue places nor frees a permit
    /// while the work it guards still runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelled_callers_give_back_queue_places_and_keep_the_cap() {
        let v = Arc::new(SecretVerifier::new(1).unwrap_or_else(|e| unreachable!("{e}")));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        // One caller holds the only permit inside blocking work that waits
        // for the gate; then it is cancelled.
        let g = Arc::clone(&gate);
        let v1 = Arc::clone(&v);
        let running = tokio::spawn(async move {
            v1.run_argon(move |_| {
                let _ = g.lock().map(|r| r.recv());
            })
            .await
        });
        while v.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        running.abort();
        let _ = running.await;
        // Many callers queue behind it and are cancelled while waiting.
        let mut queued = Vec::new();
        for _ in 0..(v.max_waiting * 3) {
            let v = Arc::clone(&v);
            queued.push(tokio::spawn(async move { v.run_argon(|_| ()).await }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(v.queued(), v.max_waiting, "the queue is bounded");
        for q in &queued {
            q.abort();
        }
        for q in queued {
            let _ = q.await;
        }
        assert_eq!(v.queued(), 0, "cancelled waiters left the queue");
        assert_eq!(
            v.permits.available_permits(),
            0,
            "the cancelled caller's work still runs and still holds the permit"
        );
        let _ = release.send(());
        let t0 = Instant::now();
        while v.permits.available_permits() == 0 {
            assert!(t0.elapsed() < Duration::from_secs(5), "permit never freed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // And a new verification goes through.
        let s = ClientSecret::generate();
        let h = v.hash(&s).await.unwrap_or_default();
        assert!(v.verify("c", &s, Some(&h)).await.unwrap_or(false));
    }
}
