//! What the three OAuth endpoints (token, introspection, revocation) read
//! first, in one extractor: the form, read strictly, and who is calling.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::HeaderMap;

use super::AppState;
use super::form::{client_auth, read_form};
use super::observe::Refusal;
use crate::oauth::OAuthError;
use crate::oauth::client_auth::ClientAuth;

pub type Form = HashMap<String, String>;

/// An OAuth request. A malformed form is not a rejection: it is the
/// request's first error, counted and answered like any other.
pub struct OAuthRequest {
    pub state: Arc<AppState>,
    peer: SocketAddr,
    headers: HeaderMap,
    pub form: Result<Form, OAuthError>,
    /// Who was refused, for the observe layer's log line.
    pub seen: Refusal,
}

impl FromRequest<Arc<AppState>> for OAuthRequest {
    type Rejection = axum::response::Response;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        // Served without the peer's address, no address rule can hold.
        let Some(&ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Err(axum::response::IntoResponse::into_response(
                OAuthError::ServerError,
            ));
        };
        let form = read_form(&parts.headers, &parts.uri, body).await;
        Ok(Self {
            state: state.clone(),
            peer,
            headers: parts.headers,
            form,
            seen: Refusal::default(),
        })
    }
}

impl OAuthRequest {
    /// The form, or the error reading it (taken once).
    pub fn take_form(&mut self) -> Result<Form, OAuthError> {
        std::mem::replace(&mut self.form, Ok(Form::new()))
    }

    /// The client's authentication (HTTP Basic, the form's secret, or a
    /// client assertion: `private_key_jwt`) and the address it comes from,
    /// both also noted in `seen`.
    pub fn identify_client(
        &mut self,
        form: &Form,
    ) -> Result<(ClientAuth, Option<IpAddr>), OAuthError> {
        let ip = super::client_address(&self.state, self.peer, &self.headers);
        self.seen.ip = ip;
        let auth = client_auth(&self.headers, form)?;
        self.seen.client_id = auth.shown_id();
        Ok((auth, ip))
    }

    /// For the federated grants, which take no client authentication (the
    /// external token is the credential): the address, after refusing a
    /// secret or an assertion sent anyway. A `client_id` alone may come.
    pub fn identify_federated(&mut self, form: &Form) -> Result<Option<IpAddr>, OAuthError> {
        let ip = super::client_address(&self.state, self.peer, &self.headers);
        self.seen.ip = ip;
        let authenticates = self.headers.contains_key(axum::http::header::AUTHORIZATION)
            || ["client_secret", "client_assertion", "client_assertion_type"]
                .iter()
                .any(|k| form.contains_key(*k));
        if authenticates {
            return Err(OAuthError::InvalidRequest(
                "this grant takes no client authentication: the external token is the credential"
                    .into(),
            ));
        }
        self.seen.client_id = form
            .get("client_id")
            .and_then(|c| crate::oauth::client_auth::shown_client_id(c));
        Ok(ip)
    }
}
