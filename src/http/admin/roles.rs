//! `/api/v1/roles`: the roles usable in the org (built-in, global, its
//! own), and its custom roles' changes; `/api/v1/global-roles`: the
//! operator's roles, visible in every org (`platform:manage`).
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AdminCaller, ApiError, ApiJson, IdPath, OrgManage, OrgRead, PlatformManage};
use crate::http::AppState;
use crate::http::openapi::{BODY, CONFLICT, NOT_FOUND, Problems};
use crate::manage::roles::{self, RoleUpdate, RoleView};

/// The global roles' endpoints (platform ones, not under an org).
pub fn global_router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/api/v1/global-roles",
            get(list_global_roles).post(create_global_role),
        )
        .route(
            "/api/v1/global-roles/{id}",
            get(get_global_role)
                .patch(patch_global_role)
                .delete(delete_global_role),
        )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    /// Lowercase letters, digits and `-`; not a built-in or global role id.
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// Permissions the role grants (built-in, or declared by a resource
    /// server); you must hold each.
    pub permissions: Vec<String>,
}

/// The fields to change; those left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchRole {
    pub description: Option<String>,
    /// The whole new set; you must hold every permission the role grants
    /// before and after. Every account holding the role holds the new set
    /// from its next request on.
    pub permissions: Option<Vec<String>>,
}

impl From<PatchRole> for RoleUpdate {
    fn from(p: PatchRole) -> Self {
        Self {
            description: p.description,
            permissions: p.permissions,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RoleList {
    pub items: Vec<RoleView>,
}

/// The roles usable in the organization: built-in, global, then its own.
#[utoipa::path(get, path = "/api/v1/roles", tag = "roles",
    responses(
        (status = 200, description = "OK", body = RoleList),
        Problems<0>,
    ),
    security(("bearer" = [])))]
pub async fn list_roles(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgRead>,
) -> Result<Json<RoleList>, ApiError> {
    let items = roles::list(&state.db, Some(caller.org())).await?;
    Ok(Json(RoleList { items }))
}

/// Create a custom role, usable like the built-in ones.
#[utoipa::path(post, path = "/api/v1/roles", tag = "roles", request_body = CreateRole,
    responses(
        (status = 201, description = "Created", body = RoleView),
        Problems<{ CONFLICT | BODY }>,
    ),
    security(("bearer" = [])))]
pub async fn create_role(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
    ApiJson(body): ApiJson<CreateRole>,
) -> Result<(StatusCode, Json<RoleView>), ApiError> {
    let role = roles::create(
        &state.db,
        Some(caller.org()),
        &body.id,
        &body.description,
        &body.permissions,
        &caller.actor,
        caller.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(RoleView::from(&role))))
}

/// Read one role usable in the organization.
#[utoipa::path(get, path = "/api/v1/roles/{id}", tag = "roles",
    params(("id" = String, Path, description = "role id")),
    responses((status = 200, description = "OK", body = RoleView), Problems<NOT_FOUND>),
    security(("bearer" = [])))]
pub async fn get_role(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgRead>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<RoleView>, ApiError> {
    Ok(Json(roles::show(&state.db, Some(caller.org()), &id).await?))
}

/// Change one of the organization's custom roles (built-in and global
/// roles answer 409).
#[utoipa::path(patch, path = "/api/v1/roles/{id}", tag = "roles", request_body = PatchRole,
    params(("id" = String, Path, description = "role id")),
    responses(
        (status = 200, description = "OK", body = RoleView),
        Problems<{ NOT_FOUND | CONFLICT | BODY }>,
    ),
    security(("bearer" = [])))]
pub async fn patch_role(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
    Path(IdPath { id }): Path<IdPath>,
    ApiJson(body): ApiJson<PatchRole>,
) -> Result<Json<RoleView>, ApiError> {
    let org = Some(caller.org());
    let r = roles::update(
        &state.db,
        org,
        &id,
        body.into(),
        &caller.actor,
        caller.now(),
    )
    .await?;
    Ok(Json(RoleView::from(&r)))
}

