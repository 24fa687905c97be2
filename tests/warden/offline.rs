//! Offline validation through the JWKS with standard libraries: Rust's
//! jsonwebtoken and Python's PyJWT accept warden's tokens and reject a
//! tampered one, one signed by another key, `alg: none`, and an expired one.
use std::collections::BTreeMap;
use std::io::Write;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::harness::{Backend, TestServer};
use crate::jwt::jwks;

const API: &str = "https://api.example.com";

/// The server's own signing key, read from its keys directory, to mint an
/// expired token that is otherwise perfectly valid.
pub fn server_key(s: &TestServer) -> (String, EncodingKey) {
    let (kid, pem) = server_key_pem(s);
    (kid, EncodingKey::from_ec_pem(&pem).expect("ec key"))
}

/// The id and PKCS#8 PEM of the server's (only) signing key.
pub fn server_key_pem(s: &TestServer) -> (String, Vec<u8>) {
    let dir = s.dir.path().join("keys");
    for e in std::fs::read_dir(&dir).expect("keys dir") {
        let p = e.expect("entry").path();
        if p.extension().and_then(|x| x.to_str()) == Some("key") {
            let kid = p
                .file_stem()
                .and_then(|x| x.to_str())
                .unwrap_or_default()
                .to_owned();
            return (kid, std::fs::read(&p).expect("read key"));
        }
    }
    panic!("no signing key in {}", dir.display());
}

fn b64(v: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(v)
}

/// Good, tampered, foreign-key, alg-none and expired variants of a token.
async fn variants(s: &TestServer) -> BTreeMap<&'static str, String> {
    let a = s.create_account(&["viewer"]).await;
    let good = s.token_ok(&a, &[("resource", API)]).await["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let parts: Vec<&str> = good.split('.').collect();
    let mut claims: Value = serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(parts[1].as_bytes())
            .expect("b64"),
    )
    .expect("json");

    let mut tampered_claims = claims.clone();
    tampered_claims["roles"] = json!(["admin"]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(tampered_claims.to_string().as_bytes()),
        parts[2]
    );

    let (kid, key) = server_key(s);
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.clone());
    let now = warden::now_unix();
    claims["iat"] = json!(now - 7200);
    claims["nbf"] = json!(now - 7200);
    claims["exp"] = json!(now - 3600);
    let expired = encode(&header, &claims, &key).expect("sign expired");

    // Another warden's key under this warden's kid.
    let other = TestServer::start(Backend::Sqlite).await;
    let (_, other_key) = server_key(&other);
    claims["exp"] = json!(now + 600);
    claims["iat"] = json!(now);
    claims["nbf"] = json!(now);
    let foreign = encode(&header, &claims, &other_key).expect("sign foreign");

    let none_header = b64(json!({"alg": "none", "typ": "at+jwt", "kid": kid})
        .to_string()
        .as_bytes());
    let alg_none = format!("{}.{}.", none_header, parts[1]);

    BTreeMap::from([
        ("good", good),
        ("tampered", tampered),
        ("foreign_key", foreign),
        ("alg_none", alg_none),
        ("expired", expired),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_jsonwebtoken_accepts_only_genuine_tokens() {
    let s = TestServer::start(Backend::Sqlite).await;
    s.create_resource_server(API).await;
    let tokens = variants(&s).await;
    let set = jwks(&s).await;
    for (name, token) in &tokens {
        let verdict = (|| {
            let header = jsonwebtoken::decode_header(token).ok()?;
            let jwk = set.find(header.kid.as_deref()?)?;
            let key = jsonwebtoken::DecodingKey::from_jwk(jwk).ok()?;
            let mut v = jsonwebtoken::Validation::new(Algorithm::ES256);
            v.set_issuer(&[&s.issuer]);
            v.set_audience(&[API]);
            v.leeway = 0;
            jsonwebtoken::decode::<Value>(token, &key, &v).ok()
        })();
        assert_eq!(verdict.is_some(), *name == "good", "{name}");
    }
}

/// The token contract's verifier (`warden_token::access`, which the server
/// and the resource-server kit run) and jsonwebtoken agree on a genuine
/// token, every variant above and every one-character change of it: the
/// same verdict each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_token_agrees_with_jsonwebtoken() {
    let s = TestServer::start(Backend::Sqlite).await;
    s.create_resource_server(API).await;
    let tokens = variants(&s).await;
    let set = jwks(&s).await;
    let doc = s.get_json(&s.url("/.well-known/jwks.json")).await;
    let keys: Vec<warden_token::jose::PublicJwk> = doc["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| warden_token::jose::PublicJwk::parse(k).expect("published key"))
        .collect();
    let now = warden::now_unix();
    let ours = |t: &str| {
        warden_token::access::verify_access_token(t, &s.issuer, now, |kid| {
            keys.iter().find(|k| k.kid.as_deref() == Some(kid))
        })
        .is_some()
    };
    let theirs = |t: &str| {
        (|| {
            let header = jsonwebtoken::decode_header(t).ok()?;
            // RFC 9068 §4: the `typ` jsonwebtoken leaves to its caller.
            if header.typ.as_deref() != Some("at+jwt") {
                return None;
            }
            let key =
                jsonwebtoken::DecodingKey::from_jwk(set.find(header.kid.as_deref()?)?).ok()?;
            let mut v = jsonwebtoken::Validation::new(Algorithm::ES256);
            v.set_issuer(&[&s.issuer]);
            v.validate_aud = false;
            v.validate_nbf = true;
            v.leeway = 0;
            jsonwebtoken::decode::<Value>(t, &key, &v).ok()
        })()
        .is_some()
    };
    let good = tokens["good"].clone();
    assert!(ours(&good) && theirs(&good));
    let mut cases: Vec<String> = tokens.values().cloned().collect();
    for (i, c) in good.char_indices() {
        let swap = if c == 'A' { 'B' } else { 'A' };
        let mut t = good.clone();
        t.replace_range(i..i + c.len_utf8(), &swap.to_string());
        cases.push(t);
    }
    cases.push(format!("{good}."));
    cases.push(good[..good.len() - 1].to_owned());
    for t in &cases {
        assert_eq!(ours(t), theirs(t), "they disagree on {t}");
    }
    assert!(
        cases.iter().filter(|t| ours(t)).count() == 1,
        "only the genuine one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PyJWT; ./scripts/test installs it and runs this"]
async fn python_pyjwt_accepts_only_genuine_tokens() {
    let s = TestServer::start(Backend::Sqlite).await;
    s.create_resource_server(API).await;
    let tokens = variants(&s).await;
    let job = json!({
        "jwks_url": s.url("/.well-known/jwks.json"),
        "issuer": s.issuer,
        "audience": API,
        "tokens": tokens,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/offline/verify_pyjwt.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/test installs PyJWT)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(job.to_string().as_bytes())
        .expect("write job");
    // The script fetches the JWKS from the server running on this runtime,
    // so wait for it off the async workers.
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("python");
    assert!(
        out.status.success(),
        "PyJWT script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: BTreeMap<String, String> =
        serde_json::from_slice(&out.stdout).expect("verdict json");
    assert_eq!(
        verdicts.get("good").map(String::as_str),
        Some("ok"),
        "{verdicts:?}"
    );
    for name in ["tampered", "foreign_key", "alg_none", "expired"] {
        let v = verdicts.get(name).map(String::as_str).unwrap_or("missing");
        assert!(v != "ok" && v != "missing", "{name}: {v}");
    }
    assert_eq!(
        verdicts.get("expired").map(String::as_str),
        Some("ExpiredSignatureError")
    );
}
