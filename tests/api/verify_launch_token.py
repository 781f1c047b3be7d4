#!/usr/bin/env python3
"""Verifies a launch token the way an app owner's product would, with PyJWT: an implementation
other than the one that signed it (the service signs with Rust's jsonwebtoken).

Reads one JSON request on stdin:
  {"token": "...", "issuer": "...",
   "jwks_url": "http://.../.well-known/jwks.json"   (EdDSA: the key named by the token's kid)
   | "secret": "..."                                (HS256),
   "audience": "...",   (optional: the audience the product expects)
   "age": 31}           (optional, seconds: checks the expiry as that many seconds from now, so
                         an expired token is tested without waiting for it)
Prints {"ok": true, "header": {...}, "claims": {...}} or {"ok": false, "error": "ExceptionName"}.
"""
import json
import sys

import jwt


def main():
    request = json.load(sys.stdin)
    token = request["token"]
    try:
        if "secret" in request:
            key, algorithms = request["secret"], ["HS256"]
        else:
            # Fetches the JWKS and picks the key of the token's kid, as jose's createRemoteJWKSet.
            client = jwt.PyJWKClient(request["jwks_url"], cache_keys=False)
            key, algorithms = client.get_signing_key_from_jwt(token).key, ["EdDSA"]
        options = {"require": ["iss", "sub", "iat", "nbf", "exp", "jti"]}
        age = request.get("age", 0)
        if age:
            # PyJWT takes no clock: a negative leeway moves its "now" on for the expiry, and the
            # not-before and issued-at checks (which that would move back) are left out.
            options.update(verify_nbf=False, verify_iat=False)
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            issuer=request["issuer"],
            audience=request.get("audience"),
            leeway=-age,
            options=options,
        )
        print(json.dumps({"ok": True, "header": jwt.get_unverified_header(token), "claims": claims}))
    except Exception as refused:  # every refusal is reported by its kind
        print(json.dumps({"ok": False, "error": type(refused).__name__}))


if __name__ == "__main__":
    main()
