// An MCP agent with the official TypeScript SDK (@modelcontextprotocol/sdk):
// it finds warden from the MCP server's RFC 9728 document, gets a token with
// its service account's credentials (client_credentials) and calls a tool.
//
//   WARDEN_ISSUER=… CLIENT_ID=arm_sa_… CLIENT_SECRET=arm_sk_… node mcp_agent.mjs MCP_URL
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const authProvider = new ClientCredentialsProvider({
  clientId: process.env.CLIENT_ID,
  clientSecret: process.env.CLIENT_SECRET,
  // Credentials go only to this authorization server, whatever the MCP
  // server's metadata names.
  expectedIssuer: process.env.WARDEN_ISSUER,
});

const client = new Client({ name: 'nightly-agent', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL(process.argv[2]), { authProvider }));
const result = await client.callTool({ name: 'whoami', arguments: {} });
console.log(result.content[0].text);
await client.close();
