//! Key material and secret handling.
pub mod argon_pool;
pub mod jose;
pub mod keys;
pub mod opaque;
pub mod refresh;
pub mod secrets;
pub mod verify;
