//! `/api/v1/roles`: the built-in roles and the org's custom roles.
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AdminCaller, ApiError, ApiJson, OrgManage, OrgRead};
use crate::http::AppState;
use crate::http::openapi::{BODY, CONFLICT, Problems};
use crate::manage::roles::RoleView;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    /// Lowercase letters, digits and `-`; not a built-in role id.
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// Permissions the role grants; you must hold each.
    pub permissions: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RoleList {
    pub items: Vec<RoleView>,
}

/// Built-in roles and the organization's custom roles.
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
    let items = crate::manage::roles::list(&state.db, caller.org()).await?;
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
    let role = crate::manage::roles::create(
        &state.db,
        caller.org(),
        &body.id,
        &body.description,
        &body.permissions,
        &caller.actor,
        caller.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(RoleView::from(&role))))
}
