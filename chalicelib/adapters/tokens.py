"""Signed access tokens (JWT, HS256, PyJWT)."""

from __future__ import annotations

import time

import jwt

from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.model import Identity, Role

ISSUER = "titan-enrollment"
ALGORITHM = "HS256"


class JwtCodec:
    def __init__(self, secret: str, ttl_seconds: int) -> None:
        if len(secret) < 32:
            raise ValueError("JWT_SECRET must be at least 32 characters")
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def issue(self, identity: Identity) -> str:
        now = int(time.time())
        claims = {
            "sub": str(identity.user_id),
            "role": identity.role.value,
            "username": identity.username,
            "iss": ISSUER,
            "iat": now,
            "exp": now + self.ttl_seconds,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Identity:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["sub", "role", "exp", "iat", "iss"]},
            )
            return Identity(int(claims["sub"]), Role(claims["role"]), str(claims.get("username", "")))
        except jwt.ExpiredSignatureError as error:
            raise Unauthorized("Token has expired", "token_expired") from error
        except (jwt.InvalidTokenError, ValueError, TypeError) as error:
            raise Unauthorized("Token is invalid", "invalid_token") from error
