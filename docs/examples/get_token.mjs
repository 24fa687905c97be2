// Get a warden access token with openid-client (v6), using discovery.
//
//   WARDEN_URL=http://127.0.0.1:8080 WARDEN_CLIENT_ID=arm_sa_... \
//   WARDEN_CLIENT_SECRET=arm_sk_... node get_token.mjs
import * as client from 'openid-client';

const issuer = new URL(process.env.WARDEN_URL ?? 'http://127.0.0.1:8080');
const config = await client.discovery(
  issuer,
  process.env.WARDEN_CLIENT_ID,
  process.env.WARDEN_CLIENT_SECRET, // sent as client_secret_post by default
  undefined,
  // Only for a local http:// issuer; never in production.
  issuer.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : undefined,
);

const tokens = await client.clientCredentialsGrant(config, {
  scope: 'invoices:read',
  resource: 'https://api.example.com', // RFC 8707: the API the token is for
});
console.log('scope:', tokens.scope, 'expires_in:', tokens.expires_in);

const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
console.log('refreshed, expires_in:', refreshed.expires_in);
