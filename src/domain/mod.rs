//! Pure domain types and rules: no HTTP, no SQL, time passed in.
pub mod account;
pub mod audience;
pub mod catalog;
pub mod console;
pub mod credentials;
pub mod federation;
pub mod ip;
pub mod resource_server;
pub mod roles;
pub mod text;

/// Unix seconds as an RFC 3339 time (UTC); `None` out of range.
pub fn rfc3339(t: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}
