//! `GET /api/v1/apis` (`org:read`): the APIs an org's accounts may get
//! tokens for, as the console's APIs page shows them: every live resource
//! server's name, audience and the permissions its tokens may carry. Only
//! what a tenant needs to ask for a token: an API's credentials (client
//! id, secrets, keys) and who registered it are the platform's
//! (`/api/v1/resource-servers`, `platform:manage`).
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::{AdminCaller, ApiError, OrgRead};
use crate::domain::roles::ApiPermission;
use crate::http::AppState;
use crate::http::openapi::Problems;

/// An API as an org sees it.
#[derive(Serialize, ToSchema)]
pub struct ApiView {
    pub id: String,
    pub name: String,
    /// What a token request passes as `resource`, and its tokens' `aud`.
    pub audience: String,
    /// The permissions its tokens may carry; empty: every permission the
    /// account holds.
    pub permissions: Vec<ApiPermission>,
    /// `active` or `disabled`.
    pub status: String,
    pub created_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiList {
    pub items: Vec<ApiView>,
}

/// The live resource servers (APIs) this org's accounts may ask tokens for.
#[utoipa::path(get, path = "/api/v1/apis", tag = "apis",
    responses((status = 200, description = "OK", body = ApiList), Problems<0>),
    security(("bearer" = [])))]
pub async fn list_apis(
    State(state): State<Arc<AppState>>,
    _caller: AdminCaller<OrgRead>,
) -> Result<Json<ApiList>, ApiError> {
    let all = state.db.list_resource_servers().await?;
    let items = all
        .into_iter()
        .filter(|r| r.deleted_at.is_none())
        .map(|r| ApiView {
            created_at: crate::domain::rfc3339(r.created_at),
            status: r.status.as_str().to_owned(),
            id: r.id,
            name: r.name,
            audience: r.audience,
            permissions: r.permissions,
        })
        .collect();
    Ok(Json(ApiList { items }))
}
