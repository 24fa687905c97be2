"""An MCP server protected by warden, with the official Python SDK (PyPI `mcp`, 2.x).

The SDK serves the RFC 9728 document at
/.well-known/oauth-protected-resource/mcp, answers 401 with its address,
and asks this verifier about every bearer token; the verifier asks warden's
introspection endpoint, so a disabled account or a removed role stops the
next call. Run it with:

    WARDEN_ISSUER=http://127.0.0.1:8080 MCP_URL=http://127.0.0.1:3001/mcp \
    WARDEN_RS_CLIENT_ID=arm_rs_... WARDEN_RS_CLIENT_SECRET=arm_sk_... \
    python3 mcp_server.py
"""

import asyncio
import base64
import json
import os
import urllib.parse
import urllib.request

import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

ISSUER = os.environ["WARDEN_ISSUER"]
MCP_URL = os.environ["MCP_URL"]  # the audience registered with warden
RS_ID = os.environ["WARDEN_RS_CLIENT_ID"]
RS_SECRET = os.environ["WARDEN_RS_CLIENT_SECRET"]


class WardenIntrospection:
    """A TokenVerifier asking warden (RFC 7662) with this API's own credentials."""

    def _introspect(self, token):
        basic = base64.b64encode(f"{RS_ID}:{RS_SECRET}".encode()).decode()
        req = urllib.request.Request(
            f"{ISSUER}/oauth/introspect",
            data=urllib.parse.urlencode({"token": token}).encode(),
            headers={"Authorization": f"Basic {basic}"},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.load(r)

    async def verify_token(self, token):
        v = await asyncio.to_thread(self._introspect, token)
        if not v.get("active"):
            return None
        aud = v["aud"] if isinstance(v["aud"], list) else [v["aud"]]
        return AccessToken(
            token=token,
            client_id=v["client_id"],
            scopes=v.get("scope", "").split(),
            expires_at=v["exp"],
            resource=aud[0],
            claims={"org": v.get("org")},
        )


mcp = MCPServer(
    "warden-example",
    token_verifier=WardenIntrospection(),
    auth=AuthSettings(
        issuer_url=ISSUER,
        resource_server_url=MCP_URL,
        required_scopes=["mcp:tools:call"],
    ),
)


@mcp.tool()
def whoami() -> str:
    """The calling service account."""
    t = get_access_token()
    return json.dumps({"client_id": t.client_id, "scopes": t.scopes})


if __name__ == "__main__":
    port = urllib.parse.urlparse(MCP_URL).port
    uvicorn.run(mcp.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")
