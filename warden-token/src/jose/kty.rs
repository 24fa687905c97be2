//! The three key types warden accepts from others, each parsed from its
//! JWK members and checked: EC (P-256, P-384), RSA (2048 to 8192 bits,
//! odd modulus, usable exponent) and OKP (Ed25519, no point of small
//! order).
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ED25519, ParsedPublicKey,
    RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, RsaPublicKeyComponents,
};
use serde_json::{Map, Value, json};

use super::{JwkError, JwsAlg, RSA_MODULUS_BYTES, bytes, text};

pub(super) type Parsed = (Map<String, Value>, Vec<(JwsAlg, ParsedPublicKey)>);

pub(super) fn ec(m: &Map<String, Value>) -> Result<Parsed, JwkError> {
    let crv = text(m, "crv")?;
    let (alg, verifier, len) = match crv {
        "P-256" => (JwsAlg::ES256, &ECDSA_P256_SHA256_FIXED, 32),
        "P-384" => (JwsAlg::ES384, &ECDSA_P384_SHA384_FIXED, 48),
        _ => return Err(JwkError::Unsupported("`crv` for EC: P-256 or P-384".into())),
    };
    let (x, y) = (bytes(m, "x")?, bytes(m, "y")?);
    if x.len() != len || y.len() != len {
        return Err(JwkError::Invalid(
            "`x` and `y` have the wrong length for the curve",
        ));
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let key = ParsedPublicKey::new(verifier, &point)
        .map_err(|_| JwkError::Invalid("the point is not on the curve"))?;
    let members = json!({"kty": "EC", "crv": crv, "x": text(m, "x")?, "y": text(m, "y")?});
    Ok((object(members), vec![(alg, key)]))
}

pub(super) fn rsa(m: &Map<String, Value>) -> Result<Parsed, JwkError> {
    let (n, e) = (bytes(m, "n")?, bytes(m, "e")?);
    let n = n.strip_prefix(&[0]).unwrap_or(&n).to_vec();
    // Whole bits: a 2047-bit modulus is 256 bytes too.
    if !RSA_MODULUS_BYTES.contains(&n.len()) || n[0] < 0x80 {
        return Err(JwkError::Unsupported(
            "an RSA modulus of 2048 to 8192 bits".into(),
        ));
    }
    if n[n.len() - 1] & 1 == 0 {
        return Err(JwkError::Invalid("`n` is even"));
    }
    // An odd exponent of 3 or more, at most 32 bits (65537 in practice).
    let e_value = e.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b));
    if e.is_empty() || e.len() > 4 || e_value < 3 || e_value & 1 == 0 {
        return Err(JwkError::Invalid("`e` is not a usable exponent"));
    }
    let components = RsaPublicKeyComponents { n: &n, e: &e };
    let parse = |params| {
        components
            .to_parsed_public_key(params)
            .map_err(|_| JwkError::Invalid("`n` and `e` do not form an RSA key"))
    };
    let verifiers = vec![
        (JwsAlg::RS256, parse(&RSA_PKCS1_2048_8192_SHA256)?),
        (JwsAlg::PS256, parse(&RSA_PSS_2048_8192_SHA256)?),
    ];
    let members = json!({"kty": "RSA", "n": text(m, "n")?, "e": text(m, "e")?});
    Ok((object(members), verifiers))
}

/// The y-coordinates (little-endian, sign bit cleared) of Ed25519's
/// points of small order (libsodium's list): the identity, the point of
/// order 2, those of order 4 and 8, and the non-canonical encodings of 0
/// and 1. With such a "public key" the all-zero signature (R the
/// identity, S = 0) verifies for every message under cofactorless
/// verification, so anyone could sign as the account: refused.
const ED25519_SMALL_ORDER: [[u8; 32]; 7] = {
    let mut l = [[0u8; 32]; 7];
    // 0: order 4.
    // 1: order 1 (the identity).
    l[1][0] = 1;
    // Order 8.
    l[2] = [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ];
    l[3] = [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ];
    // p - 1 (order 2), p (0, non-canonical), p + 1 (1, non-canonical).
    let mut i = 4;
    while i < 7 {
        let mut k = 1;
        while k < 31 {
            l[i][k] = 0xff;
            k += 1;
        }
        l[i][0] = 0xec + (i as u8 - 4);
        l[i][31] = 0x7f;
        i += 1;
    }
    l
};

/// Is the encoded Ed25519 point one of small order (either sign of x)?
fn ed25519_small_order(x: &[u8]) -> bool {
    ED25519_SMALL_ORDER
        .iter()
        .any(|p| x.len() == 32 && x[..31] == p[..31] && (x[31] & 0x7f) == p[31])
}

pub(super) fn okp(m: &Map<String, Value>) -> Result<Parsed, JwkError> {
    if text(m, "crv")? != "Ed25519" {
        return Err(JwkError::Unsupported("`crv` for OKP: Ed25519".into()));
    }
    let x = bytes(m, "x")?;
    if x.len() != 32 {
        return Err(JwkError::Invalid("`x` is not 32 bytes"));
    }
    if ed25519_small_order(&x) {
        return Err(JwkError::Invalid(
            "`x` is a point of small order, which anyone can sign for",
        ));
    }
    let key =
        ParsedPublicKey::new(&ED25519, &x).map_err(|_| JwkError::Invalid("`x` is not a key"))?;
    let members = json!({"kty": "OKP", "crv": "Ed25519", "x": text(m, "x")?});
    Ok((object(members), vec![(JwsAlg::EdDSA, key)]))
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
