//! `/api/v1/service-accounts` and `/api/v1/oauth/clients`.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde::Deserialize;
use utoipa::ToSchema;

use super::query::{bad_cursor, list_query, next_cursor};
use super::{AdminCaller, ApiError, ApiJson, IdPath, OrgManage, OrgRead};
use crate::db::accounts::AccountQuery;
use crate::domain::account::{AccountKind, Status};
use crate::http::AppState;
use crate::http::openapi::{BODY, CONFLICT, NOT_FOUND, PRECONDITION, Problems, QUERY};
use crate::manage::accounts::{self, AccountPatch, AccountView, NewAccount};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// `credential` (default) or `integration`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// At least one role id.
    pub roles: Vec<String>,
    /// Addresses or CIDR blocks; empty means unrestricted.
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    /// The APIs (audience URIs) it may get tokens for; empty: every API.
    #[serde(default)]
    pub allowed_resources: Vec<String>,
    /// `30d`, `60d`, `90d`, `180d`, `1y` or `never` (default).
    pub expires_in: Option<String>,
    /// Instead of `expires_in`: an RFC 3339 time, in the future, at most
    /// ten years ahead.
    pub expires_at: Option<String>,
    /// For integration accounts: the integration they represent.
    pub integration: Option<String>,
    /// `false`: no secret; the account authenticates only with keys added
    /// to it (`/credentials`). Default `true`.
    pub with_secret: Option<bool>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct AccountPage {
    pub items: Vec<AccountView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

pub(super) fn view(a: &crate::domain::account::ServiceAccount, now: i64) -> Json<AccountView> {
    Json(AccountView::new(a, None, now))
}

/// An account with its `ETag`: the version of what an admin can change
/// (bookkeeping such as last use does not move it). Send it back in
/// `If-Match` to change the account only if nobody else has meanwhile.
type Tagged = ([(HeaderName, HeaderValue); 1], Json<AccountView>);

fn tagged(a: &crate::domain::account::ServiceAccount, now: i64) -> Tagged {
    ([(header::ETAG, super::etag(a.version))], view(a, now))
}

/// Parses the list's query string; unknown parameters are refused.
fn parse_list_query(raw: Option<&str>, org: &str) -> Result<AccountQuery, ApiError> {
    let mut q = AccountQuery {
        org: org.to_owned(),
        ..Default::default()
    };
    q.limit = list_query(raw, 50, 200, |name, v| {
        match name {
            "type" => match AccountKind::parse(&v) {
                Some(kind) => q.kind = Some(kind.as_str().into()),
                None => {
                    return Err(ApiError::invalid(
                        "type",
                        "must be credential or integration",
                    ));
                }
            },
            "status" => match Status::parse(&v) {
                Some(s) => q.status = Some(s.as_str().into()),
                None => return Err(ApiError::invalid("status", "must be active or disabled")),
            },
            "include" => match v.as_str() {
                "deleted" => q.include_deleted = true,
                _ => return Err(ApiError::invalid("include", "the only value is `deleted`")),
            },
            "q" if v.chars().count() <= 100 => q.search = Some(v).filter(|s| !s.is_empty()),
            "q" => return Err(ApiError::invalid("q", "at most 100 characters")),
            "cursor" => {
                let id = data_encoding::BASE64URL_NOPAD
                    .decode(v.as_bytes())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|s| s.len() <= 64 && !s.contains('\0'))
                    .ok_or_else(bad_cursor)?;
                q.after = Some(id);
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(q)
}

/// List the organization's service accounts.
#[utoipa::path(get, path = "/api/v1/service-accounts", tag = "service accounts",
    params(
        ("type" = Option<String>, Query, description = "credential or integration"),
        ("status" = Option<String>, Query, description = "active or disabled"),
        ("include" = Option<String>, Query, description = "`deleted` to include tombstones"),
        ("q" = Option<String>, Query, description = "name contains, or client id starts with"),
        ("limit" = Option<i64>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "OK", body = AccountPage),
        Problems<{ QUERY }>,
    ),
    security(("bearer" = [])))]
pub async fn list_accounts(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgRead>,
    RawQuery(raw): RawQuery,
) -> Result<Json<AccountPage>, ApiError> {
    let q = parse_list_query(raw.as_deref(), caller.org())?;
    let limit = q.limit;
    let items = state.db.query_accounts(&q).await?;
    let now = caller.now();
    let next_cursor = next_cursor(&items, limit, |a| {
        data_encoding::BASE64URL_NOPAD.encode(a.id.as_bytes())
    });
    let items = items
        .iter()
        .map(|a| AccountView::new(a, None, now))
        .collect();
    Ok(Json(AccountPage { items, next_cursor }))
}

/// Create a service account. Credential accounts answer with their
/// `client_secret`, once.
#[utoipa::path(post, path = "/api/v1/service-accounts", tag = "service accounts", request_body = CreateAccount,
    responses(
        (status = 201, description = "Created", body = AccountView),
        Problems<{ BODY }>,
    ),
    security(("bearer" = [])))]
