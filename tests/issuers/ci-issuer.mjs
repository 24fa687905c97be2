// A CI-style token issuer for warden's federation tests: node-oidc-provider
// serving OpenID discovery and its JWKS, issuing JWT access tokens to its
// "workloads" (clients) by client_credentials, each token carrying that
// workload's CI claims (as GitHub Actions puts repository_id and ref in its
// tokens). The test drives it through a few extra routes under /-/:
//
//   POST /-/rotate  a new signing key with a new kid (the old one is gone)
//   POST /-/mint    signs the JSON claims sent with the current key
//                   (iss, iat and exp filled in unless sent; null drops one)
//   POST /-/down    answers 503 to everything until POST /-/up
//   GET  /-/stats   how many discovery and JWKS requests it has served
//
// Prints one JSON line, {"issuer": …}, once it listens.
import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import Provider from 'oidc-provider';

const workloads = [
  {
    client_id: 'repo-app',
    client_secret: 'repo-app-secret',
    ci_claims: { repository: 'acme/app', repository_id: '1001', repository_owner_id: '77', ref: 'refs/heads/main' },
  },
  {
    client_id: 'repo-fork',
    client_secret: 'repo-fork-secret',
    ci_claims: { repository: 'acme/app', repository_id: '2002', repository_owner_id: '88', ref: 'refs/heads/main' },
  },
];

let signing;
function newKey() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  signing = { privateKey, jwk: { ...jwk, kid: randomUUID(), alg: 'ES256', use: 'sig' } };
}

const stats = { discovery: 0, jwks: 0 };
let down = false;
let provider;
let issuer;

function build() {
  provider = new Provider(issuer, {
    clients: workloads.map((w) => ({
      client_id: w.client_id,
      client_secret: w.client_secret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      id_token_signed_response_alg: 'ES256',
      ci_claims: w.ci_claims,
    })),
    extraClientMetadata: { properties: ['ci_claims'] },
    jwks: { keys: [signing.jwk] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => ({
          scope: 'ci',
          audience: resource,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
    extraTokenClaims: (ctx) => ({ ...(ctx.oidc.client?.ci_claims ?? {}) }),
  });
}

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function mint(claims) {
  const now = Math.floor(Date.now() / 1000);
  const body = { iss: issuer, iat: now, exp: now + 300, jti: randomUUID(), ...claims };
  for (const k of Object.keys(body)) if (body[k] === null) delete body[k];
  const header = { alg: 'ES256', typ: 'JWT', kid: signing.jwk.kid };
  const input = `${b64(header)}.${b64(body)}`;
  const sig = sign('sha256', Buffer.from(input), { key: signing.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

function readBody(req) {
  return new Promise((resolve) => {
    let data = '';
    req.on('data', (c) => { data += c; });
    req.on('end', () => resolve(data));
  });
}

const server = createServer(async (req, res) => {
  const path = req.url.split('?')[0];
  const reply = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (path === '/-/up') { down = false; return reply(200, {}); }
  if (path === '/-/down') { down = true; return reply(200, {}); }
  if (path === '/-/stats') return reply(200, stats);
  if (path === '/-/rotate') { newKey(); build(); return reply(200, { kid: signing.jwk.kid }); }
  if (path === '/-/mint') return reply(200, { token: mint(JSON.parse((await readBody(req)) || '{}')) });
  if (down) return reply(503, { error: 'down' });
  if (path === '/.well-known/openid-configuration') stats.discovery += 1;
  if (path === '/jwks') stats.jwks += 1;
  return provider.callback()(req, res);
});

server.listen(0, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  newKey();
  build();
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});
