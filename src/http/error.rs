//! Error responses: RFC 6749 §5.2 JSON for OAuth endpoints, RFC 9457
//! problem documents elsewhere. Status codes are chosen here and only here.
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

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

/// `Cache-Control: no-store` and `Pragma: no-cache`, for token responses.
pub fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// An RFC 9457 problem document.
pub fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body =
        json!({"type": "about:blank", "title": title, "status": status.as_u16(), "detail": detail});
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}
