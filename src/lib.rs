//! warden: an OAuth 2.1 authorization server for service accounts.
//!
//! Layers, outermost first: `http` (axum handlers, extractors, error
//! mapping) → `oauth` (the grant flows, in the order the spec lists the
//! checks) → `domain` (pure types and rules, time passed in) → `db` (the only
//! place SQL lives). `crypto` owns signing keys and secret verification.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod app;
pub mod bookkeeping;
pub mod cli;
pub mod config;
pub mod connections;
pub mod crypto;
pub mod db;
pub mod domain;
#[cfg(feature = "fuzzing")]
pub mod fuzz_targets;
pub mod http;
pub mod manage;
pub mod oauth;
pub mod ratelimit;

/// Seconds since the Unix epoch; every stored time uses this unit.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