/// Delete one of the organization's custom roles; refused (409) while a
/// service account holds it.
#[utoipa::path(delete, path = "/api/v1/roles/{id}", tag = "roles",
    params(("id" = String, Path, description = "role id")),
    responses(
        (status = 204, description = "Deleted"),
        Problems<{ NOT_FOUND | CONFLICT }>,
    ),
    security(("bearer" = [])))]
pub async fn delete_role(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<StatusCode, ApiError> {
    roles::delete(
        &state.db,
        Some(caller.org()),
        &id,
        &caller.actor,
        caller.now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The global roles, visible in every organization.
#[utoipa::path(get, path = "/api/v1/global-roles", tag = "platform",
    responses((status = 200, description = "OK", body = RoleList), Problems<0>),
    security(("bearer" = [])))]
pub async fn list_global_roles(
    State(state): State<Arc<AppState>>,
    _caller: AdminCaller<PlatformManage>,
) -> Result<Json<RoleList>, ApiError> {
    let items = roles::list(&state.db, None).await?;
    Ok(Json(RoleList { items }))
}

/// Create a global role: every organization may grant it.
#[utoipa::path(post, path = "/api/v1/global-roles", tag = "platform", request_body = CreateRole,
    responses(
        (status = 201, description = "Created", body = RoleView),
        Problems<{ CONFLICT | BODY }>,
    ),
    security(("bearer" = [])))]
pub async fn create_global_role(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<PlatformManage>,
    ApiJson(body): ApiJson<CreateRole>,
) -> Result<(StatusCode, Json<RoleView>), ApiError> {
    let role = roles::create(
        &state.db,
        None,
        &body.id,
        &body.description,
        &body.permissions,
        &caller.actor,
        caller.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(RoleView::from(&role))))
}

/// Read one global role.
#[utoipa::path(get, path = "/api/v1/global-roles/{id}", tag = "platform",
    params(("id" = String, Path, description = "role id")),
    responses((status = 200, description = "OK", body = RoleView), Problems<NOT_FOUND>),
    security(("bearer" = [])))]
pub async fn get_global_role(
    State(state): State<Arc<AppState>>,
    _caller: AdminCaller<PlatformManage>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<RoleView>, ApiError> {
    Ok(Json(roles::show(&state.db, None, &id).await?))
}

/// Change a global role: every account holding it, in every
/// organization, holds the new permissions from its next request on.
#[utoipa::path(patch, path = "/api/v1/global-roles/{id}", tag = "platform",
    request_body = PatchRole,
    params(("id" = String, Path, description = "role id")),
    responses(
        (status = 200, description = "OK", body = RoleView),
        Problems<{ NOT_FOUND | CONFLICT | BODY }>,
    ),
    security(("bearer" = [])))]
pub async fn patch_global_role(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<PlatformManage>,
    Path(IdPath { id }): Path<IdPath>,
    ApiJson(body): ApiJson<PatchRole>,
) -> Result<Json<RoleView>, ApiError> {
    let r = roles::update(
        &state.db,
        None,
        &id,
        body.into(),
        &caller.actor,
        caller.now(),
    )
    .await?;
    Ok(Json(RoleView::from(&r)))
}

/// Delete a global role; refused (409) while any service account holds it.
#[utoipa::path(delete, path = "/api/v1/global-roles/{id}", tag = "platform",
    params(("id" = String, Path, description = "role id")),
    responses(
        (status = 204, description = "Deleted"),
        Problems<{ NOT_FOUND | CONFLICT }>,
    ),
    security(("bearer" = [])))]
pub async fn delete_global_role(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<PlatformManage>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<StatusCode, ApiError> {
    roles::delete(&state.db, None, &id, &caller.actor, caller.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
