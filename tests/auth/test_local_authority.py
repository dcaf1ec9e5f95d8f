"""The embedded issuer: an ES256 key in $VOCO_HOME, tokens shaped like
Supabase's, verified by the same :class:`Verifier` (and by the JWKS path, from
the JWKS it publishes)."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
import uuid
from pathlib import Path

import jwt
import pytest

from tests.auth.conftest import ManualClock
from tests.auth.doubles import JwksDouble
from voco.auth import (
    LOCAL_ISSUER,
    AuthError,
    JwksKeySource,
    TokenAuthority,
    Verifier,
    make_verifier,
    state_dir,
    user_uuid,
)
from voco.auth.keys import load_or_create_signing_key

pytestmark = pytest.mark.timeout(30)


def test_user_uuid_is_deterministic_and_passes_uuids_through() -> None:
    assert user_uuid("alice") == user_uuid("alice") != user_uuid("bob")
    assert str(uuid.UUID(user_uuid("alice"))) == user_uuid("alice")
    u = str(uuid.uuid4())
    assert user_uuid(u) == u and user_uuid(u.upper()) == u
    # the namespace is fixed: the same name maps to the same sub on every machine
    assert user_uuid("me") == "9afe42ec-8de3-55b6-9a23-be9796a38363"


async def test_issue_then_verify() -> None:
    auth = TokenAuthority()
    tok = auth.issue("alice", project_id="p1", org_id="o1", ttl_s=60)
    p = await auth.verify(tok)
    assert p.user_id == user_uuid("alice")
    assert (p.project_id, p.org_id, p.role) == ("p1", "o1", "authenticated")
    assert p.claims["user_metadata"] == {"name": "alice"}
    assert p.claims["iss"] == LOCAL_ISSUER and p.claims["aud"] == "authenticated"
    assert jwt.get_unverified_header(tok)["alg"] == "ES256"
    sub = str(uuid.uuid4())
    p2 = await auth.verify(auth.issue(sub))
    assert p2.user_id == sub and "user_metadata" not in p2.claims


async def test_key_file_is_private_and_shared_between_instances() -> None:
    a = TokenAuthority()
    path = state_dir() / "auth_signing_key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    b = TokenAuthority()  # `voco token` and `voco serve` agree without configuration
    assert a.source.kid == b.source.kid
    assert await b.verify(a.issue("alice"))
    assert a.weaknesses() == []
    os.chmod(path, 0o644)
    assert any("not 600" in w for w in a.weaknesses())


def test_concurrent_first_use_creates_one_key(tmp_path: Path) -> None:
    path = tmp_path / "home" / "key.pem"
    out: list[bytes] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        from cryptography.hazmat.primitives import serialization

        key = load_or_create_signing_key(path)
        out.append(
            key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 8 and len(set(out)) == 1
    assert [p.name for p in path.parent.iterdir()] == ["key.pem"]  # no temp files left


def test_a_corrupt_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("not a key")
    with pytest.raises(AuthError, match="not a readable PEM"):
        TokenAuthority(path)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(p384)
    with pytest.raises(AuthError, match="not an ES256"):
        TokenAuthority(path)


async def test_local_refusals() -> None:
    clock = ManualClock()
    clock.t = time.time()
    auth = TokenAuthority(clock=clock)
    other = TokenAuthority(state_dir() / "other.pem")
    with pytest.raises(AuthError, match="unknown key"):
        await auth.verify(other.issue("alice"))
    tok = auth.issue("alice", ttl_s=60)
    clock.advance(120)
    with pytest.raises(AuthError, match="expired"):
        await auth.verify(tok)
    with pytest.raises(ValueError):
        auth.issue("alice", ttl_s=0)
    # a local engine takes no HS256 tokens at all, whatever the secret
    hs = jwt.encode(
        {
            "sub": user_uuid("a"),
            "aud": "authenticated",
            "role": "authenticated",
            "iss": LOCAL_ISSUER,
            "exp": int(clock.t) + 60,
        },
        "x" * 40,
        algorithm="HS256",
    )
    with pytest.raises(AuthError, match="HS256 access tokens are not accepted"):
        await auth.verify(hs)


async def test_published_jwks_verifies_through_the_jwks_path(mono: ManualClock) -> None:
    """What the engine serves at /auth/v1/.well-known/jwks.json is a JWKS any
    Supabase-style verifier can use: same code, key source differs."""
    auth = TokenAuthority()
    double = JwksDouble()
    double.body = json.dumps(auth.public_jwks()).encode()
    remote = Verifier(
        JwksKeySource(double.url + "/auth/v1/.well-known/jwks.json", monotonic=mono),
        issuer=LOCAL_ISSUER,
    )
    try:
        p = await remote.verify(auth.issue("alice", org_id="o"))
        assert (p.user_id, p.org_id) == (user_uuid("alice"), "o")
    finally:
        await remote.aclose()
        double.close()
    doc = auth.public_jwks()
    assert doc is not None and set(doc["keys"][0]) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert "d" not in doc["keys"][0]  # never the private part


async def test_mode_selection(double: JwksDouble) -> None:
    assert isinstance(make_verifier(), TokenAuthority)
    with pytest.raises(AuthError, match="needs SUPABASE_URL"):
        make_verifier(None, "s" * 40)
    with pytest.raises(AuthError, match="http"):
        make_verifier("ftp://x")
    sup = make_verifier(double.url)
    try:
        assert not isinstance(sup, TokenAuthority) and sup.public_jwks() is None
        with pytest.raises(AuthError, match="cannot issue"):
            sup.issue("alice")
    finally:
        await sup.aclose()
