"""Sans-I/O rules of one engine connection (protocol §1, §2, §7), no sockets.

``now`` is always passed explicitly, so the abuse window is tested exactly.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from voco.protocol import messages as m
from voco.protocol.connection import (
    MAX_AUDIO_FRAME,
    MAX_TEXT_FRAME,
    MAX_TEXT_INPUT_CHARS,
    VIOLATION_LIMIT,
    VIOLATION_WINDOW_S,
    AudioReceived,
    Close,
    MessageReceived,
    Phase,
    SendError,
    ServerConnection,
    StartRequested,
)


def j(**obj: Any) -> str:
    return json.dumps(obj)


START = j(type="session.start", token="t", project_id="p1")
FRAME = 1024  # bytes in one 512-sample frame


def ready() -> ServerConnection:
    c = ServerConnection()
    [ev] = c.receive_text(START, 0.0)
    assert isinstance(ev, StartRequested)
    c.start_accepted()
    assert c.phase is Phase.READY
    return c


def assert_fatal(events: list[Any], close: int) -> None:
    assert len(events) == 2, events
    err, cl = events
    assert isinstance(err, SendError) and err.fatal and err.code and err.message
    assert isinstance(cl, Close) and cl.code == close


def assert_nonfatal(events: list[Any], code: str | None = None) -> SendError:
    assert len(events) == 1, events
    [err] = events
    assert isinstance(err, SendError) and not err.fatal and err.message
    if code is not None:
        assert err.code == code
    return err


# ------------------------------------------------------------------ handshake


def test_start_is_requested_then_accepted() -> None:
    c = ServerConnection()
    assert c.phase is Phase.AWAITING_START
    [ev] = c.receive_text(
        j(
            type="session.start",
            token="abc",
            project_id="p1",
            thread_id="t1",
            audio={"output": {"encoding": "pcm_s16le", "sample_rate": 24000}},
        ),
        0.0,
    )
    assert isinstance(ev, StartRequested)
    assert ev.message.token == "abc" and ev.message.thread_id == "t1"
    assert ev.message.audio.output.encoding == "pcm_s16le"
    assert c.phase is Phase.AUTHENTICATING
    c.start_accepted()
    assert c.phase is Phase.READY


def test_start_defaults_to_mp3() -> None:
    [ev] = ServerConnection().receive_text(j(type="session.start", token="x"), 0.0)
    assert isinstance(ev, StartRequested)
    assert ev.message.audio.output.encoding == "mp3"
    assert ev.message.audio.output.sample_rate == 24000


def test_start_deadline() -> None:
    c = ServerConnection()
    assert_fatal(c.start_deadline_passed(), 4408)
    assert c.phase is Phase.CLOSED
    assert c.receive_text(START, 1.0) == []


def test_start_deadline_after_start_is_ignored() -> None:
    c = ready()
    assert c.start_deadline_passed() == []
    c2 = ServerConnection()
    c2.receive_text(START, 0.0)  # authenticating: the start did arrive in time
    assert c2.start_deadline_passed() == []


@pytest.mark.parametrize(
    "frame",
    [
        j(type="ping", id="x"),
        j(type="text.input", text="hi"),
        j(type="session.end"),
        j(type="nope"),
        "{not json",
        "[]",
        j(type="session.start", audio={"output": {"encoding": "wav"}}),
        j(type="session.start", project_id=""),
    ],
)
def test_anything_but_a_valid_start_first_is_4400(frame: str) -> None:
    c = ServerConnection()
    assert_fatal(c.receive_text(frame, 0.0), 4400)
    assert c.phase is Phase.CLOSED


def test_audio_before_start_is_4400() -> None:
    c = ServerConnection()
    assert_fatal(c.receive_bytes(b"\x00" * FRAME, 0.0), 4400)


def test_frames_while_authenticating_are_fatal() -> None:
    """§7: before session.start *completes*, anything else is fatal."""
    c = ServerConnection()
    c.receive_text(START, 0.0)
    assert_fatal(c.receive_text(j(type="ping", id=1), 0.1), 4400)
    c = ServerConnection()
    c.receive_text(START, 0.0)
    assert_fatal(c.receive_bytes(b"\x00" * FRAME, 0.1), 4400)


@pytest.mark.parametrize("code", [4401, 4402, 4403, 4429])
def test_start_refused(code: int) -> None:
    c = ServerConnection()
    c.receive_text(START, 0.0)
    assert_fatal(c.start_refused(code, "nope", "refused"), code)
    assert c.phase is Phase.CLOSED
    assert c.receive_text(j(type="ping"), 1.0) == []
    assert c.receive_bytes(b"\x00\x00", 1.0) == []


# ----------------------------------------------------------------- messages


def test_messages_after_start() -> None:
    c = ready()
    [ev] = c.receive_text(j(type="ping", id="a"), 1.0)
    assert isinstance(ev, MessageReceived) and ev.message == m.Ping(id="a")
    [ev] = c.receive_text(j(type="text.input", text="hello").encode(), 1.0)
    assert isinstance(ev, MessageReceived) and ev.message == m.TextInput(text="hello")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "invalid_json"),
        ("[1]", "invalid_message"),
        (j(text="no type"), "invalid_message"),
        (j(type="nope"), "unknown_type"),
        (j(type="text.input"), "invalid_message"),
        (j(type="mcp.response", id="x", status="maybe"), "invalid_message"),
        (j(type="session.start", token="again"), "protocol_error"),
    ],
)
def test_bad_messages_after_start_are_non_fatal(frame: str, code: str | None) -> None:
    c = ready()
    assert_nonfatal(c.receive_text(frame, 1.0), code)
    assert c.phase is Phase.READY
    assert isinstance(c.receive_text(j(type="ping", id=1), 1.0)[0], MessageReceived)


def test_text_frame_limit() -> None:
    c = ready()
    head = '{"type": "ping", "id": "'
    exact = head + "x" * (MAX_TEXT_FRAME - len(head) - 2) + '"}'
    assert len(exact) == MAX_TEXT_FRAME
    [ev] = c.receive_text(exact, 1.0)
    assert isinstance(ev, MessageReceived)
    [ev] = c.receive_text(exact[:-2] + 'x"}', 1.0)
    assert ev == Close(1009, ev.reason)
    assert c.phase is Phase.CLOSED


def test_text_input_limit_counts_characters() -> None:
    c = ready()
    [ev] = c.receive_text(j(type="text.input", text="é" * MAX_TEXT_INPUT_CHARS), 1.0)
    assert isinstance(ev, MessageReceived)
    assert_nonfatal(
        c.receive_text(j(type="text.input", text="a" * (MAX_TEXT_INPUT_CHARS + 1)), 1.0),
        "too_large",
    )
    assert c.phase is Phase.READY


# -------------------------------------------------------------------- audio


def test_audio_is_rechunked_with_stream_time() -> None:
    c = ready()
    got: list[AudioReceived] = []
    sent = 0
    for n in [300, 1024, 2000, 2, 4098, 640]:
        sent += n
        for ev in c.receive_bytes(bytes(n), 1.0):
            assert isinstance(ev, AudioReceived)
            got.append(ev)
            assert ev.t_ms == sent // 2 // 16
    frames = [f for ev in got for f in ev.frames]
    assert all(len(f) == FRAME for f in frames)
    assert len(frames) == sent // FRAME
    index = 0
    for ev in got:
        assert ev.first_frame_index == index
        index += len(ev.frames)


def test_small_chunks_emit_nothing_until_a_frame_is_whole() -> None:
    c = ready()
    assert c.receive_bytes(b"\x00" * 1022, 1.0) == []
    [ev] = c.receive_bytes(b"\x00" * 2, 1.0)
    assert isinstance(ev, AudioReceived) and ev.t_ms == 32 and ev.first_frame_index == 0


def test_content_survives_rechunking() -> None:
    c = ready()
    data = bytes(range(256)) * 16  # 4096 bytes = 4 frames
    out = b""
    for chunk in [data[:300], data[300:1324], data[1324:3324], data[3324:]]:
        for ev in c.receive_bytes(chunk, 1.0):
            assert isinstance(ev, AudioReceived)
            out += b"".join(ev.frames)
    assert out == data


@pytest.mark.parametrize("size", [1, 1023, 16001, MAX_AUDIO_FRAME + 2])
def test_bad_audio_frames_are_dropped_whole(size: int) -> None:
    c = ready()
    c.receive_bytes(b"\x00" * 512, 1.0)
    assert_nonfatal(c.receive_bytes(b"\x00" * size, 1.0))
    [ev] = c.receive_bytes(b"\x00" * 512, 1.0)  # stream time never saw the bad frame
    assert isinstance(ev, AudioReceived) and ev.t_ms == 32 and ev.first_frame_index == 0


def test_audio_frame_of_max_size_is_accepted() -> None:
    c = ready()
    [ev] = c.receive_bytes(b"\x00" * MAX_AUDIO_FRAME, 1.0)
    assert isinstance(ev, AudioReceived) and len(ev.frames) == MAX_AUDIO_FRAME // FRAME


# -------------------------------------------------------------- abuse limit


def test_more_than_100_violations_in_10s_is_4400() -> None:
    c = ready()
    for i in range(VIOLATION_LIMIT):
        assert_nonfatal(c.receive_text("{bad", i * 0.05))
    events = c.receive_text("{bad", 5.0)
    assert_fatal(events, 4400)
    assert c.phase is Phase.CLOSED
    assert c.receive_text(j(type="ping"), 5.1) == []


def test_violations_of_every_kind_count() -> None:
    c = ready()
    kinds = [
        lambda t: c.receive_text("{bad", t),
        lambda t: c.receive_text(j(type="nope"), t),
        lambda t: c.receive_bytes(b"\x00", t),
        lambda t: c.receive_bytes(b"\x00" * (MAX_AUDIO_FRAME + 2), t),
        lambda t: c.record_violation("unknown_mcp_id", "no such id", t),
    ]
    for i in range(VIOLATION_LIMIT):
        assert_nonfatal(kinds[i % len(kinds)](0.01 * i))
    assert_fatal(kinds[0](1.0), 4400)


def test_old_violations_leave_the_window() -> None:
    c = ready()
    for _ in range(VIOLATION_LIMIT):
        assert_nonfatal(c.receive_text("{bad", 0.0))
    # more than 10 s later the first 100 no longer count
    for i in range(VIOLATION_LIMIT):
        assert_nonfatal(c.receive_text("{bad", VIOLATION_WINDOW_S + 0.5 + i * 0.001))
    assert c.phase is Phase.READY
    assert_fatal(c.receive_text("{bad", VIOLATION_WINDOW_S + 1.0), 4400)


def test_a_slow_trickle_of_violations_is_never_fatal() -> None:
    c = ready()
    for i in range(1000):
        assert_nonfatal(c.receive_text("{bad", i * 0.2))  # 50 per 10 s
    assert c.phase is Phase.READY


def test_too_large_text_input_is_not_a_violation() -> None:
    c = ready()
    big = j(type="text.input", text="a" * (MAX_TEXT_INPUT_CHARS + 1))
    for _ in range(2 * VIOLATION_LIMIT):
        assert_nonfatal(c.receive_text(big, 1.0), "too_large")
    assert c.phase is Phase.READY


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_input_starts_no_turn_and_is_not_a_violation(text: str) -> None:
    c = ready()
    for _ in range(2 * VIOLATION_LIMIT):
        assert_nonfatal(c.receive_text(j(type="text.input", text=text), 1.0), "empty_text")
    assert c.phase is Phase.READY


def test_a_second_session_start_is_not_fatal() -> None:
    """Documented in docs/protocol.md: an error, the session goes on unchanged."""
    c = ready()
    err = assert_nonfatal(c.receive_text(START, 1.0), "protocol_error")
    assert "already started" in err.message
    [ev] = c.receive_text(j(type="text.input", text="hi"), 1.0)
    assert isinstance(ev, MessageReceived)
