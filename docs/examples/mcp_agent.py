"""An MCP agent with the official Python SDK (PyPI `mcp`, 2.x): it finds
warden from the MCP server's RFC 9728 document, gets a token with its
service account's credentials (client_credentials) and calls a tool.

    WARDEN_ISSUER=... CLIENT_ID=arm_sa_... CLIENT_SECRET=arm_sk_... python3 mcp_agent.py MCP_URL
"""

import asyncio
import os
import sys

import httpx2
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client


class MemoryStorage:
    """Tokens kept for the life of the process (a real agent may persist them)."""

    tokens = client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


async def main(url):
    auth = ClientCredentialsOAuthProvider(
        server_url=url,
        storage=MemoryStorage(),
        client_id=os.environ["CLIENT_ID"],
        client_secret=os.environ["CLIENT_SECRET"],
        # Credentials go only to this authorization server.
        issuer=os.environ["WARDEN_ISSUER"],
    )
    async with httpx2.AsyncClient(auth=auth) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, *_):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("whoami", {})
                print(result.content[0].text)


asyncio.run(main(sys.argv[1]))
