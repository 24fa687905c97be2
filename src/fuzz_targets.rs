//! Fuzzing entry points: each feeds arbitrary bytes to one of the parsers
//! that face attacker input and checks what must hold for *any* input. A
//! broken invariant panics, which is what a fuzzer reports.
//!
//! Driven by the cargo-fuzz targets in `fuzz/` (nightly, coverage-guided,
//! `scripts/fuzz`), and on stable by the test suite, which replays the
//! committed corpus in `fuzz/corpus/` and runs a bounded random-mutation
//! pass over it (`tests/warden/fuzz.rs`).
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv6Addr};
use std::sync::OnceLock;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use data_encoding::BASE64;

use crate::crypto::keys::KeyStore;
use crate::crypto::refresh::RefreshCodec;
use crate::crypto::verify::{LEEWAY_SECS, verify_access_token};
use crate::domain::account::{AccountKind, ExpiresIn};
use crate::domain::credentials::{ClientSecret, MAX_CREDENTIAL_LEN};
use crate::domain::ip::{IpAllowlist, canonical, client_ip, parse_cidr};
use crate::domain::text::{is_hidden_char, validate_description, validate_name};
use crate::http::admin::accounts::CreateAccount;
use crate::http::admin::decode_json;
use crate::http::admin::secrets::RotateSecret;
use crate::http::form::{client_credentials, parse_basic, parse_form};
use crate::oauth::OAuthError;

/// One fuzz target: arbitrary bytes in, a panic on a broken invariant.
pub type Target = fn(&[u8]);

/// The names of the targets, as in `fuzz/fuzz_targets/` and the corpus.
pub const TARGETS: &[(&str, Target)] = &[
    ("form_and_basic", form_and_basic),
    ("cidr", cidr),
    ("jwt", jwt),
    ("admin_json", admin_json),
    ("token_contract", token_contract),
];

fn check_oauth_error(e: &OAuthError) {
    let d = e.description();
    assert!(!d.is_empty() && !e.code().is_empty());
    assert!(
        !d.contains(['\r', '\n']),
        "error_description with a line break: {d:?}"
    );
    let status = e.clone().into_response().status();
    assert!(
        status.is_client_error() || status.as_u16() == 503,
        "{status} for {e:?}"
    );
}

/// The token endpoint's request parsing: the first line of the input is an
/// `Authorization` header value, the rest the form body.
pub fn form_and_basic(data: &[u8]) {
    let (auth, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    match parse_form(body) {
        Ok(form) => {
            assert!(
                form.values().all(|v| !v.is_empty()),
                "empty values are omitted"
            );
            let mut headers = HeaderMap::new();
            if !auth.is_empty()
                && let Ok(v) = HeaderValue::from_bytes(auth)
            {
                headers.insert(header::AUTHORIZATION, v);
            }
            match client_credentials(&headers, &form) {
                Ok(c) => {
                    assert!(c.client_id.len() <= MAX_CREDENTIAL_LEN);
                    assert!(c.secret.expose().len() <= MAX_CREDENTIAL_LEN);
                    assert_eq!(c.via_basic, headers.contains_key(header::AUTHORIZATION));
                    if !c.via_basic {
                        assert_eq!(form.get("client_id"), Some(&c.client_id));
                    } else if let Some(id) = form.get("client_id") {
                        assert_eq!(id, &c.client_id, "body and header ids must agree");
                    }
                    // The secret's shape check never panics.
                    let _ = c.secret.is_well_formed();
                }
                Err(e) => check_oauth_error(&e),
            }
        }
        Err(e) => check_oauth_error(&e),
    }
    if let Err(e) = parse_basic(auth) {
        check_oauth_error(&e);
    }
    // RFC 6749 §2.3.1 round trip: any id and secret, form-urlencoded and
    // base64'd, come back unchanged.
    if let Ok(text) = std::str::from_utf8(data)
        && let Some((id, secret)) = text.split_once('\u{1}')
        && !id.is_empty()
        && id.len() + secret.len() < 300
    {
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let header = format!(
            "Basic {}",
            BASE64.encode(format!("{}:{}", enc(id), enc(secret)).as_bytes())
        );
        let parsed = parse_basic(header.as_bytes()).expect("well-formed Basic parses");
        assert_eq!((parsed.0.as_str(), parsed.1.as_str()), (id, secret));
    }
}

/// Does the dotted-quad part of `entry`'s address have an octet such as
/// `010`, which some tools read as octal?
fn leading_zero_octet(entry: &str) -> bool {
    let addr = entry.trim().split('/').next().unwrap_or("");
    let quad = addr.rsplit(':').next().unwrap_or("");
    quad.contains('.') && quad.split('.').any(|o| o.len() > 1 && o.starts_with('0'))
}

fn ip_from(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        n if n >= 16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&bytes[..16]);
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        n if n >= 4 => Some(IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])),
        _ => None,
    }
}

