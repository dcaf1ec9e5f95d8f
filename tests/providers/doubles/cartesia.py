"""Cartesia TTS WebSocket double (``wss://api.cartesia.ai/tts/websocket``).

Protocol, as documented by Cartesia and implemented by its SDK:

* Handshake: API key as ``Authorization: Bearer``, ``X-API-Key`` or ``?api_key=``;
  API version as ``Cartesia-Version`` header or ``?cartesia_version=`` (required).
* Client -> server: generation requests ``{model_id, transcript, voice:{mode:"id",
  id}, output_format:{container:"raw", encoding, sample_rate}, context_id,
  continue, language?}``; ``{context_id, cancel: true}`` stops a context - no
  further messages are sent for it.
* Server -> client, per context: ``{"type":"chunk","data":<base64>,"done":false,
  "status_code":206,"step_time":..,"context_id":..}`` ... ``{"type":"done",
  "done":true,"status_code":206,"context_id":..}``; failures ``{"type":"error",
  "done":true,"status_code":..,"title":..,"message":..,"error_code":..}``.

Contexts are generated concurrently (the socket multiplexes), and the audio is a
real 24 kHz (or requested rate) PCM sine tone whose length follows the text.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

ENCODINGS = {"pcm_s16le", "pcm_f32le", "pcm_mulaw", "pcm_alaw"}
SAMPLE_RATES = {8000, 16000, 22050, 24000, 44100, 48000}


def tone(sample_rate: int, ms: int, freq: float = 220.0) -> bytes:
    n = sample_rate * ms // 1000
    return b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / sample_rate)))
        for i in range(n)
    )


@dataclass
class CartesiaDouble:
    api_key: str = "sk_car_test"
    ms_per_char: int = 40
    chunk_ms: int = 40
    chunk_delay: float = 0.002
    fail_next: tuple[int, str, str] | None = None  # (status_code, title, message)
    drop_after_chunks: int | None = None  # abort the TCP connection mid-generation
    stall: bool = False  # accept requests, never answer
    handshake_status: int | None = None
    connections: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)
    chunks_sent: dict[str, int] = field(default_factory=dict)
    handshake_headers: list[dict[str, str]] = field(default_factory=list)
    live: set[ServerConnection] = field(default_factory=set)
    url: str = ""
    # notified after every client message is handled: tests wait on what the
    # double saw (``until``) instead of sleeping for it
    _seen: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def until(self, pred: Callable[[], bool], timeout: float = 10.0) -> None:
        """Until ``pred()`` holds for what the double has received so far."""
        async with asyncio.timeout(timeout), self._seen:
            await self._seen.wait_for(pred)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshake_headers.append(dict(request.headers.raw_items()))
        if self.handshake_status is not None:
            return connection.respond(self.handshake_status, "unavailable\n")
        parts = urlsplit(request.path)
        if parts.path != "/tts/websocket":
            return connection.respond(404, "Not Found\n")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        key = (
            query.get("api_key")
            or request.headers.get("X-API-Key")
            or request.headers.get("Authorization", "").removeprefix("Bearer ")
        )
        if key != self.api_key:
            return connection.respond(401, "Invalid API key\n")
        if not (query.get("cartesia_version") or request.headers.get("Cartesia-Version")):
            return connection.respond(400, "Cartesia-Version is required\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.live.add(ws)
        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            async for raw in ws:
                await self._handle(ws, json.loads(raw), tasks)
        except ConnectionClosed:
            pass
        finally:
            self.live.discard(ws)
            for task in tasks.values():
                task.cancel()

    async def _handle(
        self, ws: ServerConnection, msg: dict[str, Any], tasks: dict[str, asyncio.Task[None]]
    ) -> None:
        try:
            await self._message(ws, msg, tasks)
        finally:
            async with self._seen:
                self._seen.notify_all()

    async def _message(
        self, ws: ServerConnection, msg: dict[str, Any], tasks: dict[str, asyncio.Task[None]]
    ) -> None:
        ctx = msg.get("context_id")
        if msg.get("cancel") is True:
            self.cancels.append(ctx)
            task = tasks.pop(ctx, None)
            if task is not None:
                task.cancel()
            return
        self.requests.append(msg)
        problem = self._validate(msg)
        if problem is not None:
            await self._error(ws, ctx, 400, "Invalid request", problem)
            return
        if self.fail_next is not None:
            status, title, message = self.fail_next
            self.fail_next = None
            await self._error(ws, ctx, status, title, message)
            return
        if not self.stall:
            tasks[ctx] = asyncio.create_task(self._generate(ws, msg))

    @staticmethod
    def _validate(msg: dict[str, Any]) -> str | None:
        if not isinstance(msg.get("model_id"), str):
            return "model_id is required"
        if not isinstance(msg.get("transcript"), str):
            return "transcript is required"
        if not isinstance(msg.get("context_id"), str) or not msg["context_id"]:
            return "context_id is required"
        voice = msg.get("voice") or {}
        if voice.get("mode") != "id" or not isinstance(voice.get("id"), str):
            return "voice must be {mode: 'id', id: <voice id>}"
        fmt = msg.get("output_format") or {}
        if fmt.get("container") != "raw" or fmt.get("encoding") not in ENCODINGS:
            return "output_format: container must be raw with a pcm encoding"
        if fmt.get("sample_rate") not in SAMPLE_RATES:
            return "output_format.sample_rate is not supported"
        if "continue" in msg and not isinstance(msg["continue"], bool):
            return "continue must be a boolean"
        return None

    async def _error(
        self, ws: ServerConnection, ctx: str | None, status: int, title: str, message: str
    ) -> None:
        await ws.send(
            json.dumps(
                {
                    "type": "error",
                    "done": True,
                    "status_code": status,
                    "title": title,
                    "message": message,
                    "error_code": title.lower().replace(" ", "_"),
                    "context_id": ctx,
                    "request_id": "double",
                }
            )
        )

    async def _generate(self, ws: ServerConnection, msg: dict[str, Any]) -> None:
        ctx = msg["context_id"]
        rate = msg["output_format"]["sample_rate"]
        total_ms = max(200, self.ms_per_char * len(msg["transcript"]))
        pcm = tone(rate, total_ms)
        step = rate * self.chunk_ms // 1000 * 2
        self.chunks_sent[ctx] = 0
        try:
            for i in range(0, len(pcm), step):
                if (
                    self.drop_after_chunks is not None
                    and self.chunks_sent[ctx] >= self.drop_after_chunks
                ):
                    ws.transport.abort()
                    return
                await ws.send(
                    json.dumps(
                        {
                            "type": "chunk",
                            "data": base64.b64encode(pcm[i : i + step]).decode(),
                            "done": False,
                            "status_code": 206,
                            "step_time": 1.0,
                            "context_id": ctx,
                        }
                    )
                )
                self.chunks_sent[ctx] += 1
                await asyncio.sleep(self.chunk_delay)
            await ws.send(
                json.dumps({"type": "done", "done": True, "status_code": 206, "context_id": ctx})
            )
        except ConnectionClosed:
            pass

    async def drop_all(self) -> None:
        """Close every live connection from the server side (e.g. an idle timeout)."""
        for ws in list(self.live):
            await ws.close(1001, "idle timeout")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CartesiaDouble]:
        async with serve(
            self._handler, "127.0.0.1", 0, process_request=self._process_request
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            self.url = f"ws://127.0.0.1:{port}"
            yield self
