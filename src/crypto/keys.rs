//! Signing keys: files in the keys directory, the JWKS built from them, and
//! JWT signing with a key parsed once (re-parsing PKCS#8 per token costs
//! more than the signature itself).
//!
//! Each key is two files: `<kid>.key` (PKCS#8 PEM, mode 0600) and
//! `<kid>.json` (algorithm and lifecycle times, not secret). The `kid` is the
//! RFC 7638 thumbprint of the public key, so every replica derives the same
//! one. The signing key is the active key with the latest activation time,
//! so replicas sharing a directory agree on it without talking.
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use data_encoding::BASE64URL_NOPAD;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Alg {
    ES256,
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys or larger: for
    /// resource servers whose JWT libraries know nothing newer.
    RS256,
}

/// The smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

impl Alg {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ES256" => Some(Self::ES256),
            "EdDSA" => Some(Self::EdDSA),
            "RS256" => Some(Self::RS256),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
        }
    }
}

/// The non-secret sidecar of a key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyMeta {
    pub kid: String,
    pub alg: Alg,
    pub created_at: i64,
    /// Signing starts at this time; before it the key is only published.
    pub activate_at: i64,
    /// Set when a newer key takes over; the key stays published so tokens it
    /// signed still verify.
    #[serde(default)]
    pub retired_at: Option<i64>,
}

enum Signer {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

pub struct LoadedKey {
    pub meta: KeyMeta,
    signer: Signer,
    /// The raw public key (uncompressed P-256 point, Ed25519 bytes, or a
    /// DER RSAPublicKey), as the verifier takes it.
    pub public: Vec<u8>,
    /// `base64url(header)`, computed once.
    header_b64: String,
    jwk: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("keys directory {0}: {1}")]
    Io(String, std::io::Error),
    #[error("key file {0} is not a valid {1} private key")]
    BadKey(String, &'static str),
    #[error("key metadata {0}: {1}")]
    BadMeta(String, String),
    #[error("no signing key in {0}")]
    NoKey(String),
    #[error("signing failed")]
    Sign,
}

fn io_err(p: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |e| KeyError::Io(p.display().to_string(), e)
}

fn b64(bytes: &[u8]) -> String {
    BASE64URL_NOPAD.encode(bytes)
}

impl LoadedKey {
    fn from_pkcs8(meta: KeyMeta, der: &[u8], path: &Path) -> Result<Self, KeyError> {
        let (signer, jwk, public) = match meta.alg {
            Alg::ES256 => {
                let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| KeyError::BadKey(path.display().to_string(), "ES256"))?;
                let point = kp.public_key().as_ref().to_vec();
                if point.len() != 65 {
                    return Err(KeyError::BadKey(path.display().to_string(), "ES256"));
                }
                let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
                (
                    Signer::Ec(kp),
                    json!({"crv": "P-256", "kty": "EC", "x": x, "y": y}),
                    point,
                )
            }
            Alg::EdDSA => {
                let kp = Ed25519KeyPair::from_pkcs8(der)
                    .map_err(|_| KeyError::BadKey(path.display().to_string(), "Ed25519"))?;
                let public = kp.public_key().as_ref().to_vec();
                let x = b64(&public);
                (
                    Signer::Ed(kp),
                    json!({"crv": "Ed25519", "kty": "OKP", "x": x}),
                    public,
                )
            }
            Alg::RS256 => {
                let bad =
                    || KeyError::BadKey(path.display().to_string(), "RSA (2048 bits or more)");
                let kp = RsaKeyPair::from_pkcs8(der).map_err(|_| bad())?;
                if kp.public_modulus_len() < MIN_RSA_MODULUS_BYTES {
                    return Err(bad());
                }
                let pk = kp.public_key();
                let n = b64(pk.modulus().big_endian_without_leading_zero());
                let e = b64(pk.exponent().big_endian_without_leading_zero());
                let public = pk.as_ref().to_vec();
                (
                    Signer::Rsa(kp),
                    json!({"e": e, "kty": "RSA", "n": n}),
                    public,
                )
            }
        };
        let header = json!({"alg": meta.alg.as_str(), "kid": meta.kid, "typ": "at+jwt"});
        let header_b64 = b64(header.to_string().as_bytes());
        Ok(Self {
            meta,
            signer,
            public,
            header_b64,
            jwk,
        })
    }

    /// RFC 7638 thumbprint: SHA-256 over the required members in
    /// lexicographic order (serde_json's map keeps them sorted).
    fn thumbprint(&self) -> String {
        b64(digest::digest(&digest::SHA256, self.jwk.to_string().as_bytes()).as_ref())
    }

    pub fn public_jwk(&self) -> serde_json::Value {
        let mut jwk = self.jwk.clone();
        if let Some(m) = jwk.as_object_mut() {
            m.insert("kid".into(), self.meta.kid.clone().into());
            m.insert("alg".into(), self.meta.alg.as_str().into());
            m.insert("use".into(), "sig".into());
        }
        jwk
    }

    /// Signs `claims` as a compact JWS with this key's header.
    pub fn sign_jwt(&self, claims: &[u8]) -> Result<String, KeyError> {
        let mut out = String::with_capacity(self.header_b64.len() + claims.len() * 4 / 3 + 100);
        out.push_str(&self.header_b64);
        out.push('.');
        BASE64URL_NOPAD.encode_append(claims, &mut out);
        let sig = match &self.signer {
            Signer::Ec(kp) => kp
                .sign(&SystemRandom::new(), out.as_bytes())
                .map_err(|_| KeyError::Sign)?,
            Signer::Ed(kp) => kp.sign(out.as_bytes()),
            Signer::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    out.as_bytes(),
                    &mut sig,
                )
                .map_err(|_| KeyError::Sign)?;
                out.push('.');
                BASE64URL_NOPAD.encode_append(&sig, &mut out);
                return Ok(out);
            }
        };
        out.push('.');
        BASE64URL_NOPAD.encode_append(sig.as_ref(), &mut out);
        Ok(out)
    }
}

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

