"""The legacy Supabase shared secret (HS256): accepted only where configured,
and a short one is reported as a weakness for ``voco admin controls``."""

from __future__ import annotations

import jwt
import pytest

from tests.auth.conftest import ManualClock
from tests.auth.doubles import JwksDouble
from voco.auth import AuthError, supabase_verifier

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]
SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"


async def test_hs256_with_the_configured_secret(double: JwksDouble, mono: ManualClock) -> None:
    v = supabase_verifier(double.url, SECRET, monotonic=mono)
    try:
        p = await v.verify(jwt.encode(double.claims(), SECRET, algorithm="HS256"))
        assert p.role == "authenticated"
        # a kid in the header does not send an HS token to the JWKS
        tok = jwt.encode(double.claims(), SECRET, algorithm="HS256", headers={"kid": "legacy"})
        assert await v.verify(tok)
        assert double.requests == 0
        with pytest.raises(AuthError, match="signature"):
            await v.verify(jwt.encode(double.claims(), "another-" + SECRET, algorithm="HS256"))
        with pytest.raises(AuthError, match="issuer"):
            await v.verify(jwt.encode(double.claims(iss="x"), SECRET, algorithm="HS256"))
        assert v.weaknesses() == []
    finally:
        await v.aclose()


async def test_hs256_refused_without_a_secret(double: JwksDouble, verifier) -> None:
    with pytest.raises(AuthError, match="HS256 access tokens are not accepted"):
        await verifier.verify(jwt.encode(double.claims(), SECRET, algorithm="HS256"))


async def test_short_secret_is_a_weakness(double: JwksDouble, mono: ManualClock) -> None:
    v = supabase_verifier(double.url, "short", monotonic=mono)
    try:
        (w,) = v.weaknesses()
        assert "5 bytes" in w and "32" in w
    finally:
        await v.aclose()


async def test_plain_http_jwks_off_loopback_is_a_weakness() -> None:
    v = supabase_verifier("http://auth.example.com")
    try:
        assert any("plain HTTP" in w for w in v.weaknesses())
    finally:
        await v.aclose()
    v = supabase_verifier("https://abc.supabase.co", SECRET)
    try:
        assert v.weaknesses() == []
    finally:
        await v.aclose()
