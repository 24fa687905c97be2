//! Error responses: RFC 6749 §5.2 JSON for OAuth endpoints, RFC 9457
//! problem documents elsewhere (the admin API's `ApiError`). Status codes
//! are chosen here and only here.
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::manage::ManageError;
use crate::oauth::OAuthError;

impl OAuthError {
    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidClient { .. } | Self::NotAResourceServer => StatusCode::UNAUTHORIZED,
            Self::AccessDenied(_) => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::InvalidRequest(_)
            | Self::InvalidGrant(_)
            | Self::UnsupportedGrantType
            | Self::InvalidScope(_)
            | Self::InvalidTarget(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// The RFC 6749 §5.2 error body.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct OAuthErrorBody {
    pub error: String,
    pub error_description: String,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        // Descriptions are fixed text or validated input; strip control
        // characters anyway so nothing can split a header or a log line.
        let description: String = self
            .description()
            .chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect();
        let body = json!(OAuthErrorBody {
            error: self.code().into(),
            error_description: description.clone()
        });
        let mut res = (self.status(), no_store(), axum::Json(body)).into_response();
        res.extensions_mut().insert(super::observe::Refusal {
            reason: description,
            ..Default::default()
        });
        let h = res.headers_mut();
        if let Self::InvalidClient { .. } | Self::NotAResourceServer = self {
            // RFC 6749 §5.2 requires it when Basic was attempted; RFC 9110
            // requires a challenge on every 401, so it is always sent.
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"warden\", charset=\"UTF-8\""),
            );
        }
        match self {
            Self::TemporarilyUnavailable => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::TooManyAttempts(secs) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            _ => {}
        }
        res
    }
}

/// An OAuth endpoint's answer: the value as JSON, never cached, or the
/// error, with who was refused (`seen`) for the observe layer's log line.
pub fn oauth_answer<T: serde::Serialize>(
    result: Result<T, OAuthError>,
    seen: super::observe::Refusal,
) -> Response {
    match result {
        Ok(v) => (no_store(), axum::Json(v)).into_response(),
        Err(e) => {
            let mut res = e.into_response();
            if let Some(r) = res.extensions_mut().get_mut::<super::observe::Refusal>() {
                r.client_id = seen.client_id;
                r.ip = seen.ip;
            }
            res
        }
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, for token responses.
pub fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// An RFC 9457 problem document: the one builder, for the admin API's
/// errors and the router's 404 alike. The detail is cut to 500 printable
/// characters; the answer carries the `Refusal` the observe layer logs.
pub fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    problem_with_field(status, title, detail, None)
}

fn problem_with_field(
    status: StatusCode,
    title: &str,
    detail: &str,
    field: Option<String>,
) -> Response {
    let detail: String = detail
        .chars()
        .filter(|c| !c.is_control())
        .take(500)
        .collect();
    let body = Problem {
        kind: "about:blank".into(),
        title: title.into(),
        status: status.as_u16(),
        detail: detail.clone(),
        field,
    };
    let mut res = (status, axum::Json(json!(body))).into_response();
    res.extensions_mut().insert(super::observe::Refusal {
        reason: detail,
        ..Default::default()
    });
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
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
    /// A valid token of this server for another audience: 401 saying how
    /// to ask for one for the admin API (its `resource`, the issuer).
    WrongAudience {
        issuer: String,
    },
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
        let hinted = matches!(self, Self::WrongAudience { .. });
        let (status, title, detail, field) = self.parts();
        let mut res = problem_with_field(status, title, &detail, field);
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: error_description is printable ASCII without
            // `"` or `\`; anything else in it is dropped.
            let challenge = if hinted {
                let d: String = detail
                    .chars()
                    .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
                    .collect();
                format!("Bearer error=\"invalid_token\", error_description=\"{d}\"")
            } else {
                "Bearer error=\"invalid_token\"".to_owned()
            };
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                h.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        res
    }
}

impl ApiError {
    /// Status, title, detail and the field at fault: the one place an
    /// admin error's status is chosen.
    fn parts(self) -> (StatusCode, &'static str, String, Option<String>) {
        match self {
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "a valid bearer token for this API is required".to_owned(),
                None,
            ),
            Self::WrongAudience { issuer } => (
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                format!(
                    "this token is for another audience; ask the token endpoint for one with resource={issuer}"
                ),
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
        }
    }
}

impl ApiError {
    /// A field (or query parameter) failed validation: 422 naming it.
    pub fn invalid(field: &str, detail: &str) -> Self {
        Self::Invalid {
            field: field.into(),
            detail: detail.into(),
        }
    }
}

impl From<ManageError> for ApiError {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::Invalid(f) => Self::Invalid {
                field: f.field.into(),
                detail: f.reason,
            },
            ManageError::NotFound
            | ManageError::RoleNotFound
            | ManageError::CredentialNotFound
            | ManageError::MemberNotFound => Self::NotFound,
            ManageError::Conflict(m) => Self::Conflict(m),
            ManageError::Forbidden(m) => Self::Forbidden(m),
            ManageError::Db(d) => d.into(),
            ManageError::Hash => Self::Internal,
            ManageError::Busy => Self::Unavailable,
            ManageError::PreconditionFailed => Self::PreconditionFailed,
        }
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        if let crate::db::DbError::Conflict(m) = e {
            return Self::Conflict(m);
        }
        if e.is_transient() {
            tracing::warn!(error = %e, "database unavailable; answering 503");
            Self::Unavailable
        } else {
            tracing::error!(error = %e, "database error");
            Self::Internal
        }
    }
}
