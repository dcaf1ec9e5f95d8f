"""Protocol v1 §2 (and §7 "before session.start"): the handshake, black-box.

Tokens are made here the way a Supabase project makes them: signed by the keys
of a JWKS double on 127.0.0.1 (ES256/RS256) or with the legacy shared secret
(HS256), and the engine verifies them in Supabase mode against that double.
Every refusal is seen from the outside: a fatal ``error`` naming the problem,
then close 4401. The embedded issuer (``eng.token``) is covered as well.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tests.auth.doubles import JwksDouble, SigningKey
from tests.engine.test_protocol_conformance import (
    assert_error,
    assert_refused,
    open_peer,
    start_msg,
    started,
    turn,
)
from tests.fakes import ScriptedLLM
from voco.auth import LOCAL_ISSUER, JwksKeySource, Verifier, supabase_verifier, user_uuid
from voco.protocol.connection import START_TIMEOUT_S

pytestmark = [
    pytest.mark.timeout(30),
    # the HS512 token is meant to be refused; its key length does not matter
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

SECRET = "legacy-jwt-secret-" + "x" * 32  # the project's SUPABASE_JWT_SECRET


@pytest.fixture
def double() -> Iterator[JwksDouble]:
    d = JwksDouble()
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def project_keys(double: JwksDouble) -> dict[str, SigningKey]:
    return {"ES256": double.add("ES256"), "RS256": double.add("RS256")}


@pytest.fixture
def supabase_engine(
    engine_factory: Any, double: JwksDouble, project_keys: Any
) -> Callable[..., Any]:
    """``async with supabase_engine() as eng`` — an engine in Supabase mode against the double."""

    @contextlib.asynccontextmanager
    async def make() -> AsyncIterator[Any]:
        verifier = supabase_verifier(double.url, SECRET)
        try:
            async with engine_factory(ScriptedLLM(), auth=verifier) as eng:
                yield eng
        finally:
            await verifier.aclose()

    return make


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    head = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode())
    return head + "." + b64u(sign(head.encode()) if sign else b"")


def make_token(double: JwksDouble, *, key: str = SECRET, alg: str = "HS256", **over: Any) -> str:
    """An HS256 token with the legacy secret (or another ``key``/``alg``)."""
    return jwt.encode(double.claims(**over), key, algorithm=alg)


def hs_with_public_pem(double: JwksDouble, rsa: SigningKey) -> str:
    pem = rsa.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hand_made(
        {"alg": "HS256", "typ": "JWT", "kid": rsa.kid},
        double.claims(),
        lambda m: hmac.new(pem, m, hashlib.sha256).digest(),
    )


# --------------------------------------------------------------- valid starts


@pytest.mark.parametrize("alg", ["ES256", "RS256", "HS256"])
async def test_supabase_token_gets_session_ready(
    supabase_engine: Any, double: JwksDouble, project_keys: Any, alg: str
) -> None:
    sub = str(uuid.uuid4())
    tok = make_token(double, sub=sub) if alg == "HS256" else double.sign(project_keys[alg], sub=sub)
    async with supabase_engine() as eng:
        peer, ready = await started(eng.url, tok)
        await peer.ping("after-ready")
        await peer.close()
    assert ready["type"] == "session.ready"
    assert {"session_id", "thread_id", "user_id", "server"} <= set(ready)
    assert isinstance(ready["session_id"], str) and ready["session_id"]
    assert isinstance(ready["thread_id"], str) and ready["thread_id"]
    assert ready["user_id"] == sub
    assert isinstance(ready["server"]["version"], str) and ready["server"]["version"]
    assert ready["server"]["protocol"] == 1


async def test_token_issued_by_engine_is_accepted(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer, ready = await started(eng.url, eng.token("bob"))
        await peer.close()
    assert ready["user_id"] == user_uuid("bob")


async def test_engine_publishes_its_jwks(engine_factory: Any, supabase_engine: Any) -> None:
    """Local mode serves its public key like a Supabase project, and a JWKS
    verifier pointed at the engine accepts the engine's tokens."""
    async with engine_factory(ScriptedLLM()) as eng:
        base = eng.url.replace("ws://", "http://").removesuffix("/v1/session")
        async with httpx.AsyncClient() as client:
            r = await client.get(base + "/auth/v1/.well-known/jwks.json")
        assert r.status_code == 200 and r.json()["keys"][0]["alg"] == "ES256"
        remote = Verifier(
            JwksKeySource(base + "/auth/v1/.well-known/jwks.json"), issuer=LOCAL_ISSUER
        )
        try:
            assert (await remote.verify(eng.token("alice"))).user_id == user_uuid("alice")
        finally:
            await remote.aclose()
    async with supabase_engine() as eng:
        base = eng.url.replace("ws://", "http://").removesuffix("/v1/session")
        async with httpx.AsyncClient() as client:
            r = await client.get(base + "/auth/v1/.well-known/jwks.json")
        assert r.status_code == 404  # the Supabase project is the issuer, not us


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
async def test_bearer_header_instead_of_token_field(
    supabase_engine: Any, double: JwksDouble, project_keys: Any, scheme: str
) -> None:
    sub = str(uuid.uuid4())
    async with supabase_engine() as eng:
        tok = double.sign(project_keys["ES256"], sub=sub)
        peer, ready = await started(eng.url, None, headers={"Authorization": f"{scheme} {tok}"})
        await peer.ping(7)
        await peer.close()
    assert ready["user_id"] == sub
    assert ready["server"]["protocol"] == 1


