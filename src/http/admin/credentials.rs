//! `/api/v1/service-accounts/{id}/credentials`: an account's secrets and
//! public keys as one list; adding and removing a public key.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AdminCaller, ApiError, ApiJson, IdPath, OrgManage, OrgRead};
use crate::http::AppState;
use crate::http::openapi::{BODY, CONFLICT, NOT_FOUND, Problems};
use crate::manage::accounts::credentials::{self, CredentialView, NewCredential};

#[derive(Serialize, ToSchema)]
pub struct CredentialList {
    pub items: Vec<CredentialView>,
}

/// A new credential: a public key, as a JWK (EC P-256 or P-384, RSA of
/// 2048 bits or more, or Ed25519; public members only), or a federated
/// trust in an external issuer's tokens.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddCredential {
    /// `public_key` or `federated`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `public_key`: the public JWK.
    #[schema(value_type = Option<Object>)]
    pub jwk: Option<serde_json::Value>,
    /// `public_key`, instead of `jwk`: where the client publishes its
    /// public keys as a JWK Set (https).
    pub jwks_uri: Option<String>,
    /// `federated`: the issuer's URL, exactly as its tokens' `iss` says
    /// it (https; its OpenID discovery document names its JWKS).
    pub issuer: Option<String>,
    /// `federated`: the tokens' `sub`, exactly.
    pub subject: Option<String>,
    /// `federated`: a value the tokens' `aud` must contain.
    pub audience: Option<String>,
    /// `federated`: claims the tokens must carry with exactly these values
    /// (strings, numbers, booleans).
    #[schema(value_type = Option<Object>)]
    pub claims: Option<serde_json::Value>,
    /// `30d`, `60d`, `90d`, `180d`, `1y` or `never` (the default).
    pub expires_in: Option<String>,
}

/// The `{id}` and `{credential_id}` of a credential's path.
#[derive(Deserialize)]
pub struct CredentialPath {
    pub id: String,
    pub credential_id: String,
}

/// The account's credentials: its working secrets (by prefix) and its
/// public keys, each with its creation, expiry and last use.
#[utoipa::path(get, path = "/api/v1/service-accounts/{id}/credentials", tag = "service accounts",
    params(("id" = String, Path, description = "id or client id")),
    responses((status = 200, description = "OK", body = CredentialList), Problems<NOT_FOUND>),
    security(("bearer" = [])))]
pub async fn list_credentials(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgRead>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<CredentialList>, ApiError> {
    let items = credentials::list(&caller.scope(&state.db), &id).await?;
    Ok(Json(CredentialList { items }))
}

/// Add a public key the account authenticates with (`private_key_jwt`).
/// Takes what resetting the account's secret takes.
#[utoipa::path(post, path = "/api/v1/service-accounts/{id}/credentials", tag = "service accounts",
    request_body = AddCredential,
    params(("id" = String, Path, description = "id or client id")),
    responses(
        (status = 201, description = "Created", body = CredentialView),
        Problems<{ NOT_FOUND | CONFLICT | BODY }>,
    ),
    security(("bearer" = [])))]
pub async fn add_credential(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
    Path(IdPath { id }): Path<IdPath>,
    ApiJson(body): ApiJson<AddCredential>,
) -> Result<(StatusCode, Json<CredentialView>), ApiError> {
    let expires_in = body.expires_in.clone();
    let new = new_credential(body, state.config.federation_allow_http, &state.issuer)?;
    let scope = caller.scope(&state.db);
    let view = credentials::add(&scope, &id, new, expires_in.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Remove one of the account's public keys: assertions it signs are
/// refused from then on.
#[utoipa::path(delete, path = "/api/v1/service-accounts/{id}/credentials/{credential_id}",
    tag = "service accounts",
    params(
        ("id" = String, Path, description = "id or client id"),
        ("credential_id" = String, Path, description = "the credential's id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        Problems<{ NOT_FOUND | CONFLICT }>,
    ),
    security(("bearer" = [])))]
pub async fn remove_credential(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
    Path(CredentialPath { id, credential_id }): Path<CredentialPath>,
) -> Result<StatusCode, ApiError> {
    credentials::remove(&caller.scope(&state.db), &id, &credential_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The credential a request body describes, each type with only its own
/// fields.
fn new_credential(
    body: AddCredential,
    allow_http: bool,
    own_issuer: &str,
) -> Result<NewCredential, ApiError> {
    let federated = [&body.issuer, &body.subject, &body.audience]
        .iter()
        .any(|f| f.is_some())
        || body.claims.is_some();
    match body.kind.as_str() {
        "public_key" if federated => Err(ApiError::invalid(
            "type",
            "issuer, subject, audience and claims belong to a federated credential",
        )),
        "public_key" => match (body.jwk, body.jwks_uri) {
            (Some(jwk), None) => Ok(NewCredential::PublicKey(jwk)),
            (None, Some(jwks_uri)) => Ok(NewCredential::KeySet {
                jwks_uri,
                allow_http,
            }),
            _ => Err(ApiError::invalid(
                "jwk",
                "a public_key credential has its public key as a JWK, or a jwks_uri: one of the two",
            )),
        },
        "federated" if body.jwk.is_some() || body.jwks_uri.is_some() => Err(ApiError::invalid(
            "jwk",
            "a federated credential has no key of its own: the issuer's keys are found by discovery",
        )),
        "federated" => {
            let need = |v: Option<String>, field: &'static str| {
                v.ok_or_else(|| ApiError::invalid(field, "a federated credential needs it"))
            };
            Ok(NewCredential::Federated {
                issuer: need(body.issuer, "issuer")?,
                subject: need(body.subject, "subject")?,
                audience: need(body.audience, "audience")?,
                claims: body.claims,
                allow_http,
                own_issuer: own_issuer.to_owned(),
            })
        }
        _ => Err(ApiError::invalid("type", "`public_key` or `federated`")),
    }
}
