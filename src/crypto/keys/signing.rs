//! A signing key parsed once: its algorithm, lifecycle times, public JWK
//! and the JWT signature.
use std::path::Path;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
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
    /// The published JWK, parsed for verifying (`warden_token::jose`).
    pub verifier: std::sync::Arc<warden_token::jose::PublicJwk>,
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

pub(super) fn io_err(p: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |e| KeyError::Io(p.display().to_string(), e)
}

fn b64(bytes: &[u8]) -> String {
    BASE64URL_NOPAD.encode(bytes)
}

impl LoadedKey {
    pub(super) fn from_pkcs8(meta: KeyMeta, der: &[u8], path: &Path) -> Result<Self, KeyError> {
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
        // Its algorithm only (the `kid` may be its thumbprint, set later;
        // keys are found by `meta.kid`).
        let mut published = jwk.clone();
        if let Some(m) = published.as_object_mut() {
            m.insert("alg".into(), meta.alg.as_str().into());
        }
        let verifier = warden_token::jose::PublicJwk::parse(&published)
            .map(std::sync::Arc::new)
            .map_err(|_| KeyError::BadKey(path.display().to_string(), meta.alg.as_str()))?;
        Ok(Self {
            meta,
            signer,
            public,
            header_b64,
            jwk,
            verifier,
        })
    }

    /// RFC 7638 thumbprint: SHA-256 over the required members in
    /// lexicographic order (serde_json's map keeps them sorted).
    pub(super) fn thumbprint(&self) -> String {
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
