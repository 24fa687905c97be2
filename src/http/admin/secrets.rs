//! `/api/v1/service-accounts/{id}/…`: an account's secrets (reset,
//! rotate, end one early) and its usage counts.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde::Deserialize;
use utoipa::ToSchema;

use super::accounts::view;
use super::query::{int_param, query_pairs, unknown_param};
use super::{AdminCaller, ApiError, IdPath, MaybeJson, OrgManage, OrgRead, Problem, SecretPath};
use crate::http::AppState;
use crate::http::openapi::{BODY, CONFLICT, NOT_FOUND, Problems, QUERY};
use crate::manage::accounts::{self, AccountView};

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the current secret keeps working, e.g. `24h` (default), at
    /// most `7d`.
    pub grace_period: Option<String>,
}

/// Replace the secret: the old one (and any rotated-out one) stops working
/// at once, refresh tokens issued before are refused. 409 while disabled.
#[utoipa::path(post, path = "/api/v1/service-accounts/{id}/reset-secret", tag = "service accounts",
    params(("id" = String, Path, description = "id or client id")),
    responses(
        (status = 200, description = "OK", body = AccountView),
        Problems<{ NOT_FOUND | CONFLICT }>,
    ),
    security(("bearer" = [])))]
pub async fn reset_secret(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<AccountView>, ApiError> {
    let (a, s) = accounts::reset_secret(&caller.scope(&state.db), &id).await?;
    Ok(Json(AccountView::new(&a, Some(&s), caller.now())))
}

/// Issue a new secret while the current one keeps working for a grace
/// period (default 24 h, at most 7 days).
#[utoipa::path(post, path = "/api/v1/service-accounts/{id}/rotate-secret", tag = "service accounts",
    request_body(content = Option<RotateSecret>, description = "optional"),
    params(("id" = String, Path, description = "id or client id")),
    responses(
        (status = 200, description = "OK", body = AccountView),
        Problems<{ NOT_FOUND | CONFLICT | BODY }>,
    ),
    security(("bearer" = [])))]
pub async fn rotate_secret(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
    Path(IdPath { id }): Path<IdPath>,
    MaybeJson(body): MaybeJson<RotateSecret>,
) -> Result<Json<AccountView>, ApiError> {
    let grace = match body.grace_period.as_deref() {
        None => accounts::DEFAULT_GRACE_SECS,
        Some(g) => humantime::parse_duration(g)
            .map(|d| d.as_secs() as i64)
            .map_err(|_| {
                ApiError::invalid("grace_period", "must be a duration such as 24h or 3d")
            })?,
    };
    let (a, s) = accounts::rotate_secret(&caller.scope(&state.db), &id, grace).await?;
    Ok(Json(AccountView::new(&a, Some(&s), caller.now())))
}

/// End a rotated-out secret's grace period now (by its prefix, as listed
/// in `secrets`). The current secret cannot be revoked this way.
#[utoipa::path(delete, path = "/api/v1/service-accounts/{id}/secrets/{prefix}", tag = "service accounts",
    params(
        ("id" = String, Path, description = "id or client id"),
        ("prefix" = String, Path, description = "the secret's prefix, e.g. arm_sk_abcde"),
    ),
    responses(
        (status = 200, description = "OK", body = AccountView),
        (status = 404, description = "No such account, or no such secret still in its grace period", body = Problem, content_type = "application/problem+json"),
        Problems<{ CONFLICT }>,
    ),
    security(("bearer" = [])))]
pub async fn revoke_secret(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgManage>,
    Path(SecretPath { id, prefix }): Path<SecretPath>,
) -> Result<Json<AccountView>, ApiError> {
    let a = accounts::revoke_secret(&caller.scope(&state.db), &id, &prefix).await?;
    Ok(view(&a, caller.now()))
}

#[derive(serde::Serialize, ToSchema)]
pub struct UsageHour {
    /// Start of the hour, RFC 3339.
    pub hour: String,
    /// Tokens issued by client credentials.
    pub issued: i64,
    /// Tokens issued by refresh.
    pub refreshed: i64,
    /// Failed authentications with this client id.
    pub failed: i64,
}

#[derive(serde::Serialize, ToSchema)]
pub struct UsageView {
    pub id: String,
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
    /// Hours with any use, oldest first.
    pub hours: Vec<UsageHour>,
}

/// Hourly token counts and failed authentications of one account, kept
/// whatever the audit log records (`WARDEN_AUDIT_TOKEN_EVENTS`).
#[utoipa::path(get, path = "/api/v1/service-accounts/{id}/usage", tag = "service accounts",
    params(
        ("id" = String, Path, description = "id or client id"),
        ("hours" = Option<i64>, Query, description = "how far back, 1 to 2232 (93 days); default 24"),
    ),
    responses(
        (status = 200, description = "OK", body = UsageView),
        Problems<{ NOT_FOUND | QUERY }>,
    ),
    security(("bearer" = [])))]
pub async fn account_usage(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<OrgRead>,
    Path(IdPath { id }): Path<IdPath>,
    RawQuery(raw): RawQuery,
) -> Result<Json<UsageView>, ApiError> {
    let mut hours = 24;
    for (k, v) in query_pairs(raw.as_deref())? {
        match k.as_str() {
            "hours" => hours = int_param("hours", &v, 1..=2232)?,
            other => return Err(unknown_param(other)),
        }
    }
    // This replica's queued counts first, so the answer is current here.
    state.bookkeeper.flush(&state.db).await;
    let a = state
        .db
        .find_account(Some(caller.org()), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let now = caller.now();
    let this_hour = now - now.rem_euclid(3600);
    let rows = state
        .db
        .account_usage(&a.id, this_hour - (hours - 1) * 3600)
        .await?;
    let ts = |t: i64| {
        crate::manage::rfc3339(Some(t))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    Ok(Json(UsageView {
        id: a.id.clone(),
        last_used_at: a.last_used_at.map(ts),
        last_used_ip: a.last_used_ip.clone(),
        hours: rows
            .into_iter()
            .map(|(hour, issued, refreshed, failed)| UsageHour {
                hour: ts(hour),
                issued,
                refreshed,
                failed,
            })
            .collect(),
    }))
}
