// An MCP server made with the official TypeScript SDK
// (@modelcontextprotocol/sdk), protected by warden (docs/mcp.md; the
// integration suite runs this file): the SDK's metadata router serves the RFC 9728
// document (built from what warden's
// /api/v1/resource-servers/{id}/protected-resource-metadata answers),
// requireBearerAuth checks each request, and its verifier asks warden's
// introspection endpoint, so the account's live state (disabled, roles
// removed, allowlist) counts on every call.
//
// Environment: WARDEN_ISSUER, PRM (the protected resource metadata JSON,
// from warden), PORT, WARDEN_RS_CLIENT_ID, WARDEN_RS_CLIENT_SECRET,
// REQUIRED_SCOPE. Prints {"url": …} once it listens.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import {
  mcpAuthMetadataRouter,
  getOAuthProtectedResourceMetadataUrl,
} from '@modelcontextprotocol/sdk/server/auth/router.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';

const issuer = process.env.WARDEN_ISSUER;
const prm = JSON.parse(process.env.PRM);
const port = Number(process.env.PORT);
const rsId = process.env.WARDEN_RS_CLIENT_ID;
const rsSecret = process.env.WARDEN_RS_CLIENT_SECRET;
const requiredScope = process.env.REQUIRED_SCOPE;

const oauthMetadata = await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json();
const resourceServerUrl = new URL(prm.resource);

// Live verification: warden's introspection, with this API's own
// credentials and the caller's address as source_ip.
const verifier = {
  async verifyAccessToken(token, sourceIp) {
    const body = new URLSearchParams({ token });
    if (sourceIp) body.set('source_ip', sourceIp);
    const r = await fetch(oauthMetadata.introspection_endpoint, {
      method: 'POST',
      headers: {
        authorization: 'Basic ' + Buffer.from(`${rsId}:${rsSecret}`).toString('base64'),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body,
    });
    const v = await r.json();
    if (!r.ok || !v.active) throw new InvalidTokenError('the token is not active');
    return {
      token,
      clientId: v.client_id,
      scopes: (v.scope || '').split(' ').filter(Boolean),
      expiresAt: v.exp,
      resource: new URL(Array.isArray(v.aud) ? v.aud[0] : v.aud),
    };
  },
};

const app = createMcpExpressApp();
app.use(
  mcpAuthMetadataRouter({
    oauthMetadata,
    resourceServerUrl,
    scopesSupported: prm.scopes_supported,
    resourceName: prm.resource_name,
  }),
);
const auth = (req, res, next) =>
  requireBearerAuth({
    verifier: { verifyAccessToken: (t) => verifier.verifyAccessToken(t, req.socket.remoteAddress) },
    requiredScopes: [requiredScope],
    resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(resourceServerUrl),
    expectedResource: resourceServerUrl,
  })(req, res, next);

function server() {
  const mcp = new McpServer({ name: 'warden-test-mcp', version: '1.0.0' });
  mcp.registerTool('whoami', { description: 'The calling service account' }, async (extra) => ({
    content: [
      {
        type: 'text',
        text: JSON.stringify({ client_id: extra.authInfo?.clientId, scopes: extra.authInfo?.scopes }),
      },
    ],
  }));
  return mcp;
}

// Stateless: a server and a transport per request.
app.post('/mcp', auth, async (req, res) => {
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  const mcp = server();
  res.on('close', () => {
    transport.close();
    mcp.close();
  });
  await mcp.connect(transport);
  await transport.handleRequest(req, res, req.body);
});
app.get('/mcp', (_req, res) => res.status(405).set('allow', 'POST').end());

const listener = app.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${listener.address().port}/mcp` }));
});