@pytest.mark.parametrize(
    "audio",
    [
        {"output": {"encoding": "pcm_s16le", "sample_rate": 24000}},
        {"output": {"encoding": "mp3", "sample_rate": 24000}},
        {"output": {"encoding": "pcm_s16le"}},
    ],
)
async def test_accepted_output_encodings(engine_factory: Any, audio: dict[str, Any]) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer, ready = await started(eng.url, eng.token("alice"), audio=audio)
        await peer.ping()
        await peer.close()
    assert ready["user_id"] == user_uuid("alice")


# ------------------------------------------------------------------- refusals


async def _refused(
    eng: Any, first: Any, close_code: int, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    peer = await open_peer(eng.url, headers=headers)
    await peer.send(first)
    return assert_refused(await peer.closed(10), close_code)


async def test_no_token_is_4401(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        err = await _refused(eng, start_msg(None), 4401)
    assert "no access token" in err["message"]


Keys = dict[str, SigningKey]
BAD_TOKENS: dict[str, tuple[Callable[[JwksDouble, Keys], str], str]] = {
    "garbage": (lambda d, k: "not-a-jwt", "invalid access token"),
    "three_garbage_parts": (lambda d, k: "aaa.bbb.ccc", "invalid access token"),
    "empty_string": (lambda d, k: "", "no access token"),
    "wrong_signature": (lambda d, k: make_token(d, key="another-" + SECRET), "signature"),
    "wrong_aud": (lambda d, k: make_token(d, aud="anon"), "audience"),
    "no_aud": (lambda d, k: make_token(d, aud=None), "aud"),
    "wrong_iss": (lambda d, k: make_token(d, iss="https://other.supabase.co/auth/v1"), "issuer"),
    "expired": (
        lambda d, k: make_token(d, exp=int(time.time()) - 120, iat=int(time.time()) - 3600),
        "expired",
    ),
    "not_yet_valid": (lambda d, k: make_token(d, nbf=int(time.time()) + 600), "not yet valid"),
    "no_exp": (lambda d, k: make_token(d, exp=None), "exp"),
    "no_sub": (lambda d, k: make_token(d, sub=None), "sub"),
    "empty_sub": (lambda d, k: make_token(d, sub=""), "UUID"),
    "non_uuid_sub": (lambda d, k: d.sign(k["ES256"], sub="alice"), "UUID"),
    "anon_role": (lambda d, k: d.sign(k["ES256"], role="anon"), "role"),
    "alg_none": (
        lambda d, k: hand_made({"alg": "none", "kid": k["ES256"].kid}, d.claims()),
        "algorithm",
    ),
    "alg_hs512": (lambda d, k: make_token(d, alg="HS512"), "algorithm"),
    "hs_rs_confusion": (lambda d, k: hs_with_public_pem(d, k["RS256"]), "signature"),
    "unknown_kid": (lambda d, k: d.sign(SigningKey.new("ES256")), "unknown key"),
    "too_large": (lambda d, k: d.sign(k["ES256"], pad="x" * 9000), "too large"),
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_bad_token_is_4401(
    supabase_engine: Any, double: JwksDouble, project_keys: Keys, kind: str
) -> None:
    make, fragment = BAD_TOKENS[kind]
    async with supabase_engine() as eng:
        err = await _refused(eng, start_msg(make(double, project_keys)), 4401)
    assert err["code"] == "unauthenticated"
    assert fragment in err["message"], err


@pytest.mark.parametrize("kind", ["wrong_signature", "expired", "alg_none"])
async def test_bad_bearer_header_is_4401(
    supabase_engine: Any, double: JwksDouble, project_keys: Keys, kind: str
) -> None:
    async with supabase_engine() as eng:
        headers = {"Authorization": f"Bearer {BAD_TOKENS[kind][0](double, project_keys)}"}
        await _refused(eng, start_msg(None), 4401, headers=headers)


async def test_jwks_down_is_4401_with_a_clear_message(
    supabase_engine: Any, double: JwksDouble, project_keys: Keys
) -> None:
    tok = double.sign(project_keys["ES256"])
    double.stop()
    async with supabase_engine() as eng:
        err = await _refused(eng, start_msg(tok), 4401)
    assert "signing keys unavailable" in err["message"] and "unreachable" in err["message"]


async def test_local_engine_refuses_a_foreign_token(engine_factory: Any, double: JwksDouble):
    """An embedded engine takes only its own tokens: a Supabase project's are 4401."""
    async with engine_factory(ScriptedLLM()) as eng:
        err = await _refused(eng, start_msg(double.sign(double.add("ES256"))), 4401)
        err2 = await _refused(eng, start_msg(make_token(double)), 4401)
    assert "unknown key" in err["message"]
    assert "HS256" in err2["message"]


@pytest.mark.timeout(15)
async def test_no_session_start_within_5s_is_4408(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await open_peer(eng.url)
        # a bound on the wait, not a measurement: the deadline's rule (4408 only
        # before session.start) is the sans-I/O core's, tested in
        # tests/protocol/test_connection.py; its length is the documented constant
        closed = await peer.closed(START_TIMEOUT_S + 5.0)
    assert_refused(closed, 4408)
    assert START_TIMEOUT_S == 5.0  # docs/protocol.md: "within 5 s"


@pytest.mark.parametrize(
    "first",
    [
        {"type": "ping", "id": "early"},
        {"type": "text.input", "text": "hello"},
        {"type": "session.end"},
        {"type": "interrupt"},
        {"type": "no.such.type"},
        "{this is not json",
        "[1, 2, 3]",
        '{"token": "no type field"}',
        b"\x00\x00" * 512,
    ],
    ids=[
        "ping",
        "text.input",
        "session.end",
        "interrupt",
        "unknown_type",
        "invalid_json",
        "json_array",
        "no_type",
        "audio",
    ],
)
async def test_anything_but_session_start_first_is_4400(engine_factory: Any, first: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        await _refused(eng, first, 4400)


async def test_malformed_session_start_is_4400(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        await _refused(eng, start_msg(eng.token("alice"), audio={"output": "mp3"}), 4400)


@pytest.mark.parametrize(
    "names",
    [["n.py"] * 201, ["x" * 129], "README.md", [1, 2], [None]],
    ids=["too_many", "too_long", "not_a_list", "numbers", "null"],
)
async def test_hostile_project_names_are_4400(engine_factory: Any, names: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        await _refused(eng, start_msg(eng.token("alice"), project_names=names), 4400)


@pytest.mark.parametrize("encoding", ["wav", "opus", "MP3", ""])
async def test_unsupported_output_encoding_is_4400(engine_factory: Any, encoding: str) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        msg = start_msg(eng.token("alice"), audio={"output": {"encoding": encoding}})
        await _refused(eng, msg, 4400)


# -------------------------------------------------------------------- threads


async def test_unknown_thread_starts_fresh_one_with_notice(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await open_peer(eng.url)
        await peer.send(start_msg(eng.token("alice"), thread_id="never-existed"))
        msgs = await peer.until_type("session.ready")
        ready = msgs[-1]
        more = await peer.ping("after")
        await peer.close()
    assert isinstance(ready["thread_id"], str) and ready["thread_id"]
    assert ready["thread_id"] != "never-existed"
    errors = [m for m in msgs + more if m["type"] == "error"]
    assert len(errors) == 1, msgs + more
    assert_error(errors[0], fatal=False, code="thread_not_found")


@pytest.mark.timeout(60)
async def test_resume_own_thread_keeps_conversation(engine_factory: Any) -> None:
    def script(msgs: list[Any]) -> list[str]:
        first_user = next(m.content for m in msgs if m.role == "user")
        return [f"First you said {first_user}."]

    async with engine_factory(ScriptedLLM(script)) as eng:
        tok = eng.token("alice")
        a, ready_a = await started(eng.url, tok)
        r1 = await turn(a, "apples")
        await a.close()
        b, ready_b = await started(eng.url, tok, thread_id=ready_a["thread_id"])
        r2 = await turn(b, "bananas")
        await b.close()
    assert ready_b["thread_id"] == ready_a["thread_id"]
    assert ready_b["session_id"] != ready_a["session_id"]
    assert r1.one("agent.done")["text"] == "First you said apples."
    assert r2.one("agent.done")["text"] == "First you said apples."


async def test_resume_own_thread_while_first_session_open(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        a, ready_a = await started(eng.url, eng.token("alice"))
        b, ready_b = await started(eng.url, eng.token("alice"), thread_id=ready_a["thread_id"])
        await a.close()
        await b.close()
    assert ready_b["thread_id"] == ready_a["thread_id"]


async def test_someone_elses_thread_is_4403(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        a, ready_a = await started(eng.url, eng.token("alice"))
        await a.close()
        await _refused(eng, start_msg(eng.token("mallory"), thread_id=ready_a["thread_id"]), 4403)
