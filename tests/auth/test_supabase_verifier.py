"""Supabase mode: tokens from a project's JWKS (a real HTTP double on 127.0.0.1).

Each attack is a token the double's keys (or an attacker) could produce; the
verifier must refuse it with an :class:`AuthError` whose message says why.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from tests.auth.conftest import ManualClock
from tests.auth.doubles import JwksDouble
from voco.auth import AuthError, Verifier, supabase_verifier

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    """A JWT assembled byte by byte, so headers PyJWT would refuse to write are possible."""
    head = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode())
    sig = sign(head.encode()) if sign else b""
    return head + "." + b64u(sig)


async def refused(v: Verifier, token: str, fragment: str) -> str:
    with pytest.raises(AuthError) as info:
        await v.verify(token)
    msg = str(info.value)
    assert fragment in msg, msg
    return msg


# ------------------------------------------------------------------- accepted


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
async def test_project_token_is_accepted(double: JwksDouble, verifier: Verifier, alg: str) -> None:
    key = double.add(alg)
    sub = str(uuid.uuid4())
    tok = double.sign(key, sub=sub, app_metadata={"provider": "email", "org_id": "org-1"})
    p = await verifier.verify(tok)
    assert (p.user_id, p.role, p.org_id, p.project_id) == (sub, "authenticated", "org-1", None)
    assert p.claims["email"] == "someone@example.com"


async def test_keys_chosen_by_kid_among_several(double: JwksDouble, verifier: Verifier) -> None:
    keys = [double.add("ES256"), double.add("RS256"), double.add("ES256")]
    for k in keys:
        assert (await verifier.verify(double.sign(k))).role == "authenticated"
    assert double.requests == 1  # one fetch, then the cache


async def test_org_and_project_from_server_side_claims_only(
    double: JwksDouble, verifier: Verifier
) -> None:
    key = double.add()
    top = await verifier.verify(double.sign(key, org_id="o-top", project_id="p-top"))
    assert (top.org_id, top.project_id) == ("o-top", "p-top")
    edited = await verifier.verify(
        double.sign(key, user_metadata={"org_id": "o-forged", "project_id": "p-forged"})
    )
    assert (edited.org_id, edited.project_id) == (None, None)
    await refused(verifier, double.sign(key, org_id=42), "'org_id' must be a non-empty string")


async def test_audience_list_containing_authenticated(double: JwksDouble, verifier: Verifier):
    key = double.add()
    p = await verifier.verify(double.sign(key, aud=["other", "authenticated"]))
    assert p.role == "authenticated"


async def test_sub_is_normalised_to_lower_case(double: JwksDouble, verifier: Verifier) -> None:
    key, sub = double.add(), str(uuid.uuid4())
    assert (await verifier.verify(double.sign(key, sub=sub.upper()))).user_id == sub


# ------------------------------------------------------------- algorithm abuse


async def test_alg_none_is_refused(double: JwksDouble, verifier: Verifier) -> None:
    key = double.add()
    for alg in ("none", "None", "NONE"):
        tok = hand_made({"alg": alg, "typ": "JWT", "kid": key.kid}, double.claims())
        await refused(verifier, tok, "algorithm")


async def test_es256_header_with_empty_signature_is_refused(double: JwksDouble, verifier):
    key = double.add()
    tok = hand_made({"alg": "ES256", "kid": key.kid}, double.claims())
    await refused(verifier, tok, "")


@pytest.mark.parametrize("alg", ["HS384", "HS512", "PS256", "ES384", "ES512", "RS512", "EdDSA"])
async def test_other_algorithms_are_refused(double: JwksDouble, verifier: Verifier, alg: str):
    key = double.add("RS256")
    tok = hand_made({"alg": alg, "kid": key.kid}, double.claims(), lambda m: b"x" * 64)
    await refused(verifier, tok, "is not accepted")


def _hs_signed_with_public_pem(double: JwksDouble, kid: str, pem: bytes) -> str:
    return hand_made(
        {"alg": "HS256", "typ": "JWT", "kid": kid},
        double.claims(),
        lambda m: hmac.new(pem, m, hashlib.sha256).digest(),
    )


async def test_hs_token_signed_with_the_rsa_public_key_is_refused(
    double: JwksDouble, verifier: Verifier
) -> None:
    """Algorithm confusion: the public key's PEM used as an HMAC secret."""
    key = double.add("RS256")
    pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    await refused(verifier, _hs_signed_with_public_pem(double, key.kid, pem), "HS256")
    jwk_json = json.dumps(key.jwk()).encode()  # the JWK text as a secret, same idea
    await refused(verifier, _hs_signed_with_public_pem(double, key.kid, jwk_json), "HS256")


