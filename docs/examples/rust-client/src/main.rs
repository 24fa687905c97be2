//! Get a warden access token with the `oauth2` crate (client credentials,
//! then a refresh).
//!
//!     WARDEN_URL=http://127.0.0.1:8080 WARDEN_CLIENT_ID=arm_sa_... \
//!     WARDEN_CLIENT_SECRET=arm_sk_... cargo run
use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::var("WARDEN_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let client = BasicClient::new(ClientId::new(std::env::var("WARDEN_CLIENT_ID")?))
        .set_client_secret(ClientSecret::new(std::env::var("WARDEN_CLIENT_SECRET")?))
        .set_token_uri(TokenUrl::new(format!("{base}/oauth/token"))?);
    // Token endpoints must not be followed through redirects.
    let http = oauth2::reqwest::ClientBuilder::new()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()?;

    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("invoices:read".into()))
        .request_async(&http)
        .await?;
    println!("expires in {:?}, scopes {:?}", token.expires_in(), token.scopes());
    let bearer = token.access_token().secret(); // send as `Authorization: Bearer …`
    assert!(!bearer.is_empty());

    // Rotate before expiry; keep the new refresh token.
    let refresh = token.refresh_token().ok_or("no refresh token")?;
    let renewed = client.exchange_refresh_token(refresh).request_async(&http).await?;
    println!("refreshed, expires in {:?}", renewed.expires_in());
    Ok(())
}
