"""Offline validation of warden access tokens with PyJWT, as a Python
resource server would do it. Reads a JSON job on stdin:
  {"jwks_url": ..., "issuer": ..., "audience": ..., "tokens": {"name": "jwt", ...}}
and prints {"name": "ok" | "<error class>"} for each token.
"""
import json
import sys

import jwt  # PyJWT

job = json.load(sys.stdin)
client = jwt.PyJWKClient(job["jwks_url"], cache_keys=True)
out = {}
for name, token in job["tokens"].items():
    try:
        key = client.get_signing_key_from_jwt(token)
        header = jwt.get_unverified_header(token)
        if header.get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
            raise jwt.InvalidTokenError("typ is not at+jwt")
        jwt.decode(
            token,
            key.key,
            algorithms=["ES256", "EdDSA"],
            audience=job["audience"],
            issuer=job["issuer"],
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
        )
        out[name] = "ok"
    except Exception as e:  # every rejection is reported by its class
        out[name] = type(e).__name__
print(json.dumps(out))
