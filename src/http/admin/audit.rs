//! `/api/v1/audit-events`: the org's audit log.
use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use serde::Serialize;
use utoipa::ToSchema;

use super::query::{bad_cursor, list_query, next_cursor};
use super::{AdminCaller, ApiError, AuditRead};
use crate::db::audit::{AuditEvent, AuditQuery, AuditRow};
use crate::http::AppState;
use crate::http::openapi::{Problems, QUERY};

/// One event of the audit log, as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct AuditEventView {
    /// Increases with every event; the log's order.
    pub id: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
}

impl From<AuditRow> for AuditEventView {
    fn from(AuditRow { id, event }: AuditRow) -> Self {
        Self { id, event }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEventView>,
    pub next_cursor: Option<String>,
}

fn parse_time(field: &str, v: &str) -> Result<i64, ApiError> {
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            ApiError::invalid(
                field,
                "must be an RFC 3339 time such as 2026-11-24T10:00:00Z",
            )
        })
}

/// The organization's audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit-events", tag = "audit",
    params(
        ("actor" = Option<String>, Query, description = "acting principal id"),
        ("target" = Option<String>, Query, description = "target id"),
        ("action" = Option<String>, Query, description = "e.g. service_account.disabled, token.issued"),
        ("since" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("until" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("limit" = Option<i64>, Query, description = "1 to 500, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "OK", body = AuditPage),
        Problems<{ QUERY }>,
    ),
    security(("bearer" = [])))]
pub async fn list_audit_events(
    State(state): State<Arc<AppState>>,
    caller: AdminCaller<AuditRead>,
    RawQuery(raw): RawQuery,
) -> Result<Json<AuditPage>, ApiError> {
    // Credential events are batched; make this replica's queue visible.
    state.bookkeeper.flush(&state.db).await;
    let mut q = AuditQuery {
        org: caller.org().to_owned(),
        ..Default::default()
    };
    q.limit = list_query(raw.as_deref(), 100, 500, |name, v| {
        if v.len() > 200 {
            return Err(ApiError::invalid(name, "too long"));
        }
        match name {
            "actor" => q.actor = Some(v),
            "target" => q.target = Some(v),
            "action" => q.action = Some(v),
            "since" => q.since = Some(parse_time("since", &v)?),
            "until" => q.until = Some(parse_time("until", &v)?),
            "cursor" => q.before = Some(v.parse::<i64>().map_err(|_| bad_cursor())?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let rows = state.db.query_audit(&q).await?;
    let next_cursor = next_cursor(&rows, q.limit, |r| r.id.to_string());
    Ok(Json(AuditPage {
        items: rows.into_iter().map(AuditEventView::from).collect(),
        next_cursor,
    }))
}
