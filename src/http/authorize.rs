//! The authorization endpoint, which refuses every request.
//!
//! warden issues no authorization codes and no implicit tokens: a service
//! account gets its tokens at the token endpoint. The endpoint exists
//! because the official MCP SDKs (TypeScript and Python) validate the
//! RFC 8414 metadata against a schema that requires
//! `authorization_endpoint`, and find no authorization server without it.
//! So the metadata names this endpoint, `response_types_supported` stays
//! `[]`, and the endpoint tells whoever reaches it the truth: RFC 6749
//! §4.1.2.1's `unsupported_response_type`, shown here instead of sent to a
//! `redirect_uri`, since no client may register one to be trusted. Nothing
//! of the request is read, echoed or logged.
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const DESCRIPTION: &str = "this server issues no authorization codes or implicit tokens: \
     a service account gets access tokens from the token endpoint \
     (client_credentials, or a jwt-bearer or token-exchange grant for federated credentials)";

const PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>No authorization here</title></head><body>\
<h1>unsupported_response_type</h1>\
<p>This server issues no authorization codes or implicit tokens: nobody signs in here. \
Service accounts get their access tokens from the token endpoint with the \
<code>client_credentials</code> grant (or, for federated credentials, a \
<code>jwt-bearer</code> or <code>token-exchange</code> grant).</p>\
<p>The server's metadata is at <a href=\"/.well-known/oauth-authorization-server\">\
/.well-known/oauth-authorization-server</a>.</p></body></html>\n";

/// `GET|POST /oauth/authorize`: 400 `unsupported_response_type`, as a
/// page for a browser and as RFC 6749 JSON for anything else.
#[utoipa::path(get, path = "/oauth/authorize", tag = "oauth",
    responses((status = 400, description = "always: unsupported_response_type (warden issues no authorization codes)",
        content_type = "application/json")))]
pub async fn authorize(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(prefers_html);
    let no_store = (header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if wants_html {
        let csp = HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'");
        return (
            StatusCode::BAD_REQUEST,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                no_store,
                (header::CONTENT_SECURITY_POLICY, csp),
            ],
            PAGE,
        )
            .into_response();
    }
    let body = serde_json::json!({
        "error": "unsupported_response_type",
        "error_description": DESCRIPTION,
    });
    (StatusCode::BAD_REQUEST, [no_store], axum::Json(body)).into_response()
}

/// Does an `Accept` header ask for HTML before JSON (a browser does)?
fn prefers_html(accept: &str) -> bool {
    let pos = |what: &str| accept.find(what);
    match (pos("text/html"), pos("application/json")) {
        (Some(h), Some(j)) => h < j,
        (Some(_), None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::prefers_html;

    #[test]
    fn browsers_get_the_page() {
        assert!(prefers_html(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(!prefers_html("application/json"));
        assert!(!prefers_html("application/json, text/html"));
        assert!(!prefers_html("*/*"));
    }
}
