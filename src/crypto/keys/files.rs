//! The keys directory on disk: one key is `<kid>.key` (PKCS#8 PEM, 0600)
//! and `<kid>.json`; the directory lock, permissions, loading and creating.
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair,
};
use data_encoding::BASE64URL_NOPAD;

use super::signing::{Alg, KeyError, KeyMeta, LoadedKey, io_err};

/// Runs `f` holding the keys directory's lock file (`.keys.lock`, created
/// exclusively); `None` if another process holds it. A lock older than
/// five minutes was left by a process that died and is removed.
pub(super) fn with_dir_lock<T>(
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
                .is_some_and(|n| n == crate::crypto::refresh::REFRESH_KEY_FILE);
        if let (true, Ok(m)) = (secret, mode(&p))
            && m & 0o077 != 0
        {
            out.push((p, m, "a private key file is readable by other users"));
        }
    }
    out
}

/// What `serve` checks before it loads a key (fail closed, as OpenSSH
/// does with a private key others can read): a directory open to other
/// users that holds nothing yet (as `git` checks out `keys/`, 0755) is
/// tightened to 0700 in silence; a private key file or the refresh-token
/// secret readable by group or others is an error naming the `chmod` to
/// run. A directory open to others that already holds keys is reported
/// by `exposed_files` (a warning), not changed behind the operator's back.
pub fn refuse_exposed_keys(dir: &Path) -> Result<(), String> {
    let Ok(meta) = std::fs::metadata(dir) else {
        return Ok(());
    };
    let empty = std::fs::read_dir(dir)
        .map(|mut d| {
            d.all(|e| {
                e.map(|e| e.file_name().to_string_lossy().starts_with('.'))
                    .unwrap_or(false)
            })
        })
        .unwrap_or(false);
    if empty && meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot make {} private (chmod 700): {e}", dir.display()))?;
    }
    let loose: Vec<String> = exposed_files(dir)
        .into_iter()
        .filter(|(p, _, _)| p != dir)
        .map(|(p, m, _)| format!("{} (mode {m:04o})", p.display()))
        .collect();
    if loose.is_empty() {
        return Ok(());
    }
    Err(format!(
        "refusing to start: private key material is readable by other users: {}; run `chmod 600` on \
         each of them (and `chmod 700 {}`)",
        loose.join(", "),
        dir.display()
    ))
}

pub(super) fn ensure_dir(dir: &Path) -> Result<(), KeyError> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(dir))?;
    }
    Ok(())
}

pub(super) fn load_all(dir: &Path) -> Result<Vec<Arc<LoadedKey>>, KeyError> {
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
