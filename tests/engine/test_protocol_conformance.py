"""Black-box conformance of the engine's WebSocket endpoint to protocol v1.

Written against ``shared/protocol.md`` (§1 transport, §2 session start, §3/§4
messages, §7 semantics), not against the implementation: a real engine on
127.0.0.1 (``engine_factory``) and a raw ``websockets`` client that can send
anything. Where the engine departs from the contract, the test stays and is
marked ``xfail(strict=True)`` with the discrepancy.

This module holds the shared wire helpers plus the behaviour of a working
session (happy path, isolation, slow readers, stream time); the handshake is in
``test_protocol_auth.py`` and misbehaving clients in ``test_protocol_bad_input.py``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
import websockets
from websockets.asyncio.client import ClientConnection, connect

from tests.fakes import LONG_REPLY, ScriptedLLM
from tests.speech import piper_speech, silence
from voco.auth import user_uuid

# the engine's wire behaviour must not depend on its event loop (voco serve runs uvloop)
pytestmark = pytest.mark.both_loops

ERROR_FIELDS = {"type", "code", "message", "fatal"}
Json = dict[str, Any]


# ------------------------------------------------------------------- helpers


@dataclass
class Closed:
    """How a connection ended: the text messages seen first and the close frame."""

    messages: list[Json]
    code: int | None
    reason: str = ""


@dataclass
class Peer:
    """A raw client: sends anything, records everything it receives."""

    ws: ClientConnection
    messages: list[Json] = field(default_factory=list)
    audio: list[bytes] = field(default_factory=list)
    # (kind, payload) in arrival order, kind "json" or "audio"
    log: list[tuple[str, Any]] = field(default_factory=list)

    async def send(self, obj: Json | str | bytes) -> None:
        await self.ws.send(json.dumps(obj) if isinstance(obj, dict) else obj)

    async def recv(self, timeout: float = 10.0) -> Json | bytes:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        if isinstance(raw, bytes):
            self.audio.append(raw)
            self.log.append(("audio", raw))
            return raw
        msg = json.loads(raw)
        assert isinstance(msg, dict) and isinstance(msg.get("type"), str), raw
        self.messages.append(msg)
        self.log.append(("json", msg))
        return msg

    async def until(self, pred: Callable[[Json], bool], timeout: float = 10.0) -> list[Json]:
        """Text messages received up to and including the first matching ``pred``
        (``timeout`` bounds a hang; it is not a measurement)."""
        out: list[Json] = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    item = await self.recv(timeout)
                    if isinstance(item, bytes):
                        continue
                    out.append(item)
                    if pred(item):
                        return out
        except TimeoutError:
            raise TimeoutError(f"no matching message within {timeout} s; got {out}") from None

    async def until_type(self, type_: str, timeout: float = 10.0) -> list[Json]:
        return await self.until(lambda m: m["type"] == type_, timeout)

    async def closed(self, timeout: float = 10.0) -> Closed:
        """Read until the engine closes the connection."""
        out: list[Json] = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    item = await self.recv(timeout)
                    if not isinstance(item, bytes):
                        out.append(item)
        except websockets.ConnectionClosed as exc:
            rcvd = exc.rcvd
            return Closed(out, rcvd.code if rcvd else None, rcvd.reason if rcvd else "")
        except TimeoutError:
            raise AssertionError(f"engine did not close within {timeout} s; got {out}") from None

    async def ping(self, id_: str | int = "p-1", timeout: float = 10.0) -> list[Json]:
        """Send ``ping``; return everything up to the matching ``pong``."""
        await self.send({"type": "ping", "id": id_})
        out = await self.until(lambda m: m["type"] == "pong" and m.get("id") == id_, timeout)
        assert out[-1] == {"type": "pong", "id": id_}
        return out

    async def close(self) -> None:
        await self.ws.close()


async def open_peer(url: str, *, headers: dict[str, str] | None = None, **kw: Any) -> Peer:
    ws = await connect(url, additional_headers=headers, open_timeout=10, max_size=8 << 20, **kw)
    return Peer(ws)


def start_msg(token: str | None, **kw: Any) -> Json:
    msg: Json = {"type": "session.start", "project_id": "p1"}
    if token is not None:
        msg["token"] = token
    msg.update(kw)
    return msg


async def started(
    url: str, token: str | None, *, headers: dict[str, str] | None = None, **kw: Any
) -> tuple[Peer, Json]:
    """Connect, send ``session.start``, return the peer and its ``session.ready``."""
    peer = await open_peer(url, headers=headers)
    await peer.send(start_msg(token, **kw))
    msgs = await peer.until_type("session.ready")
    errors = [m for m in msgs if m["type"] == "error"]
    assert not errors, errors
    return peer, msgs[-1]


def assert_error(msg: Json, *, fatal: bool, code: str | None = None) -> None:
    """An ``error`` message exactly as §4 defines it."""
    assert msg["type"] == "error", msg
    assert set(msg) == ERROR_FIELDS, msg
    assert isinstance(msg["code"], str) and msg["code"], msg
    assert isinstance(msg["message"], str) and msg["message"], msg
    assert msg["fatal"] is fatal, msg
    if code is not None:
        assert msg["code"] == code, msg


def assert_refused(closed: Closed, close_code: int) -> Json:
    """§2: before closing with 44xx the engine sends one fatal ``error``."""
    assert closed.code == close_code, closed
    assert closed.messages, f"no error before close {closed.code}"
    last = closed.messages[-1]
    assert_error(last, fatal=True)
    assert not any(m["type"] == "session.ready" for m in closed.messages), closed
    return last


@dataclass
class Reply:
    """Everything one turn produced, from ``transcript.final`` to the end."""

    messages: list[Json]
    audio: list[bytes]  # binary frames between audio.start and audio.end
    audio_after_end: int

    def of(self, type_: str) -> list[Json]:
        return [m for m in self.messages if m["type"] == type_]

    def one(self, type_: str) -> Json:
        found = self.of(type_)
        assert len(found) == 1, (type_, self.messages)
        return found[0]


async def turn(peer: Peer, text: str, *, timeout: float = 20.0, barrier: bool = True) -> Reply:
    """Send ``text.input``; collect until ``agent.done``, ``audio.end`` and ``metrics``
    have all arrived (any order, §7). Then, with ``barrier``, a ``ping`` and
    everything up to its ``pong``: a frame the turn still had queued (say, audio
    after ``audio.end``) is sent before the pong, so what the reply leaves behind
    is in ``Reply`` without waiting an arbitrary while for it."""
    await peer.send({"type": "text.input", "text": text})
    msgs: list[Json] = []
    audio: list[bytes] = []
    in_audio = False
    after_end = 0
    need = {"agent.done", "audio.end", "metrics"}
    pong_id = f"barrier-{id(msgs)}"
    async with asyncio.timeout(timeout):
        while True:
            item = await peer.recv(timeout)
            if isinstance(item, bytes):
                if in_audio:
                    audio.append(item)
                else:
                    after_end += 1
                continue
            if item == {"type": "pong", "id": pong_id}:
                break
            msgs.append(item)
            if item["type"] == "audio.start":
                in_audio = True
            elif item["type"] == "audio.end":
                in_audio = False
            if item["type"] in need:
                need.discard(item["type"])
                if not need:
                    if not barrier:
                        break
                    await peer.send({"type": "ping", "id": pong_id})
    return Reply(msgs, audio, after_end)


def sound_span_ms(pcm: npt.NDArray[np.int16], rel: float = 0.05) -> tuple[float, float]:
    """Where audible sound begins and ends in ``pcm`` (16 kHz), in ms."""
    level = np.abs(pcm.astype(np.float32))
    loud = np.flatnonzero(level >= rel * level.max())
    return float(loud[0]) / 16.0, float(loud[-1] + 1) / 16.0


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    """Split ``data`` cycling through ``sizes`` (all even)."""
    out, i, k = [], 0, 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out.append(data[i : i + n])
        i += n
        k += 1
    return out


SHORT = "Sure. Done."


# ---------------------------------------------------------------- happy path


@pytest.mark.timeout(60)
async def test_text_input_turn_mp3(engine_factory: Any) -> None:
    reply_text = "Hello there. This is a short reply."
    async with engine_factory(ScriptedLLM(lambda msgs: [reply_text])) as eng:
        peer, ready = await started(eng.url, eng.token("alice"))
        r = await turn(peer, "what is in the readme")
        await peer.close()

    final = r.one("transcript.final")
    assert final["text"] == "what is in the readme"
    turn_id = final["turn_id"]
    assert isinstance(turn_id, str) and turn_id
    types = [m["type"] for m in r.messages]
    thinking = r.messages.index({"type": "state", "value": "thinking"})
    assert types.index("transcript.final") < thinking < types.index("agent.delta")

    deltas = r.of("agent.delta")
    done = r.one("agent.done")
    assert deltas and all(d["turn_id"] == turn_id for d in deltas)
    response_id = done["response_id"]
    assert all(d["response_id"] == response_id for d in deltas)
    assert "".join(d["text"] for d in deltas) == done["text"] == reply_text
    assert done["turn_id"] == turn_id
    assert done["interrupted"] is False
    assert isinstance(done["model"], str) and done["model"].startswith("scripted")
    # §7: agent.done follows the last agent.delta
    assert max(i for i, t in enumerate(types) if t == "agent.delta") < types.index("agent.done")

    start = r.one("audio.start")
    end = r.one("audio.end")
    assert start == {
        "type": "audio.start",
        "response_id": response_id,
        "encoding": "mp3",
        "sample_rate": 24000,
    }
    assert end["response_id"] == response_id
    assert isinstance(end["duration_ms"], int) and end["duration_ms"] > 0
    assert r.audio, "no binary frames between audio.start and audio.end"
    assert r.audio_after_end == 0, "binary frames outside audio.start … audio.end"
    assert types.index("audio.start") < types.index("audio.end")
    mp3 = b"".join(r.audio)
    info = sf.info(io.BytesIO(mp3))
    assert info.samplerate == 24000 and info.channels == 1
    assert abs(info.duration * 1000 - end["duration_ms"]) < 150, (info.duration, end)
    assert {"type": "state", "value": "speaking"} in r.messages

    metrics = r.one("metrics")
    assert metrics["turn_id"] == turn_id
    timings = {k: v for k, v in metrics.items() if k.endswith("_ms")}
    assert timings and all(isinstance(v, int) and v >= 0 for v in timings.values()), metrics


@pytest.mark.timeout(60)
async def test_text_input_turn_pcm(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM(lambda msgs: ["One, two, three."])) as eng:
        peer, _ = await started(
            eng.url,
            eng.token("alice"),
            audio={"output": {"encoding": "pcm_s16le", "sample_rate": 24000}},
        )
        r = await turn(peer, "count to three")
        await peer.close()
    start = r.one("audio.start")
    end = r.one("audio.end")
    assert start["encoding"] == "pcm_s16le" and start["sample_rate"] == 24000
    assert r.audio and r.audio_after_end == 0
    assert all(len(f) % 2 == 0 for f in r.audio)
    total = sum(len(f) for f in r.audio)
    # 24 kHz * 2 bytes = 48 bytes per ms; well within one binary frame (rounding
    # to whole ms allows 1 ms either way)
    assert end["duration_ms"] > 0
    assert abs(total / 48 - end["duration_ms"]) <= 1, (total, end)
    pcm = np.frombuffer(b"".join(r.audio), dtype="<i2")
    assert np.abs(pcm).max() > 1000, "PCM reply is silent"


# ----------------------------------------------------------------- isolation


@pytest.mark.timeout(60)
async def test_concurrent_sessions_get_their_own_replies(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        alice, ready_a = await started(eng.url, eng.token("alice"))
        bob, ready_b = await started(eng.url, eng.token("bob"))
        assert ready_a["user_id"] == user_uuid("alice") and ready_b["user_id"] == user_uuid("bob")
        assert ready_a["session_id"] != ready_b["session_id"]
        assert ready_a["thread_id"] != ready_b["thread_id"]
        ra, rb = await asyncio.gather(turn(alice, "apples"), turn(bob, "bananas"))
        await alice.close()
        await bob.close()
    assert ra.one("transcript.final")["text"] == "apples"
    assert rb.one("transcript.final")["text"] == "bananas"
    assert ra.one("agent.done")["text"] == "You said: apples"
    assert rb.one("agent.done")["text"] == "You said: bananas"
    assert "bananas" not in json.dumps(ra.messages)
    assert "apples" not in json.dumps(rb.messages)
    assert ra.one("audio.start")["response_id"] != rb.one("audio.start")["response_id"]


@pytest.mark.timeout(60)
async def test_misbehaving_client_does_not_affect_another(engine_factory: Any) -> None:
    async with engine_factory(ScriptedLLM(lambda msgs: [SHORT], delay_s=0.05)) as eng:
        good, _ = await started(eng.url, eng.token("alice"))
        bad, _ = await started(eng.url, eng.token("mallory"))

        async def misbehave() -> Closed:
            with contextlib.suppress(websockets.ConnectionClosed):
                for i in range(150):
                    await bad.send(b"\x00" * 3 if i % 2 else "{nope")
            return await bad.closed(10)

        reply, closed = await asyncio.gather(turn(good, "hello"), misbehave())
        assert closed.code == 4400
        assert_error(closed.messages[-1], fatal=True)
        assert reply.one("agent.done")["text"] == SHORT
        assert reply.one("audio.end")["duration_ms"] > 0
        await good.ping("still-here")
        await good.close()


async def non_reading_peer(url: str) -> Peer:
    """A client with tiny socket buffers and a one-message queue: once a frame or
    two arrive and the test stops calling ``recv``, it stops reading the socket."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = url.split("//")[1].split("/")[0].split(":")
    sock.connect((host, int(port)))
    sock.setblocking(False)
    ws = await connect(url, sock=sock, max_queue=1, open_timeout=10, max_size=8 << 20)
    return Peer(ws)


