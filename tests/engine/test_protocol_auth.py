"""Protocol v1 §2 (and §7 "before session.start"): the handshake, black-box.

Tokens are made here with PyJWT, the way a Supabase project would make them,
so every refusal is tested from the outside (no call into the engine's auth).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from tests.engine.test_protocol_conformance import (
    SECRET,
    assert_error,
    assert_refused,
    open_peer,
    start_msg,
    started,
    turn,
)
from tests.fakes import ScriptedLLM

pytestmark = [
    pytest.mark.timeout(30),
    # the HS512 token is meant to be refused; its key length does not matter
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]


def make_token(
    claims: dict[str, Any] | None = None, *, key: str = SECRET, alg: str = "HS256", **over: Any
) -> str:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "alice",
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 600,
    }
    base.update(claims or {})
    base.update(over)
    base = {k: v for k, v in base.items() if v is not None}
    return jwt.encode(base, key if alg != "none" else None, algorithm=alg)  # type: ignore[arg-type]


# --------------------------------------------------------------- valid starts


async def test_valid_start_gets_session_ready(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer, ready = await started(eng.url, make_token(sub="user-42"))
        await peer.ping("after-ready")
        await peer.close()
    assert ready["type"] == "session.ready"
    assert {"session_id", "thread_id", "user_id", "server"} <= set(ready)
    assert isinstance(ready["session_id"], str) and ready["session_id"]
    assert isinstance(ready["thread_id"], str) and ready["thread_id"]
    assert ready["user_id"] == "user-42"
    assert isinstance(ready["server"]["version"], str) and ready["server"]["version"]
    assert ready["server"]["protocol"] == 1


async def test_token_issued_by_engine_is_accepted(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer, ready = await started(eng.url, eng.token("bob"))
        await peer.close()
    assert ready["user_id"] == "bob"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
async def test_bearer_header_instead_of_token_field(engine_factory: Any, scheme: str) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        tok = make_token(sub="carol")
        peer, ready = await started(eng.url, None, headers={"Authorization": f"{scheme} {tok}"})
        await peer.ping(7)
        await peer.close()
    assert ready["user_id"] == "carol"
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
    assert ready["user_id"] == "alice"


# ------------------------------------------------------------------- refusals


async def _refused(
    eng: Any, first: Any, close_code: int, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    peer = await open_peer(eng.url, headers=headers)
    await peer.send(first)
    return assert_refused(await peer.closed(10), close_code)


async def test_no_token_is_4401(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        await _refused(eng, start_msg(None), 4401)


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "garbage": lambda: "not-a-jwt",
    "three_garbage_parts": lambda: "aaa.bbb.ccc",
    "empty_string": lambda: "",
    "wrong_signature": lambda: make_token(key="another-secret-" + "y" * 32),
    "wrong_aud": lambda: make_token(aud="anon"),
    "no_aud": lambda: make_token(aud=None),
    "expired": lambda: make_token(exp=int(time.time()) - 60, iat=int(time.time()) - 3600),
    "no_exp": lambda: make_token(exp=None),
    "no_sub": lambda: make_token(sub=None),
    "empty_sub": lambda: make_token(sub=""),
    "alg_none": lambda: make_token(alg="none"),
    "alg_hs512": lambda: make_token(alg="HS512"),
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_bad_token_is_4401(engine_factory: Any, kind: str) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        await _refused(eng, start_msg(BAD_TOKENS[kind]()), 4401)


@pytest.mark.parametrize("kind", ["wrong_signature", "expired", "alg_none"])
async def test_bad_bearer_header_is_4401(engine_factory: Any, kind: str) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        headers = {"Authorization": f"Bearer {BAD_TOKENS[kind]()}"}
        await _refused(eng, start_msg(None), 4401, headers=headers)


@pytest.mark.timeout(15)
async def test_no_session_start_within_5s_is_4408(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await open_peer(eng.url)
        t0 = time.monotonic()
        closed = await peer.closed(6.0)
        elapsed = time.monotonic() - t0
    assert_refused(closed, 4408)
    assert 4.8 <= elapsed <= 6.0, elapsed


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
