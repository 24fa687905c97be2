//! `/api/v1/members`: the people of the org, those who sign in to the
//! console: listed (`org:read`), their roles set or they removed
//! (`org:manage`), under the rules of `manage::members`.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AdminCaller, ApiError, ApiJson, OrgManage, OrgRead};
use crate::http::AppState;
use crate::http::openapi::{BODY, CONFLICT, NOT_FOUND, Problems};
use crate::manage::members::{self, MemberView};

#[derive(Serialize, ToSchema)]
pub struct MemberList {
    pub items: Vec<MemberView>,
}

/// The `{subject}` of a member's path (named, so the org-scoped route's
/// `{org}` is left to the caller's extractor).
#[derive(Deserialize)]
pub struct SubjectPath {
    subject: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMember {
    /// The whole new set of roles.
    pub roles: Vec<String>,
}

/// The people of the organization (who have signed in to the console).
#[utoipa::path(get, path = "/api/v1/members", tag = "members",
    responses((status = 200, description = "OK", body = MemberList), Problems<0>),
    security(("bearer" = [])))]
pub async fn list_members(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgRead>,
) -> Result<Json<MemberList>, ApiError> {
    Ok(Json(MemberList {
        items: members::list(&state.db, caller.org()).await?,
    }))
}

/// Sets a person's roles. Refused (409) when it would leave the
/// organization without a person able to manage it.
#[utoipa::path(patch, path = "/api/v1/members/{subject}", tag = "members",
    params(("subject" = String, Path, description = "the person's subject")),
    request_body = PatchMember,
    responses((status = 200, description = "OK", body = MemberView), Problems<{ BODY | NOT_FOUND | CONFLICT }>),
    security(("bearer" = [])))]
pub async fn patch_member(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
    Path(SubjectPath { subject }): Path<SubjectPath>,
    ApiJson(body): ApiJson<PatchMember>,
) -> Result<Json<MemberView>, ApiError> {
    Ok(Json(
        members::set_roles(caller.scope(&state.db), &subject, body.roles).await?,
    ))
}

/// Removes a person and ends their sessions (they may sign in again by
/// single sign-on). Refused (409) for the last person able to manage
/// the organization.
#[utoipa::path(delete, path = "/api/v1/members/{subject}", tag = "members",
    params(("subject" = String, Path, description = "the person's subject")),
    responses((status = 204, description = "Removed"), Problems<{ NOT_FOUND | CONFLICT }>),
    security(("bearer" = [])))]
pub async fn delete_member(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
    Path(SubjectPath { subject }): Path<SubjectPath>,
) -> Result<StatusCode, ApiError> {
    members::remove(caller.scope(&state.db), &subject).await?;
    Ok(StatusCode::NO_CONTENT)
}