async def stopped_reading(peer: Peer) -> None:
    """Until frames have backed up into ``peer`` (a :func:`non_reading_peer`):
    its one-message queue is full and websockets has paused the socket, so what
    the engine sends from now on stays in the socket buffers."""
    while peer.ws.transport.is_reading():  # noqa: ASYNC110 (no event for a paused transport)
        await asyncio.sleep(0.01)


@pytest.mark.timeout(30)
async def test_client_that_stops_reading_does_not_stall_others(engine_factory: Any) -> None:
    """A session whose client never reads must not hang the engine or other users."""
    llm = ScriptedLLM(lambda msgs: [LONG_REPLY if "long" in msgs[-1].content else SHORT])
    async with engine_factory(llm) as eng:
        stuck = await non_reading_peer(eng.url)
        ws = stuck.ws
        await stuck.send(
            start_msg(
                eng.token("slowpoke"),
                audio={"output": {"encoding": "pcm_s16le", "sample_rate": 24000}},
            )
        )
        await stuck.until_type("session.ready")
        await stuck.send({"type": "text.input", "text": "tell me something long"})
        # ... and from now on never reads again.
        await stopped_reading(stuck)

        other, _ = await started(eng.url, eng.token("alice"))
        await other.ping("alive")
        reply = await turn(other, "hello")
        assert reply.one("agent.done")["text"] == SHORT
        assert reply.one("audio.end")["duration_ms"] > 0
        assert not ws.transport.is_reading()  # served while the stuck one was still stuck
        await other.close()
        ws.transport.abort()