/// CIDR parsing, the allowlist matcher and the forwarded-for resolution.
pub fn cidr(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let entries: Vec<&str> = text.split(',').collect();
    for e in &entries {
        if let Ok(net) = parse_cidr(e) {
            assert_eq!(net, net.trunc(), "host bits are cleared");
            let again = parse_cidr(&net.to_string()).expect("a parsed block re-parses");
            assert_eq!(again, net);
            assert!(
                !leading_zero_octet(e),
                "{e:?} has an octet with a leading zero"
            );
        }
    }
    let probe = ip_from(data);
    if let Ok(list) = IpAllowlist::parse(&entries) {
        let stored = IpAllowlist::parse_stored(&list.to_stored());
        assert_eq!(stored.entries(), list.entries(), "storage round trip");
        if let Some(ip) = probe {
            let want = list.is_unrestricted()
                || entries
                    .iter()
                    .filter_map(|e| parse_cidr(e).ok())
                    .any(|n| n.contains(&canonical(ip)));
            assert_eq!(list.permits(Some(ip)), want, "{ip} against {entries:?}");
        }
        assert_eq!(
            list.permits(None),
            list.is_unrestricted(),
            "no address fails closed"
        );
    }
    if let Some(peer) = probe {
        let trusted: Vec<_> = ["10.0.0.0/8", "fd00::/8"]
            .iter()
            .filter_map(|c| parse_cidr(c).ok())
            .collect();
        let xff: Vec<&str> = entries.iter().copied().take(4).collect();
        let got = client_ip(peer, &xff, &trusted);
        let peer_c = canonical(peer);
        if !trusted.iter().any(|n| n.contains(&peer_c)) {
            assert_eq!(got, Some(peer_c), "an untrusted peer is the client");
        } else if let Some(ip) = got {
            assert_eq!(ip, canonical(ip));
            let from_header = xff
                .iter()
                .flat_map(|h| h.split(','))
                .filter_map(|h| h.trim().parse::<IpAddr>().ok())
                .any(|h| canonical(h) == ip);
            assert!(ip == peer_c || from_header, "{ip} came from nowhere");
        }
    }
}

const ISSUER: &str = "https://warden.fuzz";
const NOW: i64 = 1_800_000_000;

struct Fixture {
    keys: KeyStore,
    refresh: RefreshCodec,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("warden-fuzz-keys-{}", std::process::id()));
        let keys = KeyStore::open(&dir, NOW - 3600).expect("fuzz key store");
        let refresh = RefreshCodec::new(&[9; 32]).expect("codec");
        Fixture { keys, refresh }
    })
}

