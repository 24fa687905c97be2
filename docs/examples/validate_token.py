"""Validate a warden access token in a Python resource server.

    WARDEN_URL=http://127.0.0.1:8080 AUDIENCE=https://api.example.com \
    RS_CLIENT_ID=arm_rs_... RS_CLIENT_SECRET=arm_sk_... \
    python3 validate_token.py "$TOKEN" 203.0.113.7
"""
import os
import sys

import jwt  # PyJWT[crypto]
import requests

WARDEN = os.environ.get("WARDEN_URL", "http://127.0.0.1:8080")
AUDIENCE = os.environ.get("AUDIENCE", "https://api.example.com")
jwks = jwt.PyJWKClient(f"{WARDEN}/.well-known/jwks.json", cache_keys=True, lifespan=300)


def validate_offline(token):
    """Fast path: signature and claims, no call to warden."""
    if jwt.get_unverified_header(token).get("typ") != "at+jwt":
        raise jwt.InvalidTokenError("not an access token")
    key = jwks.get_signing_key_from_jwt(token).key
    return jwt.decode(
        token, key, algorithms=["ES256", "EdDSA"], audience=AUDIENCE, issuer=WARDEN, leeway=30,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )


def validate_live(token, client_ip):
    """Live path: warden rechecks the account on every call."""
    r = requests.post(
        f"{WARDEN}/oauth/introspect",
        auth=(os.environ["RS_CLIENT_ID"], os.environ["RS_CLIENT_SECRET"]),
        data={"token": token, "source_ip": client_ip},
        timeout=5,
    )
    r.raise_for_status()
    claims = r.json()
    if not claims["active"]:
        raise PermissionError("token inactive")
    return claims


token, client_ip = sys.argv[1], sys.argv[2]
print("offline:", validate_offline(token)["scope"])
print("live:   ", validate_live(token, client_ip)["scope"])
