//! Other parties' JWTs (client assertions, federated issuers' tokens):
//! the JWS/JWK verifier of the token contract (`warden_token::jose`).
pub use warden_token::jose::*;
