//! `GET /api/v1/apis` (`org:read`): the APIs an org's accounts may get
//! tokens for, as the console's APIs page shows them: every live resource
//! server with its audience, the permissions its tokens may carry and its
//! secrets by prefix. Registering and changing them is the platform's
//! (`/api/v1/resource-servers`, `platform:manage`).
use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use super::platform_apis::ResourceServerList;
use super::{AdminCaller, ApiError, OrgRead};
use crate::http::AppState;
use crate::http::openapi::Problems;
use crate::manage::resource_servers::ResourceServerView;

/// The live resource servers (APIs) this org's accounts may ask tokens for.
#[utoipa::path(get, path = "/api/v1/apis", tag = "apis",
    responses((status = 200, description = "OK", body = ResourceServerList), Problems<0>),
    security(("bearer" = [])))]
pub async fn list_apis(
    State(state): State<Arc<AppState>>,
    _caller: AdminCaller<OrgRead>,
) -> Result<Json<ResourceServerList>, ApiError> {
    let all = state.db.list_resource_servers().await?;
    let items = all
        .iter()
        .filter(|r| r.deleted_at.is_none())
        .map(|r| ResourceServerView::new(r, None))
        .collect();
    Ok(Json(ResourceServerList { items }))
}
