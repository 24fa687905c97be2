//! `jose.rs`: every accepted algorithm verifies with a key of its own type
//! and nothing else; refused headers and keys are refused.
#![allow(clippy::unwrap_used)]
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair,
};
use data_encoding::BASE64URL_NOPAD as B64;
use serde_json::{Value, json};

use super::{JwkError, JwsAlg, PublicJwk, Unverified};

/// Signs a JWS input with an algorithm.
type Sign = Box<dyn Fn(JwsAlg, &[u8]) -> Vec<u8>>;

/// A key pair of one type: its public JWK and a signer.
struct Signer {
    jwk: Value,
    sign: Sign,
}

fn ec(p384: bool) -> Signer {
    let alg = if p384 {
        &ECDSA_P384_SHA384_FIXED_SIGNING
    } else {
        &ECDSA_P256_SHA256_FIXED_SIGNING
    };
    let kp = EcdsaKeyPair::generate(alg).unwrap();
    let point = kp.public_key().as_ref().to_vec();
    let len = (point.len() - 1) / 2;
    let jwk = json!({
        "kty": "EC",
        "crv": if p384 { "P-384" } else { "P-256" },
        "x": B64.encode(&point[1..=len]),
        "y": B64.encode(&point[1 + len..]),
    });
    let sign =
        move |_: JwsAlg, m: &[u8]| kp.sign(&SystemRandom::new(), m).unwrap().as_ref().to_vec();
    Signer {
        jwk,
        sign: Box::new(sign),
    }
}

fn rsa() -> Signer {
    let kp = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let pk = kp.public_key();
    let jwk = json!({
        "kty": "RSA",
        "n": B64.encode(pk.modulus().big_endian_without_leading_zero()),
        "e": B64.encode(pk.exponent().big_endian_without_leading_zero()),
    });
    let sign = move |alg: JwsAlg, m: &[u8]| {
        let mut sig = vec![0u8; kp.public_modulus_len()];
        let pad = if alg == JwsAlg::PS256 {
            &RSA_PSS_SHA256
        } else {
            &RSA_PKCS1_SHA256
        };
        kp.sign(pad, &SystemRandom::new(), m, &mut sig).unwrap();
        sig
    };
    Signer {
        jwk,
        sign: Box::new(sign),
    }
}

fn ed() -> Signer {
    let kp = Ed25519KeyPair::generate().unwrap();
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(kp.public_key().as_ref())});
    Signer {
        jwk,
        sign: Box::new(move |_, m| kp.sign(m).as_ref().to_vec()),
    }
}

fn jws(s: &Signer, alg: &str, claims: &Value) -> String {
    let header = B64.encode(
        json!({"alg": alg, "typ": "JWT", "kid": "k1"})
            .to_string()
            .as_bytes(),
    );
    let body = B64.encode(claims.to_string().as_bytes());
    let input = format!("{header}.{body}");
    let sig = (s.sign)(
        JwsAlg::parse(alg).unwrap_or(JwsAlg::RS256),
        input.as_bytes(),
    );
    format!("{input}.{}", B64.encode(&sig))
}

fn verifies(token: &str, jwk: &Value) -> bool {
    let key = PublicJwk::parse(jwk).unwrap();
    let u = Unverified::decode(token).unwrap();
    u.verify::<Value>(&key).is_some()
}

#[test]
fn each_algorithm_verifies_with_its_own_key_type_only() {
    let claims = json!({"iss": "a", "sub": "b"});
    let (p256, p384, rsa, ed) = (ec(false), ec(true), rsa(), ed());
    let cases = [
        (&p256, "ES256"),
        (&p384, "ES384"),
        (&rsa, "RS256"),
        (&rsa, "PS256"),
        (&ed, "EdDSA"),
    ];
    for (signer, alg) in cases {
        let t = jws(signer, alg, &claims);
        assert!(verifies(&t, &signer.jwk), "{alg}");
        let u = Unverified::decode(&t).unwrap();
        assert_eq!(u.kid.as_deref(), Some("k1"));
        let key = PublicJwk::parse(&signer.jwk).unwrap();
        assert_eq!(u.verify::<Value>(&key), Some(claims.clone()));
        // Any other key: no.
        for other in [&p256, &p384, &rsa, &ed] {
            if !std::ptr::eq(other, signer) {
                assert!(!verifies(&t, &other.jwk), "{alg} with another key");
            }
        }
        // A changed payload or signature: no.
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        parts[1] = B64.encode(json!({"iss": "a", "sub": "c"}).to_string().as_bytes());
        assert!(!verifies(&parts.join("."), &signer.jwk), "{alg} tampered");
    }
}

#[test]
fn a_key_named_for_one_algorithm_verifies_only_that_one() {
    let r = rsa();
    let mut jwk = r.jwk.clone();
    jwk["alg"] = "RS256".into();
    let claims = json!({"x": 1});
    assert!(verifies(&jws(&r, "RS256", &claims), &jwk));
    assert!(!verifies(&jws(&r, "PS256", &claims), &jwk));
    let e = ec(false);
    let mut wrong = e.jwk.clone();
    wrong["alg"] = "ES384".into();
    assert!(matches!(
        PublicJwk::parse(&wrong),
        Err(JwkError::Unsupported(_))
    ));
}

