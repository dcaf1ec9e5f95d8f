"""Protocol v1 §3 and §7 after ``session.start``: limits, non-fatal errors, the
abuse limit and closing, black-box.

Every non-fatal case ends with ``ping`` → ``pong`` (same ``id``) to prove the
session is still usable.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import websockets

from tests.engine.test_protocol_conformance import (
    Peer,
    assert_error,
    open_peer,
    start_msg,
    started,
)
from tests.fakes import ScriptedLLM
from voco.providers.base import ChatMessage, ToolCall

pytestmark = pytest.mark.timeout(30)

SHORT = "Okay."
MIB = 1 << 20


async def _session(eng: Any, user: str = "alice") -> Peer:
    peer, _ = await started(eng.url, eng.token(user))
    return peer


async def _expect_nonfatal(peer: Peer, frame: Any, *, code: str | None = None) -> None:
    """Send ``frame``: exactly one non-fatal ``error`` comes back, the session lives."""
    await peer.send(frame)
    msgs = await peer.ping("after-bad-frame")
    errors = [m for m in msgs if m["type"] == "error"]
    assert len(errors) == 1, msgs
    assert_error(errors[0], fatal=False, code=code)


NON_FATAL_TEXT = {
    "invalid_json": "{this is not json",
    "truncated_json": '{"type": "ping", "id": ',
    "json_array": "[1, 2, 3]",
    "json_string": '"ping"',
    "no_type": json.dumps({"text": "hello"}),
    "type_not_string": json.dumps({"type": 5}),
    "unknown_type": json.dumps({"type": "no.such.type"}),
    "text_input_without_text": json.dumps({"type": "text.input"}),
    "text_input_text_not_string": json.dumps({"type": "text.input", "text": 42}),
    "mcp_response_without_fields": json.dumps({"type": "mcp.response"}),
    "mcp_response_bad_status": json.dumps({"type": "mcp.response", "id": "x", "status": "ok"}),
    "mcp_progress_bad_stage": json.dumps({"type": "mcp.progress", "id": "x", "stage": "later"}),
    "audio_played_without_fields": json.dumps({"type": "audio.played"}),
    "mcp_response_unknown_id": json.dumps(
        {"type": "mcp.response", "id": "never-requested", "status": "success", "result": {}}
    ),
}


@pytest.mark.parametrize("kind", list(NON_FATAL_TEXT))
async def test_bad_text_frame_is_non_fatal(engine_factory: Any, kind: str) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await _session(eng)
        await _expect_nonfatal(peer, NON_FATAL_TEXT[kind])
        await _expect_nonfatal(peer, NON_FATAL_TEXT[kind])  # and again
        await peer.close()


@pytest.mark.parametrize(
    "frame",
    [b"\x00", b"\x00" * 1023, b"\x00" * 16001, b"\x00" * (64 * 1024 + 2), b"\x00" * (MIB - 2)],
    ids=["1_byte", "odd_1023", "odd_16001", "64KiB_plus_2", "almost_1MiB"],
)
async def test_bad_audio_frame_is_non_fatal(engine_factory: Any, frame: bytes) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await _session(eng)
        await _expect_nonfatal(peer, frame)
        # good audio still flows afterwards
        await peer.send(b"\x00" * 1024)
        msgs = await peer.ping("after-good-audio")
        assert not [m for m in msgs if m["type"] == "error"], msgs
        await peer.close()


@pytest.mark.parametrize("size", [2, 300, 1024, 2000, 64 * 1024])
async def test_even_audio_frames_up_to_64KiB_are_accepted(engine_factory: Any, size: int) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await _session(eng)
        await peer.send(b"\x00" * size)
        msgs = await peer.ping()
        assert not [m for m in msgs if m["type"] == "error"], msgs
        await peer.close()


SILENT_OK: dict[str, dict[str, Any]] = {
    # the protocol asks for no error here; whatever the engine says, not fatal
    "interrupt_with_nothing_playing": {"type": "interrupt"},
    "audio_played_unknown_response": {
        "type": "audio.played",
        "response_id": "nope",
        "played_ms": 10,
    },
    "mcp_progress_unknown_id": {"type": "mcp.progress", "id": "nope", "stage": "running"},
    "extra_fields_ignored": {"type": "ping", "id": "x", "extra": {"a": 1}},
    "second_session_start": {"type": "session.start", "token": "whatever"},
}


@pytest.mark.parametrize("kind", list(SILENT_OK))
async def test_tolerated_frames_keep_session(engine_factory: Any, kind: str) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await _session(eng)
        await peer.send(SILENT_OK[kind])
        msgs = await peer.ping("still")
        for m in msgs:
            if m["type"] == "error":
                assert_error(m, fatal=False)
        await peer.close()


async def test_interrupt_with_nothing_playing_is_a_no_op(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await _session(eng)
        await peer.send({"type": "interrupt"})
        msgs = await peer.ping()
        assert not [m for m in msgs if m["type"] in ("error", "halt_audio", "agent.done")], msgs
        await peer.close()


@pytest.mark.parametrize("id_", ["abc", 17, "", "ü-🎤"])
async def test_ping_pong_same_id(engine_factory: Any, id_: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await _session(eng)
        await peer.ping(id_)
        await peer.close()


async def test_session_end_closes_normally(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await _session(eng)
        await peer.send({"type": "session.end"})
        closed = await peer.closed(5)
    assert closed.code == 1000, closed
    assert not [m for m in closed.messages if m["type"] == "error"], closed


async def test_mcp_response_for_already_answered_id_is_non_fatal(engine_factory: Any) -> None:
    def script(msgs: list[ChatMessage]) -> list[str | ToolCall]:
        if msgs[-1].role == "user":
            return [ToolCall("call-1", "read_file", {"path": "README.md"})]
        return ["Read it."]

    async with engine_factory(ScriptedLLM(script)) as eng:
        peer = await _session(eng)
        await peer.send({"type": "text.input", "text": "read the readme"})
        req = (await peer.until_type("mcp.request"))[-1]
        assert req["action"] == "read_file" and req["payload"]["path"] == "README.md"
        answer = {
            "type": "mcp.response",
            "id": req["id"],
            "status": "success",
            "result": {"content": "# hi", "size": 4, "truncated": False},
        }
        await peer.send(answer)
        await _expect_nonfatal(peer, answer)
        msgs = await peer.until_type("agent.done", timeout=15)
        assert msgs[-1]["text"] == "Read it."
        await peer.ping("after-turn")
        await peer.close()


async def test_frames_pipelined_after_session_start(engine_factory: Any) -> None:
    """A client need not wait for session.ready: frames right behind
    session.start belong to the session (§2 only asks that start comes first)."""
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await open_peer(eng.url)
        await peer.send(start_msg(eng.token("alice")))
        await peer.send(b"\x00" * 1024)
        await peer.send({"type": "ping", "id": "pipelined"})
        msgs = await peer.until(lambda m: m["type"] == "pong")
        await peer.close()
    types = [m["type"] for m in msgs]
    assert types[0] == "session.ready", msgs
    assert "error" not in types, msgs
    assert msgs[-1] == {"type": "pong", "id": "pipelined"}


async def test_audio_frame_over_1MiB_is_non_fatal(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await _session(eng)
        await peer.send(b"\x00" * (MIB + 2))
        msgs = await peer.ping("after-big-audio")
        await peer.close()
    errors = [m for m in msgs if m["type"] == "error"]
    assert len(errors) == 1, msgs
    assert_error(errors[0], fatal=False)


# --------------------------------------------------------------- abuse limit


def _violation(i: int) -> str | bytes:
    kinds: list[str | bytes] = ["{bad json", json.dumps({"type": "nope"}), b"\x01\x02\x03"]
    return kinds[i % 3]


async def test_100_violations_are_tolerated_the_101st_closes_4400(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await _session(eng)
        for i in range(100):
            await peer.send(_violation(i))
        msgs = await peer.ping("at-100", timeout=15)
        errors = [m for m in msgs if m["type"] == "error"]
        assert len(errors) == 100, len(errors)
        for e in errors:
            assert_error(e, fatal=False)
        await peer.send(_violation(100))
        closed = await peer.closed(10)
    assert closed.code == 4400, closed
    assert closed.messages, "no error before close 4400"
    assert_error(closed.messages[-1], fatal=True)
    assert all(not m["fatal"] for m in closed.messages[:-1] if m["type"] == "error")


async def test_violation_flood_closes_4400(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await _session(eng)
        for i in range(300):
            try:
                await peer.send(_violation(i))
            except websockets.ConnectionClosed:
                break
        closed = await peer.closed(10)
    assert closed.code == 4400, closed
    fatal = [m for m in closed.messages if m["type"] == "error" and m["fatal"]]
    assert len(fatal) == 1 and closed.messages[-1] is fatal[0], closed.messages[-3:]
    assert_error(fatal[0], fatal=True)
    nonfatal = [m for m in closed.messages if m["type"] == "error" and not m["fatal"]]
    assert len(nonfatal) == 100


# ------------------------------------------------------------------- limits


async def test_text_frame_over_1MiB_closes_1009(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await _session(eng)
        frame = json.dumps({"type": "ping", "id": "x" * MIB})
        assert len(frame) > MIB
        await peer.send(frame)
        closed = await peer.closed(10)
    assert closed.code == 1009, closed


async def test_text_frame_of_exactly_1MiB_is_not_closed(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await _session(eng)
        head = '{"type": "text.input", "text": "'
        frame = head + "a" * (MIB - len(head) - 2) + '"}'
        assert len(frame.encode()) == MIB
        await _expect_nonfatal(peer, frame, code="too_large")
        await peer.close()


async def test_text_input_over_10000_chars_is_too_large(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM(lambda msgs: [SHORT])) as eng:
        peer = await _session(eng)
        await _expect_nonfatal(peer, {"type": "text.input", "text": "a" * 10_001}, code="too_large")
        # nothing was started for it
        msgs = await peer.ping("quiet")
        assert not [m for m in msgs if m["type"] != "pong"], msgs
        await peer.close()


async def test_text_input_of_10000_chars_is_accepted(engine_factory: Any) -> None:
    text = "é" * 10_000  # characters, not bytes (20 000 bytes of UTF-8)
    async with engine_factory(ScriptedLLM(lambda msgs: [SHORT])) as eng:
        peer = await _session(eng)
        await peer.send({"type": "text.input", "text": text})
        msgs = await peer.until_type("transcript.final")
        assert msgs[-1]["text"] == text
        assert not [m for m in msgs if m["type"] == "error"], msgs
        done = await peer.until_type("agent.done", timeout=15)
        assert done[-1]["text"] == SHORT
        await peer.close()


HOSTILE_TEXT = {
    # nesting that exhausts a recursive parser / validator / echo
    "arrays_100k": ("[" * 100_000 + "]" * 100_000, "invalid_json"),
    "objects_50k": ('{"a":' * 50_000 + "1" + "}" * 50_000, "invalid_json"),
    "nested_in_valid_text_input": (
        '{"type":"text.input","text":"hi","x":' + "[" * 100_000 + "]" * 100_000 + "}",
        "invalid_json",
    ),
    "nested_in_valid_ping": (
        '{"type":"ping","id":"p","x":' + '{"a":' * 50_000 + "1" + "}" * 50_000 + "}",
        "invalid_json",
    ),
    "moderately_deep_mcp_result": (
        '{"type":"mcp.response","id":"x","status":"success","result":'
        + "[" * 200
        + "]" * 200
        + "}",
        "invalid_json",
    ),
    # a lone surrogate: valid JSON escape, not encodable back to UTF-8
    "lone_surrogate_in_text_input": ('{"type":"text.input","text":"a\\ud800b"}', "invalid_message"),
    "lone_surrogate_in_ping_id": ('{"type":"ping","id":"\\ud800"}', "invalid_message"),
    "lone_low_surrogate_in_key": ('{"type":"ping","\\udfff":1}', "invalid_message"),
}


@pytest.mark.parametrize("kind", list(HOSTILE_TEXT))
async def test_hostile_text_frame_is_answered_and_survived(engine_factory: Any, kind: str) -> None:
    frame, code = HOSTILE_TEXT[kind]
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await _session(eng)
        await _expect_nonfatal(peer, frame, code=code)
        await _expect_nonfatal(peer, frame, code=code)  # and again
        await peer.close()


async def test_a_surrogate_pair_is_fine(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer = await _session(eng)
        await peer.send('{"type":"ping","id":"\\ud83d\\ude00"}')
        msgs = await peer.until_type("pong")
        assert msgs[-1]["id"] == "\U0001f600"
        await peer.close()


class BuggyLLM(ScriptedLLM):
    """A bug in code the reader runs (not a disconnect): here, a RuntimeError
    when a turn starts (``session.ready`` describing the model still works)."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    def model_id(self, tier: str) -> str:
        if self.broken:
            raise RuntimeError("bug: no such tier table")
        return super().model_id(tier)


async def test_a_bug_is_an_internal_error_not_a_quiet_disconnect(engine_factory: Any) -> None:
    llm = BuggyLLM()
    async with engine_factory(llm) as eng:
        peer = await _session(eng)
        llm.broken = True
        await peer.send({"type": "text.input", "text": "hello"})
        closed = await peer.closed()
        assert closed.code == 1011
        errors = [m for m in closed.messages if m["type"] == "error"]
        assert errors, closed.messages
        assert_error(errors[-1], fatal=True, code="internal")
