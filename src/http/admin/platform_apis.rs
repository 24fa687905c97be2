//! The platform endpoints for resource servers (`platform:manage`): a
//! SaaS backend registers its APIs with their permissions, rotates their
//! secrets and keys.
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AdminCaller, ApiError, ApiJson, IdPath, MaybeJson, PlatformManage};
use crate::domain::resource_server::ProtectedResourceMetadata;
use crate::domain::roles::ApiPermission;
use crate::http::AppState;
use crate::http::openapi::{BODY, CONFLICT, NOT_FOUND, Problems};
use crate::manage::resource_servers::{self as rs, ResourceServerView};

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/api/v1/resource-servers",
            get(list_resource_servers).post(create_resource_server),
        )
        .route(
            "/api/v1/resource-servers/{id}",
            get(get_resource_server)
                .patch(patch_resource_server)
                .delete(delete_resource_server),
        )
        .route(
            "/api/v1/resource-servers/{id}/protected-resource-metadata",
            get(protected_resource_metadata),
        )
        .route(
            "/api/v1/resource-servers/{id}/reset-secret",
            post(reset_rs_secret),
        )
        .route(
            "/api/v1/resource-servers/{id}/rotate-secret",
            post(rotate_rs_secret),
        )
}

#[derive(Serialize, ToSchema)]
pub struct ResourceServerList {
    pub items: Vec<ResourceServerView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateResourceServer {
    /// 1 to 100 characters.
    pub name: String,
    /// The absolute URI its tokens carry in `aud`; never warden's issuer.
    pub audience: String,
    /// The permissions its tokens may carry; none: every permission the
    /// account holds.
    #[serde(default)]
    pub permissions: Vec<ApiPermission>,
}

/// Fields to change; omitted ones keep their value.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchResourceServer {
    pub name: Option<String>,
    /// The whole new declaration (replaces the old one).
    pub permissions: Option<Vec<ApiPermission>>,
    /// The public keys it may sign client assertions with at introspection
    /// and revocation (`private_key_jwt`), as a JWK Set; replaces the old
    /// ones (`{"keys": []}` removes them).
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
}

#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRsSecret {
    /// How long the current secret keeps working, e.g. `24h` (default), at
    /// most `7d`.
    pub grace_period: Option<String>,
}

/// Every resource server (deleted ones included).
#[utoipa::path(get, path = "/api/v1/resource-servers", tag = "platform",
    responses((status = 200, description = "OK", body = ResourceServerList), Problems<0>),
    security(("bearer" = [])))]
pub async fn list_resource_servers(
    State(state): State<Arc<AppState>>,
    _caller: AdminCaller<PlatformManage>,
) -> Result<Json<ResourceServerList>, ApiError> {
    let all = state.db.list_resource_servers().await?;
    let items = all
        .iter()
        .map(|r| ResourceServerView::new(r, None))
        .collect();
    Ok(Json(ResourceServerList { items }))
}

/// Register an API with the permissions its tokens may carry; answers its
/// `client_secret`, once.
#[utoipa::path(post, path = "/api/v1/resource-servers", tag = "platform", request_body = CreateResourceServer,
    responses((status = 201, description = "Created", body = ResourceServerView), Problems<{ BODY | CONFLICT }>),
    security(("bearer" = [])))]
pub async fn create_resource_server(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<PlatformManage>,
    ApiJson(body): ApiJson<CreateResourceServer>,
) -> Result<(StatusCode, Json<ResourceServerView>), ApiError> {
    let (r, secret) = rs::create(
        &state.db,
        &body.name,
        &body.audience,
        body.permissions,
        &state.issuer,
        &caller.actor,
        caller.now(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ResourceServerView::new(&r, Some(&secret))),
    ))
}

async fn find_rs(
    state: &AppState,
    id: &str,
) -> Result<crate::domain::resource_server::ResourceServer, ApiError> {
    if id.contains('\0') {
        return Err(ApiError::NotFound);
    }
    state
        .db
        .find_resource_server(id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// Read one resource server (by id, client id or audience).
#[utoipa::path(get, path = "/api/v1/resource-servers/{id}", tag = "platform",
    params(("id" = String, Path, description = "id, client id or audience")),
    responses((status = 200, description = "OK", body = ResourceServerView), Problems<NOT_FOUND>),
    security(("bearer" = [])))]
pub async fn get_resource_server(
    State(state): State<Arc<AppState>>,
    _caller: AdminCaller<PlatformManage>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<ResourceServerView>, ApiError> {
    Ok(Json(ResourceServerView::new(
        &find_rs(&state, &id).await?,
        None,
    )))
}

/// The RFC 9728 protected resource metadata this API should serve at
/// `/.well-known/oauth-protected-resource` (with its path appended), so MCP
/// clients find warden and the scopes to request. Not for a deleted one.
#[utoipa::path(get, path = "/api/v1/resource-servers/{id}/protected-resource-metadata", tag = "platform",
    params(("id" = String, Path, description = "id, client id or audience")),
    responses((status = 200, description = "OK", body = ProtectedResourceMetadata), Problems<NOT_FOUND>),
    security(("bearer" = [])))]
