//! Pure domain types and rules: no HTTP, no SQL, time passed in.
pub mod account;
pub mod credentials;
pub mod ip;
pub mod resource_server;
pub mod roles;
pub mod text;
