// An MCP agent made with the official TypeScript SDK, as docs/mcp.md
// configures one: the SDK's machine-to-machine providers discover warden
// from the MCP server's RFC 9728 document and get a token by
// client_credentials (a secret, Basic or in the body, or private_key_jwt).
//
//   node mcp-agent.mjs keygen                 prints {"public": JWK, "private": JWK, "pem": PKCS#8} (ES256)
//   node mcp-agent.mjs METHOD MCP_URL [CALLS]
//
// METHOD: secret-basic | secret-post | private-key-jwt. Environment:
// WARDEN_ISSUER (expectedIssuer), CLIENT_ID, CLIENT_SECRET or PRIVATE_JWK.
// Calls the `whoami` tool CALLS times (default 1), printing each result
// as a JSON line and reading a line from stdin between calls; on an error
// prints {"error": …} and exits 1.
import { generateKeyPair, exportJWK, exportPKCS8 } from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  ClientCredentialsProvider,
  PrivateKeyJwtProvider,
} from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { createInterface } from 'node:readline';

const [method, url, calls = '1'] = process.argv.slice(2);

if (method === 'keygen') {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = `mcp-${Date.now()}`;
  const pub = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const priv = { ...(await exportJWK(privateKey)), kid, alg: 'ES256' };
  console.log(JSON.stringify({ public: pub, private: priv, pem: await exportPKCS8(privateKey) }));
  process.exit(0);
}

const expectedIssuer = process.env.WARDEN_ISSUER;
const clientId = process.env.CLIENT_ID;
let authProvider;
if (method === 'private-key-jwt') {
  authProvider = new PrivateKeyJwtProvider({
    clientId,
    privateKey: JSON.parse(process.env.PRIVATE_JWK),
    algorithm: 'ES256',
    expectedIssuer,
  });
} else {
  authProvider = new ClientCredentialsProvider({
    clientId,
    clientSecret: process.env.CLIENT_SECRET,
    expectedIssuer,
  });
  if (method === 'secret-post') {
    // The method a registration would have named: the SDK sends the
    // secret in the body instead of Basic.
    authProvider.saveClientInformation({
      ...authProvider.clientInformation(),
      token_endpoint_auth_method: 'client_secret_post',
    });
  }
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const client = new Client({ name: 'warden-test-agent', version: '1.0.0' });
try {
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider }));
  for (let i = 0; i < Number(calls); i++) {
    if (i > 0) await lines.next();
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    if (result.isError) throw new Error(`tool error: ${JSON.stringify(result.content)}`);
    console.log(JSON.stringify({ result: JSON.parse(result.content[0].text) }));
  }
  await client.close();
  process.exit(0);
} catch (e) {
  console.log(JSON.stringify({ error: String(e?.message ?? e) }));
  process.exit(1);
}
