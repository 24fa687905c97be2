"""An MCP agent made with the official Python SDK (PyPI `mcp`), as docs/mcp.md
configures one: its machine-to-machine providers discover warden from the
MCP server's RFC 9728 document and get a token by client_credentials.

    python3 mcp_agent.py METHOD MCP_URL [CALLS]

METHOD: secret-basic | secret-post | private-key-jwt. Environment:
WARDEN_ISSUER (the issuer the credentials belong to), CLIENT_ID, and
CLIENT_SECRET or PRIVATE_KEY_PEM (ES256). Calls the `whoami` tool CALLS
times (default 1), printing each result as a JSON line and reading a line
from stdin between calls; on an error prints {"error": ...} and exits 1.
"""

import asyncio
import json
import os
import sys

import httpx2
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client


class MemoryStorage:
    """Tokens kept for the life of the process."""

    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


def provider(method, url):
    issuer = os.environ["WARDEN_ISSUER"]
    client_id = os.environ["CLIENT_ID"]
    if method == "private-key-jwt":
        signed = SignedJWTParameters(
            issuer=client_id,
            subject=client_id,
            signing_key=os.environ["PRIVATE_KEY_PEM"],
            signing_algorithm="ES256",
        )
        return PrivateKeyJWTOAuthProvider(
            server_url=url,
            storage=MemoryStorage(),
            client_id=client_id,
            assertion_provider=signed.create_assertion_provider(),
            issuer=issuer,
        )
    return ClientCredentialsOAuthProvider(
        server_url=url,
        storage=MemoryStorage(),
        client_id=client_id,
        client_secret=os.environ["CLIENT_SECRET"],
        token_endpoint_auth_method=(
            "client_secret_post" if method == "secret-post" else "client_secret_basic"
        ),
        issuer=issuer,
    )


async def main(method, url, calls):
    auth = provider(method, url)
    async with httpx2.AsyncClient(auth=auth, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                await session.initialize()
                for i in range(calls):
                    if i > 0:
                        await asyncio.to_thread(sys.stdin.readline)
                    result = await session.call_tool("whoami", {})
                    if result.is_error:
                        raise RuntimeError(f"tool error: {result.content}")
                    text = result.content[0].text
                    print(json.dumps({"result": json.loads(text)}), flush=True)


def first_error(e):
    """The innermost message of an exception group (anyio wraps them)."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    return f"{type(e).__name__}: {e}"


if __name__ == "__main__":
    method, url = sys.argv[1], sys.argv[2]
    calls = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    try:
        asyncio.run(main(method, url, calls))
    except BaseException as e:  # noqa: BLE001 - reported to the test, then exit 1
        print(json.dumps({"error": first_error(e)}), flush=True)
        sys.exit(1)
