//! Micro-benchmarks of the hot paths' pieces (criterion):
//!
//!     cargo bench --bench micro
//!
//! secret verification cold (Argon2id) and cached, token signing, token
//! verification (cold and through the verified-token cache), IP allowlist
//! matching, and the introspection decision on a loaded account.
use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use warden::crypto::keys::KeyStore;
use warden::crypto::secrets::{SecretVerifier, hash_blocking};
use warden::crypto::verify::{VerifiedTokens, verify_access_token};
use warden::domain::account::{AccountKind, ServiceAccount, Status};
use warden::domain::credentials::ClientSecret;
use warden::domain::ip::IpAllowlist;
use warden::domain::roles::{Grant, RolePermissions, derive_grant, narrow_to_live};

const ISSUER: &str = "https://warden.example.com";

fn claims(now: i64) -> Vec<u8> {
    serde_json::json!({
        "iss": ISSUER, "sub": "arm_sa_x", "client_id": "arm_sa_x", "aud": "https://api.example.com",
        "exp": now + 900, "iat": now, "nbf": now, "jti": "j", "scope": "risks:read risks:write",
        "roles": ["risk-editor"], "org": "default",
    })
    .to_string()
    .into_bytes()
}

/// The roles of examples/catalogs/risk-platform.toml the benchmarks hold
/// (the built-in viewer with that catalog's additions).
fn held(roles: &[&str]) -> RolePermissions {
    let defs: &[(&str, &[&str])] = &[
        ("risk-editor", &["risks:read", "risks:write"]),
        ("viewer", &["org:read", "risks:read", "incidents:read"]),
    ];
    roles
        .iter()
        .map(|r| {
            let perms = defs.iter().find(|(id, _)| id == r).map_or(&[][..], |d| d.1);
            (r.to_string(), perms.iter().map(|p| p.to_string()).collect())
        })
        .collect()
}

fn secrets(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let verifier = SecretVerifier::new(1).unwrap_or_else(|e| panic!("{e}"));
    let secret = ClientSecret::generate();
    let hash = hash_blocking(&secret).unwrap_or_else(|e| panic!("{e}"));
    let wrong = ClientSecret::generate();
    let mut g = c.benchmark_group("secret");
    g.sample_size(10);
    g.bench_function("verify cold (Argon2id, wrong secret)", |b| {
        b.to_async(&rt)
            .iter(|| verifier.verify("arm_sa_x", &wrong, Some(&hash), 0))
    });
    g.finish();
    rt.block_on(verifier.verify("arm_sa_x", &secret, Some(&hash), 0))
        .unwrap_or_default();
    c.bench_function("secret/verify cached", |b| {
        b.to_async(&rt)
            .iter(|| verifier.verify("arm_sa_x", &secret, Some(&hash), 0))
    });
}

fn tokens(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let now = warden::now_unix();
    let store = KeyStore::open(dir.path(), now).unwrap_or_else(|e| panic!("{e}"));
    let keys = store.current();
    let body = claims(now);
    c.bench_function("token/sign ES256", |b| {
        b.iter(|| keys.signing.sign_jwt(black_box(&body)))
    });
    let token = keys.signing.sign_jwt(&body).unwrap_or_default();
    c.bench_function("token/verify ES256", |b| {
        b.iter(|| verify_access_token(&keys, black_box(&token), ISSUER, now))
    });
    let cache = VerifiedTokens::default();
    cache.verify(&keys, &token, ISSUER, now);
    c.bench_function("token/verify cached", |b| {
        b.iter(|| cache.verify(&keys, black_box(&token), ISSUER, now))
    });
}

fn allowlist(c: &mut Criterion) {
    let list = IpAllowlist::parse(&[
        "10.0.0.0/8",
        "192.168.0.0/16",
        "2001:db8::/32",
        "203.0.113.7",
    ])
    .unwrap_or_default();
    let inside: IpAddr = "::ffff:203.0.113.7"
        .parse()
        .unwrap_or_else(|_| unreachable!());
    let outside: IpAddr = "198.51.100.1".parse().unwrap_or_else(|_| unreachable!());
    c.bench_function("allowlist/match (4 rules, mapped v6)", |b| {
        b.iter(|| list.permits(black_box(Some(inside))))
    });
    c.bench_function("allowlist/miss (4 rules)", |b| {
        b.iter(|| list.permits(black_box(Some(outside))))
    });
}

fn decision(c: &mut Criterion) {
    let now = warden::now_unix();
    let account = ServiceAccount {
        id: "a".into(),
        org_id: "default".into(),
        kind: AccountKind::Credential,
        name: "n".into(),
        description: String::new(),
        client_id: Some("arm_sa_x".into()),
        secret_hash: None,
        secret_prefix: None,
        secret_created_at: None,
        previous_secrets: Vec::new(),
        credential_epoch: 0,
        integration: None,
        roles: vec!["risk-editor".into(), "viewer".into()],
        allowed_ips: IpAllowlist::parse(&["203.0.113.0/24"]).unwrap_or_default(),
        expires_at: Some(now + 86_400),
        status: Status::Active,
        created_at: now,
        created_by: "x".into(),
        last_used_at: None,
        last_used_ip: None,
        deleted_at: None,
        version: 1,
        allowed_resources: Vec::new(),
        org: Default::default(),
        stored_roles: Default::default(),
    };
    let token_grant =
        derive_grant(&held(&["risk-editor", "viewer"]), None).unwrap_or_else(|_| Grant {
            roles: vec![],
            scope: vec![],
        });
    let live = held(&["viewer"]);
    let ip: IpAddr = "203.0.113.9".parse().unwrap_or_else(|_| unreachable!());
    c.bench_function(
        "introspection decision (live checks + role intersection)",
        |b| {
            b.iter(|| {
                let usable = black_box(&account).check_usable(now, Some(ip)).is_ok();
                (usable, narrow_to_live(black_box(&token_grant), &live))
            })
        },
    );
}

/// A client assertion (`private_key_jwt`): split and verified against a
/// registered ES256 key (parsed once, as the key cache does).
fn assertions(c: &mut Criterion) {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use data_encoding::BASE64URL_NOPAD as B64;
    use warden::crypto::jose::{PublicJwk, Unverified};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let Ok(pair) = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING) else {
        return;
    };
    let point = pair.public_key().as_ref().to_vec();
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256",
        "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])});
    let Ok(key) = PublicJwk::parse(&jwk) else {
        return;
    };
    let input = format!(
        "{}.{}",
        B64.encode(br#"{"alg":"ES256"}"#),
        B64.encode(
            br#"{"iss":"arm_sa_x","sub":"arm_sa_x","aud":"http://a","exp":9999999999,"jti":"j"}"#
        )
    );
    let Ok(sig) = pair.sign(&rng, input.as_bytes()) else {
        return;
    };
    let jwt = format!("{input}.{}", B64.encode(sig.as_ref()));
    c.bench_function("assertion/verify ES256 (key parsed)", |b| {
        b.iter(|| {
            let u = Unverified::decode(black_box(&jwt));
            u.and_then(|u| u.verify::<serde_json::Value>(&key))
        })
    });
    c.bench_function("assertion/parse ES256 JWK", |b| {
        b.iter(|| PublicJwk::parse(black_box(&jwk)).is_ok())
    });
}

criterion_group!(benches, secrets, tokens, allowlist, decision, assertions);
criterion_main!(benches);
