//! Verifies warden's tokens the way a resource server would: with an
//! independent JWT library (jsonwebtoken) against the published JWKS.
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation, decode, decode_header};
use serde_json::Value;

use crate::harness::TestServer;

pub async fn jwks(s: &TestServer) -> JwkSet {
    s.http
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks json")
}

/// Verifies `token` against the server's JWKS, issuer and `audience`;
/// panics if it does not verify. Returns the header and claims.
pub async fn verify_with_jwks(s: &TestServer, token: &str, audience: &str) -> (Header, Value) {
    let set = jwks(s).await;
    let header = decode_header(token).expect("header");
    let kid = header.kid.clone().expect("kid");
    let jwk = set.find(&kid).expect("kid published in the JWKS");
    let key = DecodingKey::from_jwk(jwk).expect("usable jwk");
    // Never trust the header's choice beyond a fixed list.
    assert!(
        matches!(header.alg, Algorithm::ES256 | Algorithm::EdDSA),
        "unexpected alg {:?}",
        header.alg
    );
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[&s.issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "aud", "sub"]);
    let data = decode::<Value>(token, &key, &v).expect("token verifies against the JWKS");
    (header, data.claims)
}
