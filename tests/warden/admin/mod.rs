//! The admin API, by topic. (The admin plane's safety rules are in
//! `admin_plane.rs`.)
mod auth;
mod grants;
mod lifecycle;
mod listing;
mod openapi;

const SA: &str = "/api/v1/service-accounts";