pub async fn create_account(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
    ApiJson(body): ApiJson<CreateAccount>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    let kind = AccountKind::parse(body.kind.as_deref().unwrap_or("credential"))
        .ok_or_else(|| ApiError::invalid("type", "must be credential or integration"))?;
    let req = NewAccount {
        org: caller.org().to_owned(),
        kind,
        name: body.name,
        description: body.description,
        integration: body.integration,
        roles: body.roles,
        allowed_ips: body.allowed_ips,
        allowed_resources: body.allowed_resources,
        expires_in: body.expires_in,
        expires_at: body.expires_at,
        with_secret: body.with_secret.unwrap_or(true),
    };
    let (a, secret) = accounts::create(&state.db, req, &caller.actor, caller.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(AccountView::new(&a, secret.as_ref(), caller.now())),
    ))
}

/// Read one service account (tombstones included).
#[utoipa::path(get, path = "/api/v1/service-accounts/{id}", tag = "service accounts",
    params(("id" = String, Path, description = "id or client id")),
    responses(
        (status = 200, description = "OK", body = AccountView,
            headers(("ETag" = String, description = "the account's version, for If-Match"))),
        Problems<{ NOT_FOUND }>,
    ),
    security(("bearer" = [])))]
pub async fn get_account(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgRead>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Tagged, ApiError> {
    let a = state
        .db
        .find_account(Some(caller.org()), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(tagged(&a, caller.now()))
}

/// Change name, description, roles, allowed IPs or expiry. Only the
/// fields sent change; with `If-Match` (an ETag from GET), only if the
/// account is still at that version (else 412).
#[utoipa::path(patch, path = "/api/v1/service-accounts/{id}", tag = "service accounts", request_body = AccountPatch,
    params(
        ("id" = String, Path, description = "id or client id"),
        ("If-Match" = Option<String>, Header, description = "an ETag from GET: change only that version"),
    ),
    responses(
        (status = 200, description = "OK", body = AccountView,
            headers(("ETag" = String, description = "the account's new version"))),
        Problems<{ NOT_FOUND | CONFLICT | PRECONDITION | BODY }>,
    ),
    security(("bearer" = [])))]
pub async fn patch_account(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
    Path(IdPath { id }): Path<IdPath>,
    headers: HeaderMap,
    ApiJson(mut patch): ApiJson<AccountPatch>,
) -> Result<Tagged, ApiError> {
    patch.if_version = super::if_match(&headers)?;
    let a = accounts::update(&caller.scope(&state.db), &id, patch).await?;
    Ok(tagged(&a, caller.now()))
}

/// Delete (tombstone) a service account: it can never authenticate again
/// but stays readable with `include=deleted`.
#[utoipa::path(delete, path = "/api/v1/service-accounts/{id}", tag = "service accounts",
    params(("id" = String, Path, description = "id or client id")),
    responses(
        (status = 200, description = "OK", body = AccountView),
        Problems<{ NOT_FOUND | CONFLICT }>,
    ),
    security(("bearer" = [])))]
pub async fn delete_account(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<AccountView>, ApiError> {
    let a = accounts::delete(&caller.scope(&state.db), &id).await?;
    Ok(view(&a, caller.now()))
}

/// Tear down a credential service account's OAuth client (same effect as
/// deleting the account).
#[utoipa::path(delete, path = "/api/v1/oauth/clients/{id}", tag = "service accounts",
    params(("id" = String, Path, description = "id or client id of a credential account")),
    responses(
        (status = 200, description = "OK", body = AccountView),
        Problems<{ NOT_FOUND | CONFLICT }>,
    ),
    security(("bearer" = [])))]
pub async fn delete_oauth_client(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<AccountView>, ApiError> {
    match state.db.find_account(Some(caller.org()), &id).await? {
        Some(a) if a.kind == AccountKind::Credential => {}
        _ => return Err(ApiError::NotFound),
    }
    let a = accounts::delete(&caller.scope(&state.db), &id).await?;
    Ok(view(&a, caller.now()))
}

/// Disable: tokens stop working at once; enable brings unexpired ones back.
#[utoipa::path(post, path = "/api/v1/service-accounts/{id}/disable", tag = "service accounts",
    params(("id" = String, Path, description = "id or client id")),
    responses(
        (status = 200, description = "OK", body = AccountView),
        Problems<{ NOT_FOUND | CONFLICT }>,
    ),
    security(("bearer" = [])))]
pub async fn disable_account(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<AccountView>, ApiError> {
    let a = accounts::set_status(&caller.scope(&state.db), &id, Status::Disabled).await?;
    Ok(view(&a, caller.now()))
}

#[utoipa::path(post, path = "/api/v1/service-accounts/{id}/enable", tag = "service accounts",
    params(("id" = String, Path, description = "id or client id")),
    responses(
        (status = 200, description = "OK", body = AccountView),
        Problems<{ NOT_FOUND | CONFLICT }>,
    ),
    security(("bearer" = [])))]
pub async fn enable_account(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<AccountView>, ApiError> {
    let a = accounts::set_status(&caller.scope(&state.db), &id, Status::Active).await?;
    Ok(view(&a, caller.now()))
}
