"""Supabase-style access tokens (protocol §2).

The embedded default signs HS256 with a local secret, the same scheme a
self-hosted Supabase uses (``JWT_SECRET``), so moving to a real project means
pointing the engine at its secret (or, later, its JWKS) — no code change in the
session. Verification is strict: signature, ``aud == "authenticated"``, ``exp``
required and in the future, ``sub`` required; ``alg`` pinned so a token cannot
choose ``none`` or switch algorithms.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

AUDIENCE = "authenticated"
ALGORITHMS = ["HS256"]
MAX_TOKEN_BYTES = 8192


class AuthError(Exception):
    """The token is missing, malformed, expired or not ours (close 4401)."""


@dataclass(frozen=True)
class Principal:
    user_id: str
    project_id: str | None
    claims: dict[str, Any]


def state_dir() -> Path:
    return Path(os.environ.get("VOCO_HOME", Path.home() / ".voco"))


def load_secret() -> str:
    """``VOCO_JWT_SECRET`` if set, else a per-machine secret created on first use
    (mode 0600) so ``voco token`` and ``voco serve`` agree without configuration."""
    env = os.environ.get("VOCO_JWT_SECRET")
    if env:
        return env
    path = state_dir() / "jwt_secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        secret = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret)
        return secret


class TokenAuthority:
    def __init__(self, secret: str | None = None) -> None:
        self._secret = secret or load_secret()

    def issue(self, user_id: str, *, project_id: str | None = None, ttl_s: int = 3600) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": user_id,
            "aud": AUDIENCE,
            "role": "authenticated",
            "iat": now,
            "exp": now + ttl_s,
        }
        if project_id:
            claims["project_id"] = project_id
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str | None) -> Principal:
        if not token:
            raise AuthError("no access token: send 'token' in session.start or a Bearer header")
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthError("access token too large")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=ALGORITHMS,
                audience=AUDIENCE,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("access token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("access token audience is not 'authenticated'") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"access token lacks claim '{exc.claim}'") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid access token: {exc}") from exc
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise AuthError("access token 'sub' must be a non-empty string")
        project = claims.get("project_id")
        return Principal(sub, project if isinstance(project, str) else None, claims)
