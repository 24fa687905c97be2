// Validate a warden access token in a Node resource server with jose.
//
//   WARDEN_URL=http://127.0.0.1:8080 AUDIENCE=https://api.example.com \
//   RS_CLIENT_ID=arm_rs_... RS_CLIENT_SECRET=arm_sk_... \
//   node validate_token.mjs "$TOKEN" 203.0.113.7
import { createRemoteJWKSet, jwtVerify } from 'jose';

const WARDEN = process.env.WARDEN_URL ?? 'http://127.0.0.1:8080';
const AUDIENCE = process.env.AUDIENCE ?? 'https://api.example.com';
// Caches keys and refetches when it meets an unknown `kid` (key rotation).
const JWKS = createRemoteJWKSet(new URL(`${WARDEN}/.well-known/jwks.json`));

export async function validateOffline(token) {
  const { payload } = await jwtVerify(token, JWKS, {
    issuer: WARDEN,
    audience: AUDIENCE,
    algorithms: ['ES256', 'EdDSA'],
    typ: 'at+jwt',
    clockTolerance: 30,
  });
  return payload;
}

export async function validateLive(token, clientIp) {
  const basic = Buffer.from(`${process.env.RS_CLIENT_ID}:${process.env.RS_CLIENT_SECRET}`).toString('base64');
  const res = await fetch(`${WARDEN}/oauth/introspect`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, source_ip: clientIp }),
  });
  const claims = await res.json();
  if (!res.ok || !claims.active) throw new Error('token inactive');
  return claims;
}

const [token, clientIp] = process.argv.slice(2);
console.log('offline:', (await validateOffline(token)).scope);
console.log('live:   ', (await validateLive(token, clientIp)).scope);
