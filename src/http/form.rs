//! Strict parsing of OAuth requests: form bodies (RFC 6749 §3.2) and client
//! credentials from HTTP Basic or the body (§2.3.1).
use std::collections::HashMap;

use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Uri, header};
use data_encoding::BASE64;

use crate::domain::credentials::{ClientSecret, MAX_CREDENTIAL_LEN};
use crate::oauth::OAuthError;
use crate::oauth::assertion::JWT_BEARER_CLIENT_ASSERTION;
use crate::oauth::client_auth::{ClientAssertion, ClientAuth, ClientCredentials};

/// OAuth requests are small; anything larger is refused unread.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

fn bad(msg: &str) -> OAuthError {
    OAuthError::InvalidRequest(msg.to_owned())
}

/// A parameter the request must carry.
pub fn required<'f>(
    form: &'f HashMap<String, String>,
    name: &str,
) -> Result<&'f String, OAuthError> {
    form.get(name)
        .ok_or_else(|| OAuthError::InvalidRequest(format!("{name} is required")))
}

/// Reads and decodes a form body. Parameters sent without a value count
/// as omitted (§3.1); a repeated parameter is an error (§3.1, §3.2).
pub async fn read_form(
    headers: &HeaderMap,
    uri: &Uri,
    body: Body,
) -> Result<HashMap<String, String>, OAuthError> {
    if uri.query().is_some_and(|q| !q.is_empty()) {
        return Err(bad(
            "parameters must be sent in the request body, not in the URL",
        ));
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(bad(
            "the request body must be application/x-www-form-urlencoded",
        ));
    }
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| OAuthError::PayloadTooLarge)?;
    parse_form(&bytes)
}

/// Decodes a form body already read (at most `MAX_FORM_BYTES`).
pub fn parse_form(bytes: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    if bytes.len() > MAX_FORM_BYTES {
        return Err(OAuthError::PayloadTooLarge);
    }
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(bytes) {
        if v.is_empty() {
            if out.contains_key(k.as_ref()) {
                return Err(repeated(&k));
            }
            continue;
        }
        if out.insert(k.clone().into_owned(), v.into_owned()).is_some() {
            return Err(repeated(&k));
        }
    }
    Ok(out)
}

fn repeated(name: &str) -> OAuthError {
    let printable =
        name.len() <= 40 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if printable {
        bad(&format!("parameter `{name}` is repeated"))
    } else {
        bad("a parameter is repeated")
    }
}

/// How a client authenticates at the token endpoint: a JWT client
/// assertion (`client_assertion_type` and `client_assertion`, RFC 7523
/// §2.2), or a secret (`client_credentials`). One method per request.
pub fn client_auth(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<ClientAuth, OAuthError> {
    let kind = form.get("client_assertion_type");
    let assertion = form.get("client_assertion");
    if kind.is_none() && assertion.is_none() {
        return client_credentials(headers, form).map(ClientAuth::Secret);
    }
    if headers.contains_key(header::AUTHORIZATION) || form.contains_key("client_secret") {
        return Err(bad(
            "use one client authentication method, not a client assertion and a secret together",
        ));
    }
    if kind.map(String::as_str) != Some(JWT_BEARER_CLIENT_ASSERTION) {
        return Err(bad(&format!(
            "client_assertion_type must be {JWT_BEARER_CLIENT_ASSERTION}"
        )));
    }
    let Some(assertion) = assertion else {
        return Err(bad(
            "client_assertion is required with client_assertion_type",
        ));
    };
    let client_id = form.get("client_id").cloned();
    if client_id
        .as_ref()
        .is_some_and(|c| c.len() > MAX_CREDENTIAL_LEN)
    {
        return Err(OAuthError::InvalidClient { basic: false });
    }
    Ok(ClientAuth::Assertion(ClientAssertion::new(
        client_id,
        assertion.clone(),
    )))
}

/// Extracts client credentials from the `Authorization: Basic` header or
/// the body, refusing requests that use both (§2.3).
pub fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<ClientCredentials, OAuthError> {
    let body_id = form.get("client_id");
    let body_secret = form.get("client_secret");
    let creds = match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            if body_secret.is_some() {
                return Err(bad(
                    "use one client authentication method, not Basic and client_secret together",
                ));
            }
            let (id, secret) = parse_basic(value.as_bytes())?;
            if body_id.is_some_and(|b| *b != id) {
                return Err(bad(
                    "client_id in the body does not match the Authorization header",
                ));
            }
            ClientCredentials {
                client_id: id,
                secret: ClientSecret::presented(&secret),
                via_basic: true,
            }
        }
        None => match (body_id, body_secret) {
            (Some(id), Some(secret)) => ClientCredentials {
                client_id: id.clone(),
                secret: ClientSecret::presented(secret),
                via_basic: false,
            },
            _ => return Err(OAuthError::InvalidClient { basic: false }),
        },
    };
    if creds.client_id.len() > MAX_CREDENTIAL_LEN
        || creds.secret.expose().len() > MAX_CREDENTIAL_LEN
    {
        return Err(OAuthError::InvalidClient {
            basic: creds.via_basic,
        });
    }
    Ok(creds)
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`.
pub fn parse_basic(value: &[u8]) -> Result<(String, String), OAuthError> {
    let invalid = || bad("the Authorization header is not valid HTTP Basic credentials");
    let text = std::str::from_utf8(value).map_err(|_| invalid())?.trim();
    let (scheme, encoded) = text.split_once(' ').ok_or_else(invalid)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid());
    }
    if encoded.len() > 4 * MAX_CREDENTIAL_LEN {
        // Well-formed but longer than any credential warden issues.
        return Err(OAuthError::InvalidClient { basic: true });
    }
    let decoded = BASE64
        .decode(encoded.trim().as_bytes())
        .map_err(|_| invalid())?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(invalid)?;
    let id = form_decode(id).ok_or_else(invalid)?;
    let secret = form_decode(secret).ok_or_else(invalid)?;
    if id.is_empty() {
        return Err(OAuthError::InvalidClient { basic: true });
    }
    Ok((id, secret))
}

/// application/x-www-form-urlencoded decoding of one value: `+` is a
/// space, `%XX` a byte; the result must be UTF-8.
fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_basic_per_rfc6749() {
        let enc = BASE64.encode(b"arm_sa_x:a%2Bb+c%3Ad%C3%A9");
        let (id, secret) = parse_basic(format!("Basic {enc}").as_bytes()).unwrap_or_default();
        assert_eq!(id, "arm_sa_x");
        assert_eq!(secret, "a+b c:dé");
        assert!(parse_basic(b"Basic !!!").is_err());
        assert!(parse_basic(format!("Basic {}", BASE64.encode(b"nocolon")).as_bytes()).is_err());
        assert!(parse_basic(format!("Bearer {}", BASE64.encode(b"a:b")).as_bytes()).is_err());
        assert!(parse_basic(format!("Basic {}", BASE64.encode(b"a:%zz")).as_bytes()).is_err());
    }
}
