"""What a verified access token means: the claim rules and the :class:`Principal`.

Pure on purpose (no keys, no I/O, the clock passed in): every rule a Supabase
access token must satisfy lives here once, so the Supabase and the embedded
verifiers cannot drift apart, and time-dependent cases (expired, not yet valid)
are tested with an injected ``now`` instead of sleeps.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

AUDIENCE = "authenticated"
ACCEPTED_ROLES = frozenset({"authenticated"})
LEEWAY_S = 30.0  # clock skew between the token issuer and us
MAX_TOKEN_BYTES = 8192
# Fixed namespace so ``voco token --user me`` maps "me" to the same UUID on every machine.
VOCO_USER_NAMESPACE = uuid.UUID("6f1c3b1e-5d0a-4c8e-9a57-0e6f4b7d2c11")


class AuthError(Exception):
    """The token is missing, malformed, expired or not ours (protocol close 4401).

    The message is shown to the client, so it says what is wrong with the token
    and never echoes key material.
    """


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for.

    ``user_id`` is the canonical UUID of ``sub`` (what ``auth.uid()`` returns in
    Postgres); ``org_id``/``project_id`` come only from claims the user cannot
    edit (top level or ``app_metadata``, never ``user_metadata``).
    """

    user_id: str
    project_id: str | None
    claims: dict[str, Any] = field(repr=False)
    org_id: str | None = None
    role: str = "authenticated"


def user_uuid(name: str) -> str:
    """The ``sub`` for a user given by name: itself if it is a UUID, else uuid5 of it.

    Lets ``voco token --user alice`` (and tests' ``engine.token("alice")``) keep
    working while every token carries the UUID ``sub`` Supabase would.
    """
    try:
        return _canonical_uuid(name)
    except ValueError:
        return str(uuid.uuid5(VOCO_USER_NAMESPACE, name))


def _canonical_uuid(text: str) -> str:
    """``text`` as a lower-case hyphenated UUID, refusing braces/URN/hex-only forms."""
    canon = str(uuid.UUID(text))
    if canon != text.lower():
        raise ValueError(f"not a canonical UUID: {text!r}")
    return canon


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    v = claims.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise AuthError(f"access token claim '{name}' must be a number (seconds since epoch)")
    return float(v)


def _claim_str(claims: Mapping[str, Any], name: str) -> str | None:
    """A string claim from the top level, else from ``app_metadata`` (both
    server-controlled in Supabase; ``user_metadata`` is user-editable, so never)."""
    v = claims.get(name)
    if v is None:
        meta = claims.get("app_metadata")
        v = meta.get(name) if isinstance(meta, dict) else None
    if v is None:
        return None
    if not isinstance(v, str) or not v:
        raise AuthError(f"access token claim '{name}' must be a non-empty string")
    return v


def check_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    now: float,
    leeway_s: float = LEEWAY_S,
    roles: frozenset[str] = ACCEPTED_ROLES,
) -> Principal:
    """Apply every claim rule to an already signature-checked payload."""
    exp = _number(claims, "exp")
    if exp is None:
        raise AuthError("access token lacks claim 'exp'")
    if now > exp + leeway_s:
        raise AuthError("access token expired")
    nbf = _number(claims, "nbf")
    if nbf is not None and now + leeway_s < nbf:
        raise AuthError("access token is not yet valid (nbf in the future)")
    iat = _number(claims, "iat")
    if iat is not None and now + leeway_s < iat:
        raise AuthError("access token was issued in the future (iat); check the clocks")
    aud = claims.get("aud")
    if aud is None:
        raise AuthError("access token lacks claim 'aud'")
    auds = aud if isinstance(aud, list) else [aud]
    if AUDIENCE not in auds:
        raise AuthError(f"access token audience is not '{AUDIENCE}'")
    iss = claims.get("iss")
    if iss is None:
        raise AuthError("access token lacks claim 'iss'")
    if iss != issuer:
        raise AuthError(f"access token issuer {str(iss)[:80]!r} is not {issuer!r}")
    sub = claims.get("sub")
    if sub is None:
        raise AuthError("access token lacks claim 'sub'")
    if not isinstance(sub, str):
        raise AuthError("access token 'sub' must be a UUID string")
    try:
        user_id = _canonical_uuid(sub)
    except ValueError as exc:
        raise AuthError("access token 'sub' is not a UUID") from exc
    role = claims.get("role")
    if role is None:
        raise AuthError("access token lacks claim 'role'")
    if role not in roles:
        raise AuthError(f"access token role {str(role)[:40]!r} is not accepted here")
    return Principal(
        user_id,
        _claim_str(claims, "project_id"),
        dict(claims),
        org_id=_claim_str(claims, "org_id"),
        role=str(role),
    )
