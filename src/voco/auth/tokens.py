"""Supabase access tokens (protocol §2): choosing the mode, and the embedded issuer.

Two modes, one :class:`~voco.auth.verifier.Verifier`:

- **Supabase** (``SUPABASE_URL`` set): keys from the project's JWKS, issuer
  ``$SUPABASE_URL/auth/v1``, plus the legacy HS256 ``SUPABASE_JWT_SECRET`` only
  if configured.
- **Local** (the embedded default): :class:`TokenAuthority` holds an ES256 key
  in ``$VOCO_HOME/auth_signing_key.pem`` (0600), issues tokens shaped exactly
  like Supabase's (``aud``/``role`` ``authenticated``, UUID ``sub``) under the
  fixed issuer :data:`LOCAL_ISSUER`, and verifies them with the same code,
  the key read from the file instead of fetched. A fixed issuer (not one with
  the port in it) keeps tokens valid when the engine moves to another port.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt

from voco.auth.claims import AUDIENCE, AuthError, Principal, user_uuid
from voco.auth.jwks import JwksCache, JwksKeySource
from voco.auth.keys import LocalKeySource
from voco.auth.verifier import Verifier

__all__ = [
    "JWKS_PATH",
    "LOCAL_ISSUER",
    "AuthError",
    "Principal",
    "TokenAuthority",
    "make_verifier",
    "state_dir",
    "supabase_verifier",
]

LOCAL_ISSUER = "urn:voco:local/auth/v1"
JWKS_PATH = "/auth/v1/.well-known/jwks.json"
SIGNING_KEY_FILE = "auth_signing_key.pem"


def state_dir() -> Path:
    return Path(os.environ.get("VOCO_HOME", Path.home() / ".voco"))


class TokenAuthority(Verifier):
    """The embedded issuer: signs ES256 with the local key and verifies like Supabase."""

    def __init__(
        self, key_path: Path | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.source = LocalKeySource(key_path or state_dir() / SIGNING_KEY_FILE)
        super().__init__(self.source, issuer=LOCAL_ISSUER, clock=clock)
        self._now = clock

    def issue(
        self,
        user_id: str,
        *,
        project_id: str | None = None,
        org_id: str | None = None,
        ttl_s: int = 3600,
    ) -> str:
        """An access token for ``user_id`` (a UUID, or a name mapped by :func:`user_uuid`)."""
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        sub = user_uuid(user_id)
        now = int(self._now())
        claims: dict[str, Any] = {
            "iss": LOCAL_ISSUER,
            "sub": sub,
            "aud": AUDIENCE,
            "role": "authenticated",
            "iat": now,
            "exp": now + ttl_s,
        }
        if sub != user_id.lower():
            claims["user_metadata"] = {"name": user_id}
        if project_id:
            claims["project_id"] = project_id
        if org_id:
            claims["org_id"] = org_id
        return jwt.encode(
            claims, self.source.private_key, algorithm="ES256", headers={"kid": self.source.kid}
        )


def supabase_verifier(
    supabase_url: str,
    jwt_secret: str | None = None,
    *,
    client: httpx.AsyncClient | None = None,
    cache: JwksCache | None = None,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> Verifier:
    """The verifier for a Supabase project at ``supabase_url`` (e.g. https://x.supabase.co)."""
    base = supabase_url.rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise AuthError(f"SUPABASE_URL must be an http(s) URL, got {supabase_url[:60]!r}")
    keys = JwksKeySource(base + JWKS_PATH, client=client, cache=cache, monotonic=monotonic)
    return Verifier(keys, issuer=base + "/auth/v1", hs_secret=jwt_secret or None, clock=clock)


def make_verifier(supabase_url: str | None = None, jwt_secret: str | None = None) -> Verifier:
    """Supabase mode when a URL is given, else the embedded issuer in ``$VOCO_HOME``."""
    if supabase_url:
        return supabase_verifier(supabase_url, jwt_secret)
    if jwt_secret:
        raise AuthError("SUPABASE_JWT_SECRET needs SUPABASE_URL (the issuer of those tokens)")
    return TokenAuthority()
