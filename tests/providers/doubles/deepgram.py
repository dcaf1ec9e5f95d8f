"""Deepgram live-transcription double (``wss://api.deepgram.com/v1/listen``).

Protocol, as documented by Deepgram:

* Handshake: ``Authorization: Token <key>``; query ``model``, ``encoding``,
  ``sample_rate``, ``channels``, ``interim_results``, ``endpointing`` ...
  A bad key is refused with HTTP 401 before the upgrade.
* Client -> server: binary audio; text ``{"type":"KeepAlive"}`` (no reply, resets
  the ~10 s idle timer), ``{"type":"Finalize"}`` (flush: buffered audio comes
  back as a ``Results`` with ``is_final`` and ``from_finalize: true`` - *not
  guaranteed* when nothing is buffered), ``{"type":"CloseStream"}`` (flush,
  ``Metadata``, close).
* Server -> client: ``Results`` (``channel.alternatives[0].transcript``,
  ``is_final``, ``speech_final``, ``start``, ``duration``, ``from_finalize``),
  ``Metadata``; an idle stream is closed with 1011 ``NET-0001``.

"Recognition" is scripted: a word is 20 ms frames of one constant sample value,
and :attr:`DeepgramDouble.vocab` maps values to words (see :meth:`audio`).
Endpointing works on the silent (all-zero) frames that follow speech.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

SAMPLE_RATE = 16_000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2
WORDS = ["list", "the", "files", "run", "tests", "please", "open", "main", "read", "readme"]


@dataclass
class Session:
    """What one client connection sent (for assertions)."""

    query: dict[str, str]
    headers: dict[str, str]
    keyterms: list[str] = field(default_factory=list)  # repeated ``keyterm`` params
    audio_bytes: int = 0
    control: list[str] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    closed_with: tuple[int, str] | None = None


@dataclass
class DeepgramDouble:
    api_key: str = "dg-test"
    vocab: dict[int, str] = field(
        default_factory=lambda: {1000 + 100 * i: w for i, w in enumerate(WORDS)}
    )
    endpointing_default_ms: int = 10
    interim_every_frames: int = 5  # an interim result per 100 ms of speech
    min_word_frames: int = 3  # a word is "heard" after 60 ms
    idle_timeout: float = 10.0
    finalize_responds: bool = True
    silent: bool = False  # never sends anything (a hung service)
    # repeat a finalized segment's words as a late interim result when the next
    # audio arrives (a client must place results by their start and duration)
    late_results: bool = False
    malformed_results: bool = False  # ``start`` is not a number (a broken service)
    handshake_status: int | None = None  # refuse the upgrade with this HTTP status
    drop_after_bytes: int | None = None  # abort the TCP connection after this much audio
    error_after_bytes: int | None = None  # send an Error message and close 1011
    sessions: list[Session] = field(default_factory=list)
    url: str = ""

    # ------------------------------------------------------------------ audio helpers

    def audio(self, text: str, word_ms: int = 200, trailing_silence_ms: int = 0) -> bytes:
        """PCM that this double "hears" as ``text``."""
        by_word = {w: amp for amp, w in self.vocab.items()}
        out = bytearray()
        for word in text.split():
            out += _frames(by_word[word], word_ms // FRAME_MS)
            out += _frames(0, 1)  # a short gap so repeated words stay separate
        out += _frames(0, trailing_silence_ms // FRAME_MS)
        return bytes(out)

    # ------------------------------------------------------------------ server

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.handshake_status is not None:
            return connection.respond(self.handshake_status, "Service Unavailable\n")
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            return _json_response(
                401,
                {
                    "err_code": "INVALID_AUTH",
                    "err_msg": "Invalid credentials.",
                    "request_id": "double",
                },
            )
        parts = urlsplit(request.path)
        if parts.path != "/v1/listen":
            return connection.respond(404, "Not Found\n")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if (
            query.get("encoding") != "linear16"
            or query.get("sample_rate") != str(SAMPLE_RATE)
            or query.get("channels", "1") != "1"
        ):
            return _json_response(
                400, {"err_code": "Bad Request", "err_msg": "unsupported audio format"}
            )
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        parts = urlsplit(ws.request.path)
        session = Session(
            query={k: v[-1] for k, v in parse_qs(parts.query).items()},
            headers=dict(ws.request.headers.raw_items()),
            keyterms=parse_qs(parts.query).get("keyterm", []),
        )
        self.sessions.append(session)
        stream = _Recognizer(self, ws, session)
        await stream.run()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[DeepgramDouble]:
        async with serve(
            self._handler, "127.0.0.1", 0, process_request=self._process_request
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            self.url = f"ws://127.0.0.1:{port}"
            yield self


def _frames(value: int, count: int) -> bytes:
    return struct.pack("<h", value) * (FRAME_BYTES // 2) * count


def _json_response(status: int, body: dict[str, Any]) -> Response:
    data = json.dumps(body).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    reason = {400: "Bad Request", 401: "Unauthorized"}.get(status, "Error")
    return Response(status, reason, headers, data)


class _Recognizer:
    """Per-connection state: segments, endpointing, interim/final results."""

    def __init__(self, double: DeepgramDouble, ws: ServerConnection, session: Session) -> None:
        self.d = double
        self.ws = ws
        self.session = session
        self.endpointing_ms = int(
            session.query.get("endpointing", double.endpointing_default_ms) or 0
        )
        self.interim = session.query.get("interim_results") == "true"
        self.buf = bytearray()
        self.frames = 0  # frames processed on this connection
        self.seg_start = 0  # first frame not yet covered by a final result
        self.words: list[str] = []
        self.amp = 0
        self.run_len = 0
        self.silence = 0
        self.since_interim = 0
        self.last_activity = time.monotonic()
        self.late: dict[str, Any] | None = None  # the late result to send (late_results)

    async def run(self) -> None:
        watchdog = asyncio.create_task(self._watchdog())
        try:
            async for message in self.ws:
                self.last_activity = time.monotonic()
                if isinstance(message, bytes):
                    await self._audio(message)
                else:
                    if not await self._control(message):
                        return
        except ConnectionClosed:
            pass
        finally:
            watchdog.cancel()

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            if time.monotonic() - self.last_activity >= self.d.idle_timeout:
                await self._close(
                    1011,
                    "NET-0001: Deepgram did not receive audio data or a text message "
                    "within the timeout window.",
                )
                return

    async def _close(self, code: int, reason: str) -> None:
        self.session.closed_with = (code, reason)
        await self.ws.close(code, reason)

    async def _send(self, msg: dict[str, Any]) -> None:
        if self.d.silent:
            return
        if msg.get("type") == "Results":
            if self.d.malformed_results:
                msg = {**msg, "start": "soon"}
            self.session.results.append(msg)
        await self.ws.send(json.dumps(msg))

    async def _audio(self, data: bytes) -> None:
        self.session.audio_bytes += len(data)
        if (
            self.d.drop_after_bytes is not None
            and self.session.audio_bytes >= self.d.drop_after_bytes
        ):
            self.ws.transport.abort()
            return
        if (
            self.d.error_after_bytes is not None
            and self.session.audio_bytes >= self.d.error_after_bytes
        ):
            await self._send(
                {"type": "Error", "variant": "InternalError", "description": "model crashed"}
            )
            await self._close(1011, "NET-0000: internal server error")
            return
        if self.late is not None:
            late, self.late = self.late, None
            await self._send(late)
        self.buf += data
        while len(self.buf) >= FRAME_BYTES:
            frame = bytes(self.buf[:FRAME_BYTES])
            del self.buf[:FRAME_BYTES]
            await self._frame(struct.unpack_from("<h", frame)[0])

    async def _frame(self, value: int) -> None:
        self.frames += 1
        if value != 0:
            self.silence = 0
            if value == self.amp:
                self.run_len += 1
            else:
                self.amp, self.run_len = value, 1
            if self.run_len == self.d.min_word_frames:
                self.words.append(self.d.vocab.get(value, "[unk]"))
        else:
            self.amp, self.run_len = 0, 0
            self.silence += 1
            if (
                self.words
                and self.endpointing_ms > 0
                and self.silence * FRAME_MS >= self.endpointing_ms
            ):
                await self._final(speech_final=True)
                return
        self.since_interim += 1
        if self.interim and self.words and self.since_interim >= self.d.interim_every_frames:
            self.since_interim = 0
            await self._send(self._results(is_final=False))

    def _results(
        self, *, is_final: bool, speech_final: bool = False, from_finalize: bool = False
    ) -> dict[str, Any]:
        start = self.seg_start * FRAME_MS / 1000
        duration = (self.frames - self.seg_start) * FRAME_MS / 1000
        transcript = " ".join(self.words)
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(duration, 3),
            "start": round(start, 3),
            "is_final": is_final,
            "speech_final": speech_final,
            "channel": {
                "alternatives": [
                    {
                        "transcript": transcript,
                        "confidence": 0.99 if transcript else 0.0,
                        "words": [
                            {"word": w, "start": start, "end": start + duration, "confidence": 0.99}
                            for w in self.words
                        ],
                    }
                ]
            },
            "metadata": {
                "request_id": "double",
                "model_info": {"name": "general-nova-3", "version": "double", "arch": "nova-3"},
                "model_uuid": "00000000-0000-0000-0000-000000000000",
            },
            "from_finalize": from_finalize,
        }

    async def _final(self, *, speech_final: bool = False, from_finalize: bool = False) -> None:
        await self._send(
            self._results(is_final=True, speech_final=speech_final, from_finalize=from_finalize)
        )
        self.seg_start = self.frames
        self.words = []
        self.since_interim = 0

    async def _control(self, text: str) -> bool:
        try:
            msg = json.loads(text)
        except ValueError:
            await self._send(
                {
                    "type": "Error",
                    "variant": "SchemaError",
                    "description": "bad JSON",
                    "message": text,
                }
            )
            return True
        kind = msg.get("type")
        self.session.control.append(kind)
        if kind == "KeepAlive":
            return True
        if kind == "Finalize":
            if self.d.finalize_responds and self.frames > self.seg_start:
                if self.d.late_results:
                    self.late = self._results(is_final=False)
                await self._final(from_finalize=True)
            return True
        if kind == "CloseStream":
            if self.frames > self.seg_start:
                await self._final()
            await self._send(
                {
                    "type": "Metadata",
                    "transaction_key": "deprecated",
                    "request_id": "double",
                    "sha256": "0" * 64,
                    "created": "2026-01-01T00:00:00.000Z",
                    "duration": self.frames * FRAME_MS / 1000,
                    "channels": 1,
                }
            )
            await self._close(1000, "")
            return False
        await self._send(
            {"type": "Error", "variant": "SchemaError", "description": f"unknown type {kind!r}"}
        )
        return True
