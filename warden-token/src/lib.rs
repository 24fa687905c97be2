//! warden's token contract, shared by the server and the resource-server
//! kit: what an audience URI's comparison key is (RFC 3986 §6.2.3) and how
//! a compact JWS is checked against a public JWK (RFC 7515, RFC 7517),
//! with only asymmetric algorithms. Pure: serde and aws-lc-rs, no I/O.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod access;
pub mod audience;
pub mod jose;