/// Runs `f` holding the keys directory's lock file (`.keys.lock`, created
/// exclusively); `None` if another process holds it. A lock older than
/// five minutes was left by a process that died and is removed.
fn with_dir_lock<T>(
    dir: &Path,
    f: impl FnOnce() -> Result<T, KeyError>,
) -> Result<Option<T>, KeyError> {
    let lock = dir.join(".keys.lock");
    let acquired = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&lock);
    match acquired {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let stale = std::fs::metadata(&lock)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 300);
            if stale {
                let _ = std::fs::remove_file(&lock);
            }
            return Ok(None);
        }
        Err(e) => return Err(KeyError::Io(lock.display().to_string(), e)),
    }
    let out = f();
    let _ = std::fs::remove_file(&lock);
    out.map(Some)
}

/// Key material others could read: private key files (`*.key`) and the
/// refresh-token secret readable by group or others, and the directory
/// when others may enter it. (path, mode, what is wrong)
pub fn exposed_files(dir: &Path) -> Vec<(std::path::PathBuf, u32, &'static str)> {
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
    let mut out = Vec::new();
    if let Ok(m) = mode(dir)
        && m & 0o007 != 0
    {
        out.push((
            dir.to_owned(),
            m,
            "the keys directory is open to other users",
        ));
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        let secret = p.extension().is_some_and(|x| x == "key")
            || p.file_name()
                .is_some_and(|n| n == super::refresh::REFRESH_KEY_FILE);
        if let (true, Ok(m)) = (secret, mode(&p))
            && m & 0o077 != 0
        {
            out.push((p, m, "a private key file is readable by other users"));
        }
    }
    out
}

fn ensure_dir(dir: &Path) -> Result<(), KeyError> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(dir))?;
    }
    Ok(())
}

fn load_all(dir: &Path) -> Result<Vec<Arc<LoadedKey>>, KeyError> {
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        let meta: KeyMeta = serde_json::from_str(&text)
            .map_err(|e| KeyError::BadMeta(path.display().to_string(), e.to_string()))?;
        let key_path = path.with_extension("key");
        let pem_text = std::fs::read_to_string(&key_path).map_err(io_err(&key_path))?;
        let der = pem::parse(pem_text)
            .map_err(|_| KeyError::BadKey(key_path.display().to_string(), meta.alg.as_str()))?;
        let key = LoadedKey::from_pkcs8(meta, der.contents(), &key_path)?;
        if key.thumbprint() != key.meta.kid {
            return Err(KeyError::BadMeta(
                path.display().to_string(),
                "kid does not match the key".into(),
            ));
        }
        keys.push(Arc::new(key));
    }
    Ok(keys)
}

/// Generates a key and writes it so that a concurrent reader never sees a
/// half-written file: each file is written under a temporary name and
/// linked into place, the private key first, the sidecar (which makes the
/// key visible) last.
pub fn create_key(dir: &Path, alg: Alg, now: i64, activate_at: i64) -> Result<KeyMeta, KeyError> {
    ensure_dir(dir)?;
    let rng = SystemRandom::new();
    let der = match alg {
        Alg::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| KeyError::Sign)?
            .as_ref()
            .to_vec(),
        Alg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| KeyError::Sign)?
            .as_ref()
            .to_vec(),
        Alg::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
            .and_then(|kp| kp.as_der().map(|d| d.as_ref().to_vec()))
            .map_err(|_| KeyError::Sign)?,
    };
    let provisional = KeyMeta {
        kid: String::new(),
        alg,
        created_at: now,
        activate_at,
        retired_at: None,
    };
    let loaded = LoadedKey::from_pkcs8(provisional, &der, dir)?;
    let meta = KeyMeta {
        kid: loaded.thumbprint(),
        ..loaded.meta.clone()
    };
    let pem_text = pem::encode(&pem::Pem::new("PRIVATE KEY", der));
    write_new(
        &dir.join(format!("{}.key", meta.kid)),
        pem_text.as_bytes(),
        0o600,
    )?;
    let meta_text = serde_json::to_string_pretty(&meta)
        .map_err(|e| KeyError::BadMeta(meta.kid.clone(), e.to_string()))?;
    write_new(
        &dir.join(format!("{}.json", meta.kid)),
        meta_text.as_bytes(),
        0o644,
    )?;
    Ok(meta)
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .map_err(io_err(&tmp))?;
    // A hard link fails if the target exists, so two processes creating the
    // same file cannot overwrite each other.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(KeyError::Io(path.display().to_string(), e)),
    }
}

/// Reads or creates a 32-byte secret file in the keys directory (mode 0600).
pub fn load_or_create_secret(dir: &Path, name: &str) -> Result<[u8; 32], KeyError> {
    ensure_dir(dir)?;
    let path = dir.join(name);
    if !path.exists() {
        let bytes = crate::domain::credentials::random_bytes::<32>();
        write_new(&path, BASE64URL_NOPAD.encode(&bytes).as_bytes(), 0o600)?;
    }
    let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
    let bytes = BASE64URL_NOPAD
        .decode(text.trim().as_bytes())
        .map_err(|_| KeyError::BadKey(path.display().to_string(), "32-byte secret"))?;
    bytes
        .try_into()
        .map_err(|_| KeyError::BadKey(path.display().to_string(), "32-byte secret"))
}
