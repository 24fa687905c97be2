//! The platform endpoints (`platform:manage`, operators): organizations,
//! resource servers and global roles (their handlers are in `roles.rs`),
//! for a SaaS backend that creates an org when a customer signs up and
//! registers its APIs with their permissions.
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AdminCaller, ApiError, ApiJson, PlatformManage, roles};
use crate::domain::account::Status;
use crate::http::AppState;
use crate::http::openapi::{BODY, CONFLICT, NOT_FOUND, PRECONDITION, Problems};
use crate::manage::orgs::{self, OrgView};

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/orgs", get(list_orgs).post(create_org))
        .route("/api/v1/orgs/{org}", get(get_org).patch(patch_org))
        .route("/api/v1/orgs/{org}/disable", post(disable_org))
        .route("/api/v1/orgs/{org}/enable", post(enable_org))
        .merge(super::platform_apis::router())
        .merge(roles::global_router())
}

#[derive(Serialize, ToSchema)]
pub struct OrgList {
    pub items: Vec<OrgView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    /// Lowercase letters, digits and `-`, 1 to 63; never changes.
    pub slug: String,
    /// Display name; defaults to the slug.
    pub name: Option<String>,
}

/// Every organization.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "platform",
    responses((status = 200, description = "OK", body = OrgList), Problems<0>),
    security(("bearer" = [])))]
pub async fn list_orgs(
    State(state): State<Arc<AppState>>,
    _caller: AdminCaller<PlatformManage>,
) -> Result<Json<OrgList>, ApiError> {
    let items = state
        .db
        .list_orgs()
        .await?
        .iter()
        .map(OrgView::from)
        .collect();
    Ok(Json(OrgList { items }))
}

/// Create an organization (a new customer). Audited, with the person it was
/// done for when `Warden-On-Behalf-Of` names one.
#[utoipa::path(post, path = "/api/v1/orgs", tag = "platform", request_body = CreateOrg,
    params(("Warden-On-Behalf-Of" = Option<String>, Header, description = "the person this is done for (operators only)")),
    responses((status = 201, description = "Created", body = OrgView), Problems<{ BODY | CONFLICT }>),
    security(("bearer" = [])))]
pub async fn create_org(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<PlatformManage>,
    ApiJson(body): ApiJson<CreateOrg>,
) -> Result<(StatusCode, Json<OrgView>), ApiError> {
    let now = caller.now();
    let slug = crate::manage::orgs::create(
        &state.db,
        &body.slug,
        body.name.as_deref(),
        &caller.actor,
        now,
    )
    .await?;
    let org = find_org(&state, &slug).await?;
    Ok((StatusCode::CREATED, Json(org)))
}

async fn find_org(state: &AppState, slug: &str) -> Result<OrgView, ApiError> {
    let org = state.db.find_org(slug).await?.ok_or(ApiError::NotFound)?;
    Ok(OrgView::from(&org))
}

/// An org with its `ETag` (its version): send it back in `If-Match` to
/// change the org only if nobody else has meanwhile.
type TaggedOrg = ([(HeaderName, HeaderValue); 1], Json<OrgView>);

fn tagged(o: &crate::db::orgs::Org) -> TaggedOrg {
    (
        [(header::ETAG, super::etag(o.version))],
        Json(OrgView::from(o)),
    )
}

/// Read one organization.
#[utoipa::path(get, path = "/api/v1/orgs/{org}", tag = "platform",
    params(("org" = String, Path, description = "the org's slug")),
    responses((status = 200, description = "OK", body = OrgView,
            headers(("ETag" = String, description = "the org's version, for If-Match"))),
        Problems<NOT_FOUND>),
    security(("bearer" = [])))]
pub async fn get_org(
    State(state): State<Arc<AppState>>,
    _caller: AdminCaller<PlatformManage>,
    Path(org): Path<String>,
) -> Result<TaggedOrg, ApiError> {
    let org = state.db.find_org(&org).await?.ok_or(ApiError::NotFound)?;
    Ok(tagged(&org))
}

/// Fields to change; omitted ones keep their value.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchOrg {
    /// 1 to 100 characters.
    pub name: Option<String>,
    /// Addresses or CIDR blocks every account of the org must call from
    /// (on top of its own); an empty list removes the restriction.
    pub allowed_ips: Option<Vec<String>>,
}

/// Rename an org or set its allowlist; applies to every account in it at
/// the next request. Only the fields sent are written; with `If-Match`
/// (an ETag from GET), only if the org is still at that version.
#[utoipa::path(patch, path = "/api/v1/orgs/{org}", tag = "platform", request_body = PatchOrg,
    params(("org" = String, Path, description = "the org's slug"),
        ("If-Match" = Option<String>, Header, description = "an ETag from GET: change only that version")),
    responses((status = 200, description = "OK", body = OrgView,
            headers(("ETag" = String, description = "the org's new version"))),
        Problems<{ NOT_FOUND | BODY | CONFLICT | PRECONDITION }>),
    security(("bearer" = [])))]
pub async fn patch_org(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<PlatformManage>,
    Path(org): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PatchOrg>,
) -> Result<TaggedOrg, ApiError> {
    find_org(&state, &org).await?;
    let ips = body.allowed_ips.as_deref();
    let o = orgs::update(
        &state.db,
        &org,
        body.name.as_deref(),
        ips,
        super::if_match(&headers)?,
        &caller.actor,
        caller.now(),
    )
    .await?;
    Ok(tagged(&o))
}

/// Disable an org: every account in it acts as disabled, at once (tokens
/// refused, introspection inactive); enabling brings them back.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/disable", tag = "platform",
    params(("org" = String, Path, description = "the org's slug")),
    responses((status = 200, description = "OK", body = OrgView), Problems<NOT_FOUND>),
    security(("bearer" = [])))]
pub async fn disable_org(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<PlatformManage>,
    Path(org): Path<String>,
) -> Result<Json<OrgView>, ApiError> {
    find_org(&state, &org).await?;
    let o = orgs::set_status(
        &state.db,
        &org,
        Status::Disabled,
        &caller.actor,
        caller.now(),
    )
    .await?;
    Ok(Json(OrgView::from(&o)))
}

/// Enable a disabled org again.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/enable", tag = "platform",
    params(("org" = String, Path, description = "the org's slug")),
    responses((status = 200, description = "OK", body = OrgView), Problems<NOT_FOUND>),
    security(("bearer" = [])))]
pub async fn enable_org(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<PlatformManage>,
    Path(org): Path<String>,
) -> Result<Json<OrgView>, ApiError> {
    find_org(&state, &org).await?;
    let o = orgs::set_status(&state.db, &org, Status::Active, &caller.actor, caller.now()).await?;
    Ok(Json(OrgView::from(&o)))
}
