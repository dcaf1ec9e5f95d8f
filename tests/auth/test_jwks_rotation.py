"""The JWKS lifecycle against a real HTTP double: rotation without restart, the
refresh rate limit under a flood of bogus kids, and fail-closed when the
endpoint is down (recovering when it is back). Time moves by an injected
monotonic clock, never by sleeping."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from tests.auth.conftest import ManualClock
from tests.auth.doubles import JwksDouble, SigningKey
from voco.auth import AuthError, JwksCache, Verifier, supabase_verifier
from voco.auth.jwks import Fetch, Hit, Refuse

pytestmark = pytest.mark.timeout(30)


async def refused(v: Verifier, token: str, fragment: str) -> None:
    with pytest.raises(AuthError) as info:
        await v.verify(token)
    assert fragment in str(info.value), str(info.value)


def bogus(double: JwksDouble) -> str:
    """A well-signed token whose kid the project never published."""
    stranger = SigningKey.new("ES256")
    return double.sign(stranger)


async def test_rotation_is_picked_up_without_restart(
    double: JwksDouble, verifier: Verifier, mono: ManualClock
) -> None:
    old = double.add("ES256")
    old_token = double.sign(old)
    assert await verifier.verify(old_token)
    new = double.add("RS256")  # Supabase publishes the standby key first, then signs with it
    double.remove(old)  # …and revokes the old one
    mono.advance(31)  # past the refresh interval since the last fetch
    assert await verifier.verify(double.sign(new))
    assert double.requests == 2
    # the revoked key is gone from the refreshed set
    await refused(verifier, old_token, "unknown key")
    await refused(verifier, double.sign(old), "unknown key")


async def test_unknown_kid_refreshes_once_then_refuses(
    double: JwksDouble, verifier: Verifier
) -> None:
    double.add()
    await refused(verifier, bogus(double), "unknown key")
    assert double.requests == 1


async def test_flood_of_bogus_kids_costs_one_request_per_interval(
    double: JwksDouble, verifier: Verifier, mono: ManualClock
) -> None:
    good = double.add()
    assert await verifier.verify(double.sign(good))
    mono.advance(31)
    tokens = [bogus(double) for _ in range(5)] * 40  # 200 tokens, 5 distinct bogus kids
    for t in tokens[:100]:
        await refused(verifier, t, "unknown key")
    results = await asyncio.gather(
        *(verifier.verify(t) for t in tokens[100:]), return_exceptions=True
    )
    assert all(isinstance(r, AuthError) for r in results)
    assert double.requests == 2  # the first fetch + one refresh for the whole flood
    assert await verifier.verify(double.sign(good))  # good tokens unaffected, from cache
    mono.advance(31)
    await refused(verifier, tokens[0], "unknown key")
    assert double.requests == 3


async def test_concurrent_first_use_fetches_once(double: JwksDouble, verifier: Verifier) -> None:
    key = double.add()
    principals = await asyncio.gather(*(verifier.verify(double.sign(key)) for _ in range(30)))
    assert len(principals) == 30 and double.requests == 1


async def test_endpoint_down_fails_closed_then_recovers(
    double: JwksDouble, verifier: Verifier, mono: ManualClock
) -> None:
    key = double.add()
    tok = double.sign(key)
    double.stop()
    await refused(verifier, tok, "signing keys unavailable: JWKS endpoint")
    await refused(verifier, tok, "unreachable")  # still closed, and no retry storm
    double.start()
    await refused(verifier, tok, "unreachable")  # back, but the retry interval holds
    assert double.requests == 0
    mono.advance(31)
    assert await verifier.verify(tok)
    assert double.requests == 1


@pytest.mark.parametrize(
    ("status", "body", "fragment"),
    [
        (503, None, "HTTP 503"),
        (200, b"<html>maintenance</html>", "malformed"),
        (200, b'{"no_keys": []}', "malformed"),
        (200, b'{"keys": [' + b'{"kty":"EC"},' * 6000 + b"{}]}", "larger than"),
    ],
)
async def test_bad_endpoint_answers_fail_closed(
    double: JwksDouble, verifier: Verifier, mono: ManualClock, status: int, body, fragment: str
) -> None:
    key = double.add()
    double.status, double.body = status, body
    await refused(verifier, double.sign(key), fragment)
    double.status, double.body = 200, None
    mono.advance(31)
    assert await verifier.verify(double.sign(key))


async def test_known_keys_ride_out_an_outage_then_fail_closed(
    double: JwksDouble, verifier: Verifier, mono: ManualClock
) -> None:
    key = double.add()
    assert await verifier.verify(double.sign(key))
    double.stop()
    mono.advance(700)  # past the 600 s ttl: a refresh is tried, fails, stale keys still serve
    assert await verifier.verify(double.sign(key))
    mono.advance(3000)  # more than an hour since the last good fetch: closed
    await refused(verifier, double.sign(key), "unreachable")
    double.start()
    mono.advance(31)
    assert await verifier.verify(double.sign(key))


async def test_unusable_jwks_entries_are_skipped(double: JwksDouble, verifier: Verifier) -> None:
    good = double.add()
    entries = [
        {"kty": "oct", "kid": "shared", "k": "c2VjcmV0"},  # a secret in a public set
        {"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"},
        {"kty": "RSA", "kid": "small", "n": "AQAB", "e": "AQAB"},
        {**good.jwk(), "kid": "enc", "use": "enc"},
        {**good.jwk(), "kid": "lying", "alg": "RS256"},
        "not an object",
        good.jwk(),
    ]
    double.body = json.dumps({"keys": entries}).encode()
    assert await verifier.verify(double.sign(good))
    for kid in ("shared", "p384", "small", "enc", "lying"):
        forged = SigningKey("ES256", good.private, kid=kid)
        await refused(verifier, double.sign(forged), "unknown key")


async def test_failed_fetches_count_toward_the_limit(
    double: JwksDouble, verifier: Verifier, mono: ManualClock
) -> None:
    key = double.add()
    double.status = 503
    for _ in range(50):
        await refused(verifier, double.sign(key), "HTTP 503")
    assert double.requests == 1  # a struggling endpoint is not hammered either
    double.status = 200
    mono.advance(31)
    assert await verifier.verify(double.sign(key))
    assert double.requests == 2


async def test_warmup_prefetches_and_reports_problems(
    double: JwksDouble, verifier: Verifier, mono: ManualClock
) -> None:
    key = double.add()
    assert await verifier.warmup() is None
    assert await verifier.verify(double.sign(key))
    assert double.requests == 1  # the session start did not fetch
    down = supabase_verifier(double.url.replace(str(double.port), "1"), monotonic=mono)
    try:
        problem = await down.warmup()
        assert problem is not None and "unreachable" in problem
        await refused(down, double.sign(key), "signing keys unavailable")
    finally:
        await down.aclose()


# ----------------------------------------------------------- the pure core


def test_cache_core_decisions() -> None:
    c = JwksCache(ttl_s=600, min_refresh_s=30, max_stale_s=3600)
    assert isinstance(c.decide("k", 0), Fetch)
    c.begin_fetch(0)
    c.failed("down", 0)
    assert c.decide("k", 10) == Refuse("signing keys unavailable: down")
    assert isinstance(c.decide("k", 30), Fetch)
    c.begin_fetch(30)
    key = object()
    c.fetched({"k": key}, 30)  # type: ignore[dict-item]
    assert c.decide("k", 40) == Hit(key)  # type: ignore[arg-type]
    assert isinstance(c.decide("other", 40), Refuse)
    assert isinstance(c.decide("other", 60), Fetch)
    assert isinstance(c.decide("k", 631), Fetch)  # stale: refresh
    c.begin_fetch(631)
    c.failed("down", 631)
    assert c.decide("k", 640) == Hit(key)  # type: ignore[arg-type]
    assert isinstance(c.decide("k", 3631), Fetch)
    c.begin_fetch(3631)
    c.failed("down", 3631)
    assert c.decide("k", 3632) == Refuse("signing keys unavailable: down")


async def test_jwks_url_and_issuer_follow_supabase_url(double: JwksDouble, mono: ManualClock):
    v = supabase_verifier(double.url + "/", monotonic=mono)  # trailing slash tolerated
    try:
        key = double.add()
        assert await v.verify(double.sign(key, sub=str(uuid.uuid4())))
        assert v.issuer == f"{double.url}/auth/v1"
    finally:
        await v.aclose()
