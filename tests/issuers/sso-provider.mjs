// An OpenID Connect provider for the console's single sign-on tests:
// node-oidc-provider with its built-in login and consent pages (any login
// name, any password), as a company's SSO would be. A person's claims come
// from the login name: "admin-…" is in the group acme-admins, "staff-…" is
// in staff, anyone else in no group; every email is <name>@acme.test and
// verified.
//
//   POST /-/client  {"redirect_uri": …} registers warden's client
//                   (warden-console / console-secret) with that callback
//
// Prints one JSON line, {"issuer": …}, once it listens.
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

let provider;
let issuer;
// The test reads the first line of stdout and then closes it: anything the
// provider logs goes to stderr, so a later write cannot kill the process.
console.log = (...args) => console.error(...args);
process.stdout.on('error', () => {});

function groups(name) {
  if (name.startsWith('admin-')) return ['acme-admins'];
  if (name.startsWith('staff-')) return ['staff'];
  return [];
}

function build(redirectUri) {
  provider = new Provider(issuer, {
    clients: redirectUri ? [{
      client_id: 'warden-console',
      client_secret: 'console-secret',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'client_secret_basic',
    }] : [],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'], profile: ['name'] },
    scopes: ['openid', 'email', 'groups', 'profile'],
    findAccount: (ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, email: `${id}@acme.test`, email_verified: true, groups: groups(id), name: id }),
    }),
    // The ID token carries the claims itself (warden does not call userinfo).
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ['warden-test-cookie-key'] },
  });
  // Development interactions over plain http on loopback.
  provider.proxy = true;
}

function readBody(req) {
  return new Promise((resolve) => {
    let data = '';
    req.on('data', (c) => { data += c; });
    req.on('end', () => resolve(data));
  });
}

const server = createServer(async (req, res) => {
  if (req.url === '/-/client') {
    build(JSON.parse((await readBody(req)) || '{}').redirect_uri);
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end('{}');
  }
  return provider.callback()(req, res);
});

server.listen(0, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  build(null);
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});