#[test]
fn none_hmac_and_crit_are_refused_before_any_key() {
    let head = |h: Value| B64.encode(h.to_string().as_bytes());
    let body = B64.encode(b"{}");
    for h in [
        json!({"alg": "none"}),
        json!({"alg": "HS256"}),
        json!({"alg": "ES512"}),
        json!({"alg": "ES256", "crit": ["exp"]}),
        json!({"typ": "JWT"}),
    ] {
        let t = format!("{}.{body}.{}", head(h.clone()), B64.encode(b"sig"));
        assert!(Unverified::decode(&t).is_none(), "{h}");
    }
    for bad in ["", "a.b", "a.b.c.d", "!!.e30.e30", &"a".repeat(20_000)] {
        assert!(Unverified::decode(bad).is_none(), "{bad:.20}");
    }
}

#[test]
fn only_usable_public_keys_are_accepted() {
    let e = ec(false).jwk;
    let with = |k: &str, v: Value| {
        let mut j = e.clone();
        j[k] = v;
        PublicJwk::parse(&j)
    };
    assert!(matches!(
        with("d", "AAAA".into()),
        Err(JwkError::Private("d"))
    ));
    assert!(matches!(
        with("use", "enc".into()),
        Err(JwkError::Unsupported(_))
    ));
    assert!(matches!(
        with("x", "AAAA".into()),
        Err(JwkError::Invalid(_))
    ));
    assert!(matches!(
        with("crv", "P-521".into()),
        Err(JwkError::Unsupported(_))
    ));
    // A point of the right length that is not on the curve.
    assert!(matches!(
        with("y", B64.encode(&[7u8; 32]).into()),
        Err(JwkError::Invalid(_))
    ));
    let oct = json!({"kty": "oct", "k": "c2VjcmV0"});
    assert!(matches!(
        PublicJwk::parse(&oct),
        Err(JwkError::Private("k"))
    ));
    let oct = json!({"kty": "oct"});
    assert!(matches!(
        PublicJwk::parse(&oct),
        Err(JwkError::Unsupported(_))
    ));
    let small = json!({"kty": "RSA", "n": B64.encode(&[0xC5u8; 128]), "e": "AQAB"});
    assert!(matches!(
        PublicJwk::parse(&small),
        Err(JwkError::Unsupported(_))
    ));
    assert!(matches!(
        PublicJwk::parse(&json!([])),
        Err(JwkError::NotAnObject)
    ));
    // Stored as its public members only, with its kid.
    let mut j = e.clone();
    j["kid"] = "k1".into();
    j["extra"] = "dropped".into();
    let k = PublicJwk::parse(&j).unwrap();
    assert_eq!(k.kid.as_deref(), Some("k1"));
    assert!(k.to_json().get("extra").is_none());
    assert_eq!(k.to_json()["x"], e["x"]);
}

#[test]
fn small_order_ed25519_points_and_useless_rsa_keys_are_refused() {
    let okp = |x: Vec<u8>| json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(&x)});
    let mut one = vec![0u8; 32];
    one[0] = 1;
    let mut p_minus_1 = vec![0xffu8; 32];
    p_minus_1[0] = 0xec;
    p_minus_1[31] = 0x7f;
    let mut zero_negative = vec![0u8; 32];
    zero_negative[31] = 0x80;
    for x in [vec![0u8; 32], one.clone(), p_minus_1, zero_negative] {
        assert!(
            matches!(PublicJwk::parse(&okp(x.clone())), Err(JwkError::Invalid(_))),
            "{x:?}"
        );
    }
    // The forgery it would allow: R the identity, S = 0, for any message.
    let mut sig = vec![0u8; 64];
    sig[0] = 1;
    let forged = format!(
        "{}.{}.{}",
        B64.encode(br#"{"alg":"EdDSA"}"#),
        B64.encode(b"{}"),
        B64.encode(&sig)
    );
    let real = ed();
    assert!(!verifies(&forged, &real.jwk));
    // RSA: a real key's modulus, changed to be short of 2048 bits, even,
    // or with an exponent of 1.
    let r = rsa().jwk;
    let n = B64.decode(r["n"].as_str().unwrap().as_bytes()).unwrap();
    let mut short = n.clone();
    short[0] = 0x7f;
    let mut even = n.clone();
    let last = even.len() - 1;
    even[last] &= 0xfe;
    let with = |n: &[u8], e: &str| json!({"kty": "RSA", "n": B64.encode(n), "e": e});
    assert!(PublicJwk::parse(&with(&n, "AQAB")).is_ok());
    for (jwk, why) in [
        (with(&short, "AQAB"), "2047 bits"),
        (with(&even, "AQAB"), "even n"),
        (with(&n, "AQ"), "e = 1"),
        (with(&n, "Ag"), "e = 2"),
    ] {
        assert!(PublicJwk::parse(&jwk).is_err(), "{why}");
    }
}
