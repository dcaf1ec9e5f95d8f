"""The one token verifier, for a Supabase project and for the embedded issuer alike.

Only the :class:`~voco.auth.keys.KeySource` differs between the two modes (JWKS
over HTTP, or the local key file), so there is no second code path to get
wrong. Order of checks: size, header shape, algorithm (from the key, see
:mod:`voco.auth.keys`), signature, then the claim rules of
:func:`~voco.auth.claims.check_claims`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt

from voco.auth.claims import (
    ACCEPTED_ROLES,
    LEEWAY_S,
    MAX_TOKEN_BYTES,
    AuthError,
    Principal,
    check_claims,
)
from voco.auth.keys import ASYMMETRIC_ALGS, KeySource

MIN_HS_SECRET_BYTES = 32
_SIGNATURE_ONLY = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
}


class Verifier:
    """``await verify(token) -> Principal`` or :class:`AuthError` (close 4401).

    ``hs_secret`` enables the legacy Supabase shared secret (HS256); without it
    an HS256 token is refused whatever its ``kid`` says, and with it an HS256
    token is checked against that secret only — never against a public key.
    """

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        hs_secret: str | bytes | None = None,
        clock: Callable[[], float] = time.time,
        leeway_s: float = LEEWAY_S,
        roles: frozenset[str] = ACCEPTED_ROLES,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self._hs = hs_secret.encode() if isinstance(hs_secret, str) else hs_secret
        self._clock = clock
        self._leeway = leeway_s
        self._roles = roles

    async def verify(self, token: str | None) -> Principal:
        if not token:
            raise AuthError("no access token: send 'token' in session.start or a Bearer header")
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthError(f"access token too large (over {MAX_TOKEN_BYTES} bytes)")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid access token: not a JWT ({exc})") from exc
        alg = header.get("alg")
        key: Any
        if alg == "HS256":
            if self._hs is None:
                raise AuthError("HS256 access tokens are not accepted here (no shared secret)")
            key = self._hs
        elif alg in ASYMMETRIC_ALGS:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise AuthError(f"{alg} access token has no 'kid' header")
            vk = await self.keys.key_for(kid)
            if vk.alg != alg:
                raise AuthError(f"access token alg {alg} does not match its key ({vk.alg})")
            key = vk.key
        else:
            raise AuthError(f"access token algorithm {str(alg)[:20]!r} is not accepted")
        try:
            claims = jwt.decode(token, key, algorithms=[alg], options=_SIGNATURE_ONLY)  # type: ignore[arg-type]
        except jwt.InvalidSignatureError as exc:
            raise AuthError("access token signature does not verify") from exc
        except jwt.PyJWTError as exc:  # includes InvalidKeyError, not an InvalidTokenError
            raise AuthError(f"invalid access token: {exc}") from exc
        return check_claims(
            claims, issuer=self.issuer, now=self._clock(), leeway_s=self._leeway, roles=self._roles
        )

    def weaknesses(self) -> list[str]:
        """Configuration that makes tokens forgeable or keys exposed (for ``voco admin
        controls``); empty when nothing is weak."""
        out = list(self.keys.weaknesses())
        if self._hs is not None and len(self._hs) < MIN_HS_SECRET_BYTES:
            out.append(
                f"legacy HS256 secret is {len(self._hs)} bytes; at least "
                f"{MIN_HS_SECRET_BYTES} are needed against brute force"
            )
        return out

    async def warmup(self) -> str | None:
        """Prefetch keys; returns what is wrong with the key source, if anything."""
        return await self.keys.warmup()

    def public_jwks(self) -> dict[str, Any] | None:
        """The JWKS the engine serves at ``/auth/v1/.well-known/jwks.json`` (local mode)."""
        return self.keys.public_jwks()

    def issue(
        self,
        user_id: str,
        *,
        project_id: str | None = None,
        org_id: str | None = None,
        ttl_s: int = 3600,
    ) -> str:
        """Only the embedded issuer can mint tokens; Supabase users get them from Supabase."""
        raise AuthError(
            "this engine verifies Supabase tokens and cannot issue them; sign in through "
            "Supabase Auth to get an access token"
        )

    async def aclose(self) -> None:
        await self.keys.aclose()