pub async fn protected_resource_metadata(
    State(state): State<Arc<AppState>>,
    _caller: AdminCaller<PlatformManage>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<ProtectedResourceMetadata>, ApiError> {
    let r = find_rs(&state, &id).await?;
    if r.deleted_at.is_some() {
        return Err(ApiError::NotFound);
    }
    Ok(Json(r.protected_resource_metadata(&state.issuer)))
}

/// Rename it or replace the permissions it declares; tokens for it follow
/// at the next request, on every replica.
#[utoipa::path(patch, path = "/api/v1/resource-servers/{id}", tag = "platform", request_body = PatchResourceServer,
    params(("id" = String, Path, description = "id, client id or audience")),
    responses((status = 200, description = "OK", body = ResourceServerView), Problems<{ NOT_FOUND | CONFLICT | BODY }>),
    security(("bearer" = [])))]
pub async fn patch_resource_server(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<PlatformManage>,
    Path(IdPath { id }): Path<IdPath>,
    ApiJson(body): ApiJson<PatchResourceServer>,
) -> Result<Json<ResourceServerView>, ApiError> {
    let mut r = find_rs(&state, &id).await?;
    let now = caller.now();
    // Everything is checked before anything changes.
    if let Some(name) = &body.name {
        crate::domain::text::validate_name(name).map_err(crate::manage::ManageError::Invalid)?;
    }
    if let Some(next) = &body.permissions {
        rs::checked_permissions(next.clone())?;
    }
    if let Some(jwks) = &body.jwks {
        crate::manage::rs_keys::checked_keys(jwks)?;
    }
    if let Some(name) = &body.name {
        r = rs::rename(&state.db, &r.id, name, &caller.actor, now).await?;
    }
    if let Some(next) = body.permissions {
        let remove: Vec<String> = r
            .permissions
            .iter()
            .filter(|p| !next.iter().any(|n| n.name == p.name))
            .map(|p| p.name.clone())
            .collect();
        r = rs::change_permissions(&state.db, &r.id, next, &remove, &caller.actor, now).await?;
    }
    if let Some(jwks) = &body.jwks {
        r = crate::manage::rs_keys::set_keys(&state.db, &r.id, jwks, &caller.actor, now).await?;
    }
    Ok(Json(ResourceServerView::new(&r, None)))
}

/// Delete it: its credentials, tokens and refresh tokens stop working and
/// its audience is free for a new registration.
#[utoipa::path(delete, path = "/api/v1/resource-servers/{id}", tag = "platform",
    params(("id" = String, Path, description = "id, client id or audience")),
    responses((status = 200, description = "OK", body = ResourceServerView), Problems<NOT_FOUND>),
    security(("bearer" = [])))]
pub async fn delete_resource_server(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<PlatformManage>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<ResourceServerView>, ApiError> {
    let r = find_rs(&state, &id).await?;
    let r = rs::delete(&state.db, &r.id, &caller.actor, caller.now()).await?;
    Ok(Json(ResourceServerView::new(&r, None)))
}

/// Replace its secret: every other one stops working at once.
#[utoipa::path(post, path = "/api/v1/resource-servers/{id}/reset-secret", tag = "platform",
    params(("id" = String, Path, description = "id, client id or audience")),
    responses((status = 200, description = "OK", body = ResourceServerView), Problems<{ NOT_FOUND | CONFLICT }>),
    security(("bearer" = [])))]
pub async fn reset_rs_secret(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<PlatformManage>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<ResourceServerView>, ApiError> {
    let r = find_rs(&state, &id).await?;
    let (r, s) = rs::reset_secret(&state.db, &r.id, &caller.actor, caller.now()).await?;
    Ok(Json(ResourceServerView::new(&r, Some(&s))))
}

/// Issue a new secret while the current one keeps working for a grace
/// period (default 24 h, at most 7 days).
#[utoipa::path(post, path = "/api/v1/resource-servers/{id}/rotate-secret", tag = "platform",
    request_body(content = Option<RotateRsSecret>, description = "optional"),
    params(("id" = String, Path, description = "id, client id or audience")),
    responses((status = 200, description = "OK", body = ResourceServerView), Problems<{ NOT_FOUND | CONFLICT | BODY }>),
    security(("bearer" = [])))]
pub async fn rotate_rs_secret(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<PlatformManage>,
    Path(IdPath { id }): Path<IdPath>,
    MaybeJson(body): MaybeJson<RotateRsSecret>,
) -> Result<Json<ResourceServerView>, ApiError> {
    let grace = match body.grace_period.as_deref() {
        None => crate::manage::accounts::DEFAULT_GRACE_SECS,
        Some(g) => humantime::parse_duration(g)
            .map(|d| d.as_secs() as i64)
            .map_err(|_| {
                ApiError::invalid("grace_period", "must be a duration such as 24h or 3d")
            })?,
    };
    let r = find_rs(&state, &id).await?;
    let (r, s) = rs::rotate_secret(&state.db, &r.id, grace, &caller.actor, caller.now()).await?;
    Ok(Json(ResourceServerView::new(&r, Some(&s))))
}