FLOOD_CAP = 32 * 1024 * 1024  # 3x what Linux loopback buffers hold (about 10 MB)


async def paused(peer: Peer) -> None:
    """Until ``peer``'s writing is paused: its write buffer is over websockets'
    write limit (32 KiB), so its sends wait for the socket to drain."""
    while not peer.ws.paused:  # noqa: ASYNC110 (asyncio has no event for it)
        await asyncio.sleep(0.01)


@pytest.mark.timeout(60)
async def test_ping_flood_without_reading_is_not_buffered_without_bound(
    engine_factory: Any,
) -> None:
    """A client that floods pings and never reads its pongs: the engine must push
    back (stop reading) instead of queueing replies in memory, and stay responsive
    to everyone else meanwhile.

    Without a timer: the flood goes on while another user does a whole turn;
    then the flooder is seen stalled (its sends wait for the socket to drain)
    having pushed no more than the kernel's socket buffers take. An engine that
    read on and queued the pongs would have taken ``FLOOD_CAP`` by then (a
    loopback client pushes that in well under a second), ending the flood."""
    async with engine_factory(ScriptedLLM(lambda msgs: [SHORT])) as eng:
        flood = await non_reading_peer(eng.url)
        await flood.send(start_msg(eng.token("flooder")))
        await flood.until_type("session.ready")
        # ~16 kB per pong, incompressible (permessage-deflate would shrink "zzz…")
        ping = json.dumps({"type": "ping", "id": base64.b64encode(os.urandom(12_000)).decode()})
        pushed = 0

        async def push() -> None:
            nonlocal pushed
            with contextlib.suppress(websockets.ConnectionClosed):
                while pushed < FLOOD_CAP:
                    await flood.ws.send(ping)
                    pushed += len(ping)

        flooding = asyncio.create_task(push())
        try:
            await paused(flood)
            other, _ = await started(eng.url, eng.token("alice"))
            await other.ping("responsive")
            reply = await turn(other, "hello")
            assert reply.one("agent.done")["text"] == SHORT
            await other.close()
            stalled = asyncio.create_task(paused(flood))
            await asyncio.wait([stalled, flooding], return_when=asyncio.FIRST_COMPLETED)
            stalled.cancel()
            assert not flooding.done() and pushed < FLOOD_CAP, pushed
        finally:
            flood.ws.transport.abort()
            flooding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flooding


