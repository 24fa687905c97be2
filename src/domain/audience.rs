//! One resource, one name: an audience URI's comparison key, from the
//! token contract (`warden_token::audience`), so the server and the
//! resource-server kit normalize alike.
pub use warden_token::audience::*;
