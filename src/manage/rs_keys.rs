//! A resource server's public keys: with one, it may authenticate to
//! introspection and revocation with a client assertion it signs
//! (`private_key_jwt`) instead of its secret. Set as a whole, as a JWK Set,
//! by the operator (`platform:manage`, or the CLI); audited.
use serde_json::{Value, json};

use super::resource_servers::live;
use super::{Actor, ManageError, invalid};
use crate::crypto::jose::PublicJwk;
use crate::db::Db;
use crate::db::resource_servers::RsChange;
use crate::domain::resource_server::ResourceServer;

/// The most keys one resource server holds.
pub const MAX_RS_KEYS: usize = 10;

/// The public keys of a JWK Set (`{"keys": [...]}`; `null` or no keys:
/// none), each checked as an account's key is, stored as its public
/// members. Two keys may not share a `kid`.
pub fn checked_keys(jwks: &Value) -> Result<Vec<String>, ManageError> {
    let list = match jwks {
        Value::Null => return Ok(Vec::new()),
        Value::Object(m) => m
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("jwks", "a JWK Set: {\"keys\": [public JWKs]}"))?,
        _ => return Err(invalid("jwks", "a JWK Set: {\"keys\": [public JWKs]}")),
    };
    if list.len() > MAX_RS_KEYS {
        return Err(invalid("jwks", format!("at most {MAX_RS_KEYS} keys")));
    }
    let mut keys: Vec<PublicJwk> = Vec::new();
    for k in list {
        let key = PublicJwk::parse(k).map_err(|e| invalid("jwks", e.to_string()))?;
        if key.kid.is_some() && keys.iter().any(|o| o.kid == key.kid) {
            return Err(invalid("jwks", "two keys have the same kid"));
        }
        keys.push(key);
    }
    Ok(keys.iter().map(|k| k.to_json().to_string()).collect())
}

/// Replaces the keys of the resource server `key` with those of `jwks`.
pub async fn set_keys(
    db: &Db,
    key: &str,
    jwks: &Value,
    actor: &Actor,
    now: i64,
) -> Result<ResourceServer, ManageError> {
    let keys = checked_keys(jwks)?;
    let r = live(db, key).await?;
    let shown: Vec<Value> = keys
        .iter()
        .filter_map(|k| serde_json::from_str(k).ok())
        .collect();
    let ev = actor
        .record("resource_server.keys_set", ("resource_server", &r.id), now)
        .with(json!({"keys": shown}));
    if !db
        .update_resource_server(&r.id, RsChange::Keys(&keys), &ev)
        .await?
    {
        return Err(ManageError::NotFound);
    }
    live(db, &r.id).await
}
