"""Authentication: Supabase access tokens (JWKS ES256/RS256, legacy HS256) and
the embedded issuer that makes the same tokens locally.

A lower layer: nothing here imports the engine.
"""

from voco.auth.claims import AUDIENCE, AuthError, Principal, check_claims, user_uuid
from voco.auth.jwks import JwksCache, JwksKeySource
from voco.auth.keys import KeySource, LocalKeySource, VerifyKey, public_jwk
from voco.auth.tokens import (
    JWKS_PATH,
    LOCAL_ISSUER,
    TokenAuthority,
    make_verifier,
    state_dir,
    supabase_verifier,
)
from voco.auth.verifier import Verifier

__all__ = [
    "AUDIENCE",
    "JWKS_PATH",
    "LOCAL_ISSUER",
    "AuthError",
    "JwksCache",
    "JwksKeySource",
    "KeySource",
    "LocalKeySource",
    "Principal",
    "TokenAuthority",
    "Verifier",
    "VerifyKey",
    "check_claims",
    "make_verifier",
    "public_jwk",
    "state_dir",
    "supabase_verifier",
    "user_uuid",
]
