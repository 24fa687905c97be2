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
use crate::manage::console::{self, LinkView};
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

#[derive(Serialize, ToSchema)]
pub struct LinkList {
    pub items: Vec<LinkView>,
}

/// The `{link}` of a sign-in link's path.
#[derive(Deserialize)]
pub struct LinkPath {
    link: String,
}

/// The organization's sign-in links not used yet (made by `warden console
/// link`): who they are for, with which roles, until when.
#[utoipa::path(get, path = "/api/v1/console-links", tag = "members",
    responses((status = 200, description = "OK", body = LinkList), Problems<0>),
    security(("bearer" = [])))]
pub async fn list_links(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
) -> Result<Json<LinkList>, ApiError> {
    let items = console::pending_links(&state.db, Some(caller.org()), caller.now()).await?;
    Ok(Json(LinkList { items }))
}

/// Revokes a sign-in link before it is used; a used, expired or unknown
/// link is 404.
#[utoipa::path(delete, path = "/api/v1/console-links/{link}", tag = "members",
    params(("link" = String, Path, description = "the link's id, as listed")),
    responses((status = 204, description = "Revoked"), Problems<NOT_FOUND>),
    security(("bearer" = [])))]
pub async fn revoke_link(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
    Path(LinkPath { link }): Path<LinkPath>,
) -> Result<StatusCode, ApiError> {
    let now = caller.now();
    console::revoke_link(&state.db, Some(caller.org()), &link, &caller.actor, now).await?;
    Ok(StatusCode::NO_CONTENT)
}