async def test_hs_confusion_refused_even_with_legacy_secret(
    double: JwksDouble, mono: ManualClock
) -> None:
    key = double.add("RS256")
    pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    v = supabase_verifier(double.url, "legacy-" + "s" * 40, monotonic=mono)
    try:
        await refused(v, _hs_signed_with_public_pem(double, key.kid, pem), "signature")
    finally:
        await v.aclose()


async def test_header_alg_must_match_the_keys_type(double: JwksDouble, verifier: Verifier):
    es, rs = double.add("ES256"), double.add("RS256")
    # an RS256 signature presented as the EC key's, and the reverse
    swapped = hand_made({"alg": "RS256", "kid": es.kid}, double.claims(), lambda m: b"\x00" * 256)
    await refused(verifier, swapped, "does not match its key (ES256)")
    swapped = hand_made({"alg": "ES256", "kid": rs.kid}, double.claims(), lambda m: b"\x00" * 64)
    await refused(verifier, swapped, "does not match its key (RS256)")


async def test_asymmetric_token_without_kid_is_refused(double: JwksDouble, verifier):
    import jwt

    key = double.add()
    tok = jwt.encode(double.claims(), key.private, algorithm="ES256")
    await refused(verifier, tok, "no 'kid'")


async def test_tampered_payload_is_refused(double: JwksDouble, verifier: Verifier) -> None:
    key = double.add()
    head, _, sig = double.sign(key).split(".")
    forged = b64u(json.dumps(double.claims(role="service_role")).encode())
    await refused(verifier, f"{head}.{forged}.{sig}", "signature does not verify")


# ---------------------------------------------------------------------- claims


CLAIM_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "expired": ({"exp": int(time.time()) - 120, "iat": int(time.time()) - 900}, "expired"),
    "no_exp": ({"exp": None}, "lacks claim 'exp'"),
    "exp_not_a_number": ({"exp": "tomorrow"}, "'exp' must be a number"),
    "not_yet_valid": ({"nbf": int(time.time()) + 600}, "not yet valid"),
    "issued_in_future": ({"iat": int(time.time()) + 600}, "issued in the future"),
    "wrong_aud": ({"aud": "anon"}, "audience"),
    "no_aud": ({"aud": None}, "lacks claim 'aud'"),
    "wrong_iss": ({"iss": "https://evil.supabase.co/auth/v1"}, "issuer"),
    "no_iss": ({"iss": None}, "lacks claim 'iss'"),
    "no_sub": ({"sub": None}, "lacks claim 'sub'"),
    "non_uuid_sub": ({"sub": "alice"}, "not a UUID"),
    "braced_uuid_sub": ({"sub": "{" + str(uuid.uuid4()) + "}"}, "not a UUID"),
    "hex_uuid_sub": ({"sub": uuid.uuid4().hex}, "not a UUID"),
    "numeric_sub": ({"sub": 12}, "UUID string"),
    "no_role": ({"role": None}, "lacks claim 'role'"),
    "anon_role": ({"role": "anon"}, "not accepted"),
    "service_role": ({"role": "service_role"}, "not accepted"),
}


@pytest.mark.parametrize("case", list(CLAIM_CASES))
async def test_bad_claims_are_refused(double: JwksDouble, verifier: Verifier, case: str) -> None:
    over, fragment = CLAIM_CASES[case]
    await refused(verifier, double.sign(double.add(), **over), fragment)


async def test_small_clock_skew_is_tolerated(double: JwksDouble, verifier: Verifier) -> None:
    key, now = double.add(), int(time.time())
    assert await verifier.verify(double.sign(key, exp=now - 5, iat=now - 600))
    assert await verifier.verify(double.sign(key, nbf=now + 5, iat=now + 5))


async def test_expiry_follows_the_injected_clock(double: JwksDouble, mono: ManualClock) -> None:
    wall = ManualClock()
    wall.t = 2_000_000_000.0
    v = supabase_verifier(double.url, clock=wall, monotonic=mono)
    try:
        key = double.add()
        tok = double.sign(key, iat=int(wall.t), exp=int(wall.t) + 60)
        assert await v.verify(tok)
        wall.advance(60 + 31)
        await refused(v, tok, "expired")
    finally:
        await v.aclose()


async def test_garbage_and_oversized_tokens(double: JwksDouble, verifier: Verifier) -> None:
    await refused(verifier, "not-a-jwt", "invalid access token")
    await refused(verifier, "aaa.bbb.ccc", "invalid access token")
    await refused(verifier, "", "no access token")
    key = double.add()
    big = double.sign(key, padding="x" * 9000)
    await refused(verifier, big, "too large")
    assert double.requests == 0  # refused before any key lookup