# --------------------------------------------------------------- stream time


def _place_speech(lead_ms: int, sizes: list[int]) -> tuple[list[bytes], float, float]:
    """Silence, then speech, then silence, cut in chunks of ``sizes`` bytes; also
    the stream times (ms) at which the speech's sound begins and ends."""
    speech = piper_speech("Please open the readme file.")
    pcm = np.concatenate([silence(lead_ms), speech, silence(1200)]).astype("<i2")
    begin, end = sound_span_ms(speech)
    return chunked(pcm.tobytes(), sizes), lead_ms + begin, lead_ms + end


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("lead_ms", "sizes"),
    [(1500, [300, 1024, 2000]), (2210, [2, 4098, 640, 1500])],
)
async def test_vad_speech_start_is_in_stream_time(
    engine_factory: Any, lead_ms: int, sizes: list[int]
) -> None:
    chunks, expected, expected_end = _place_speech(lead_ms, sizes)
    # after about 600 ms of the lead silence, also send frames the engine must
    # drop whole (§7): one odd-length and one oversized. Had they counted, stream
    # time would shift by 500 ms and 2 s.
    cut = 600 * 32 // max(1, sum(sizes) // len(sizes))
    async with engine_factory(ScriptedLLM(lambda msgs: [SHORT])) as eng:
        peer, _ = await started(eng.url, eng.token("alice"))
        for c in chunks[:cut]:
            await peer.send(c)
        await peer.send(b"\x00" * 16001)
        await peer.send(b"\x00" * (64 * 1024 + 2))
        for c in chunks[cut:]:
            await peer.send(c)
        msgs = await peer.until_type("vad.speech_end", timeout=20)
        await peer.close()
    errors = [m for m in msgs if m["type"] == "error"]
    assert len(errors) == 2, errors
    for e in errors:
        assert_error(e, fatal=False)
    starts = [m for m in msgs if m["type"] == "vad.speech_start"]
    assert len(starts) == 1, msgs
    t = starts[0]["t_ms"]
    assert isinstance(t, int)
    assert abs(t - expected) <= 100, (t, expected)
    end = msgs[-1]["t_ms"]
    assert isinstance(end, int)
    # the end is less sharp (a VAD tail, hysteresis): a looser bound
    assert abs(end - expected_end) <= 200, (end, expected_end)
