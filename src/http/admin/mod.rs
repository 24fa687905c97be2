//! The admin API (`/api/v1`): warden's own resource server. Callers are
//! service accounts holding `org:manage`, with a bearer token whose `aud`
//! is the issuer URL. Every call is scoped to the caller's org; errors are
//! RFC 9457 problem documents, shaped here and only here.
pub(crate) mod accounts;
mod auth;
pub(crate) mod other;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::FromRequest;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::json;

pub use auth::{AdminCaller, AuditRead, OrgManage, OrgRead};

use crate::app::AppState;
use crate::manage::ManageError;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/api/v1/service-accounts",
            get(accounts::list_accounts).post(accounts::create_account),
        )
        .route(
            "/api/v1/service-accounts/{id}",
            get(accounts::get_account)
                .patch(accounts::patch_account)
                .delete(accounts::delete_account),
        )
        .route(
            "/api/v1/service-accounts/{id}/disable",
            post(accounts::disable_account),
        )
        .route(
            "/api/v1/service-accounts/{id}/enable",
            post(accounts::enable_account),
        )
        .route(
            "/api/v1/service-accounts/{id}/reset-secret",
            post(accounts::reset_secret),
        )
        .route(
            "/api/v1/service-accounts/{id}/rotate-secret",
            post(accounts::rotate_secret),
        )
        .route(
            "/api/v1/service-accounts/{id}/usage",
            get(accounts::account_usage),
        )
        .route(
            "/api/v1/service-accounts/{id}/secrets/{prefix}",
            axum::routing::delete(accounts::revoke_secret),
        )
        .route(
            "/api/v1/oauth/clients/{id}",
            axum::routing::delete(accounts::delete_oauth_client),
        )
        .route(
            "/api/v1/roles",
            get(other::list_roles).post(other::create_role),
        )
        .route("/api/v1/audit-events", get(other::list_audit_events))
}

/// Everything the admin API can answer besides success.
#[derive(Debug)]
pub enum ApiError {
    /// Missing, invalid or inactive bearer token.
    Unauthorized,
    Forbidden(String),
    NotFound,
    Conflict(String),
    /// `If-Match` did not match the resource's current ETag.
    PreconditionFailed,
    /// A field failed validation; names it.
    Invalid {
        field: String,
        detail: String,
    },
    BadRequest(String),
    UnsupportedMediaType,
    PayloadTooLarge,
    Unavailable,
    Internal,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For validation problems: the request field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, title, detail, field) = match self {
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "a valid bearer token for this API is required".to_owned(),
                None,
            ),
            Self::Forbidden(d) => (StatusCode::FORBIDDEN, "Forbidden", d, None),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "Not Found",
                "no such resource in your organization".into(),
                None,
            ),
            Self::Conflict(d) => (StatusCode::CONFLICT, "Conflict", d, None),
            Self::PreconditionFailed => (
                StatusCode::PRECONDITION_FAILED,
                "Precondition Failed",
                "the resource changed since you read it: GET it again and retry with its new ETag"
                    .into(),
                None,
            ),
            Self::Invalid { field, detail } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid field",
                format!("{field}: {detail}"),
                Some(field),
            ),
            Self::BadRequest(d) => (StatusCode::BAD_REQUEST, "Bad Request", d, None),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type",
                "the request body must be application/json".into(),
                None,
            ),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Payload Too Large",
                "request body too large".into(),
                None,
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                "temporarily unavailable; retry".into(),
                None,
            ),
            Self::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
                "internal error".into(),
                None,
            ),
        };
        let detail: String = detail
            .chars()
            .filter(|c| !c.is_control())
            .take(500)
            .collect();
        let body = Problem {
            kind: "about:blank".into(),
            title: title.into(),
            status: status.as_u16(),
            detail,
            field,
        };
        let reason = body.detail.clone();
        let mut res = (status, axum::Json(json!(body))).into_response();
        res.extensions_mut().insert(crate::http::observe::Refusal {
            reason,
            ..Default::default()
        });
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        res
    }
}

impl From<ManageError> for ApiError {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::Invalid(f) => Self::Invalid {
                field: f.field.into(),
                detail: f.reason,
            },
            ManageError::NotFound => Self::NotFound,
            ManageError::Conflict(m) => Self::Conflict(m),
            ManageError::Forbidden(m) => Self::Forbidden(m),
            ManageError::Db(d) => d.into(),
            ManageError::Hash => Self::Internal,
            ManageError::PreconditionFailed => Self::PreconditionFailed,
        }
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        if e.is_transient() {
            tracing::warn!(error = %e, "database unavailable; answering 503");
            Self::Unavailable
        } else {
            tracing::error!(error = %e, "database error");
            Self::Internal
        }
    }
}

/// A JSON body: `application/json`, at most 64 KiB, unknown fields and
/// malformed JSON refused with a message that says what is wrong.
pub struct ApiJson<T>(pub T);

const MAX_JSON_BYTES: usize = 64 * 1024;

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_json_body(req).await?;
        Ok(Self(decode_json(&bytes)?))
    }
}

/// Like `ApiJson`, but an empty body means `T::default()`.
pub struct MaybeJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for MaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, ApiError> {
        let empty = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v == "0")
            || (req.headers().get(header::CONTENT_TYPE).is_none()
                && req.headers().get(header::CONTENT_LENGTH).is_none());
        if empty {
            return Ok(Self(T::default()));
        }
        let bytes = read_json_body(req).await?;
        if bytes.is_empty() {
            return Ok(Self(T::default()));
        }
        Ok(Self(decode_json(&bytes)?))
    }
}

async fn read_json_body(req: axum::extract::Request) -> Result<Bytes, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    axum::body::to_bytes(req.into_body(), MAX_JSON_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)
}

/// A query string's parameters; a repeated one is refused.
pub fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if k.chars().chain(v.chars()).any(char::is_control) {
            return Err(ApiError::BadRequest(format!(
                "query parameter `{}` holds a control character",
                printable(&k)
            )));
        }
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(ApiError::BadRequest(format!(
                "query parameter `{}` is repeated",
                printable(&k)
            )));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}

/// The answer to a query parameter this endpoint does not know.
pub fn unknown_param(name: &str) -> ApiError {
    ApiError::BadRequest(format!("unknown query parameter `{}`", printable(name)))
}

fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(40).collect()
}

/// Decodes a JSON body already read.
pub fn decode_json<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.len() > MAX_JSON_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}
