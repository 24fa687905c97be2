"""Get a warden access token from a script with `requests`, and refresh it.

    WARDEN_URL=http://127.0.0.1:8080 WARDEN_CLIENT_ID=arm_sa_... \
    WARDEN_CLIENT_SECRET=arm_sk_... python3 get_token.py
"""
import os

import requests

base = os.environ.get("WARDEN_URL", "http://127.0.0.1:8080")
auth = (os.environ["WARDEN_CLIENT_ID"], os.environ["WARDEN_CLIENT_SECRET"])

# client_credentials with HTTP Basic (client_secret_basic).
r = requests.post(
    f"{base}/oauth/token",
    auth=auth,
    data={"grant_type": "client_credentials", "scope": "invoices:read"},
    timeout=10,
)
if r.status_code != 200:
    # RFC 6749 errors: {"error": "...", "error_description": "..."}
    raise SystemExit(f"token request failed: {r.status_code} {r.json()}")
tokens = r.json()
print("scope:", tokens["scope"], "expires_in:", tokens["expires_in"])

# Call your API with it.
headers = {"Authorization": f"Bearer {tokens['access_token']}"}

# Before it expires, rotate: the old refresh token is spent by this call.
r = requests.post(
    f"{base}/oauth/token",
    auth=auth,
    data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    timeout=10,
)
r.raise_for_status()
tokens = r.json()  # keep the *new* refresh_token
print("refreshed; new token type:", tokens["token_type"])