/// Access-token and refresh-token parsing: the input as a token (header
/// parsing, structure, algorithms), and the input as claims signed with
/// the real key (the claims parser and time checks).
pub fn jwt(data: &[u8]) {
    let f = fixture();
    let set = f.keys.current();
    let text = String::from_utf8_lossy(data);
    assert!(
        verify_access_token(&set, &text, ISSUER, NOW).is_none(),
        "a forged token verified"
    );
    assert!(
        f.refresh.open(&text).is_none(),
        "a forged refresh token opened"
    );
    let _ = RefreshCodec::is_well_formed(&text);
    if let Ok(token) = set.signing.sign_jwt(data)
        && let Some(c) = verify_access_token(&set, &token, ISSUER, NOW)
    {
        assert_eq!(c.iss, ISSUER);
        assert!(c.exp + LEEWAY_SECS > NOW);
        assert!(c.nbf <= NOW + LEEWAY_SECS && c.iat <= NOW + LEEWAY_SECS);
    }
}

fn check_api_error(e: crate::http::admin::ApiError) {
    let res = e.into_response();
    assert!(res.status().is_client_error(), "{}", res.status());
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
}

/// The admin API's JSON bodies and the validators behind them.
pub fn admin_json(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    match decode_json::<CreateAccount>(&bytes) {
        Ok(b) => {
            let _ = AccountKind::parse(b.kind.as_deref().unwrap_or("credential"));
            if let Ok(n) = validate_name(&b.name) {
                assert!(!n.is_empty() && !n.chars().any(|c| c.is_control() || is_hidden_char(c)));
            }
            let _ = validate_description(&b.description);
            let _ = IpAllowlist::parse(&b.allowed_ips);
            if let Some(e) = b.expires_in.as_deref().and_then(ExpiresIn::parse) {
                let _ = e.expires_at(NOW);
            }
        }
        Err(e) => check_api_error(e),
    }
    match decode_json::<crate::manage::accounts::AccountPatch>(&bytes) {
        Ok(p) => {
            if let Some(ips) = &p.allowed_ips {
                let _ = IpAllowlist::parse(ips);
            }
            if let Some(n) = &p.name {
                let _ = validate_name(n);
            }
        }
        Err(e) => check_api_error(e),
    }
    match decode_json::<RotateSecret>(&bytes) {
        Ok(r) => {
            if let Some(g) = r.grace_period.as_deref() {
                let _ = humantime::parse_duration(g);
            }
        }
        Err(e) => check_api_error(e),
    }
    // Any well-formed secret a client could present parses the same way.
    let _ = ClientSecret::presented(&String::from_utf8_lossy(data)).is_well_formed();
}

/// The token contract (`warden-token`) on its own, as a resource server
/// runs it: the input as a JWK (parsing never panics; a key it accepts
/// is public, and its stored form parses to the same key), as a compact
/// JWS (split and header-checked, never verified without a key), as an
/// access token with every key this input could name (none verifies a
/// forgery), and as an audience (its key never panics and is stable).
pub fn token_contract(data: &[u8]) {
    use warden_token::jose::{PublicJwk, Unverified};
    let text = String::from_utf8_lossy(data);
    let key = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| PublicJwk::parse(&v).ok());
    if let Some(k) = &key {
        let stored = k.to_json();
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(stored.get(private).is_none(), "a private member kept");
        }
        let again = PublicJwk::parse(&stored).expect("a stored key parses again");
        assert_eq!(again.to_json(), stored);
    }
    let _ = Unverified::decode(&text);
    let f = fixture();
    let set = f.keys.current();
    assert!(
        warden_token::access::verify_access_token(&text, ISSUER, NOW, |kid| {
            set.keys
                .iter()
                .find(|k| k.meta.kid == kid)
                .map(|k| &*k.verifier)
                .or(key.as_ref())
        })
        .is_none(),
        "a forged token verified"
    );
    // An audience's key is a function of it, whatever the input (a key
    // of a key may differ for a URI no registration accepts).
    let k = warden_token::audience::audience_key(&text);
    assert_eq!(warden_token::audience::audience_key(&text), k);
    assert!(warden_token::audience::same_resource(&text, &text));
}
