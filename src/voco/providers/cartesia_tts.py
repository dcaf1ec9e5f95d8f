"""Cartesia Sonic text-to-speech over its WebSocket API.

Why the WebSocket (not ``/tts/bytes``): one connection serves every clause of
every turn, so the TCP+TLS setup is paid once instead of per clause, and each
generation can be cancelled by ``context_id`` on barge-in - Cartesia stops
generating instead of us merely ignoring the bytes.

Why ``websockets`` directly rather than the ``cartesia`` SDK's websocket helper:
the wire protocol is a handful of JSON messages, and we need our own handling of
drops (fail the in-flight clause, reconnect lazily for the next) and of
cancellation. The headers sent are the ones the official SDK sends
(``Authorization: Bearer``, ``Cartesia-Version``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from voco.providers.base import TTS, ProviderError, TTSCapabilities
from voco.providers.errors import (
    retryable_status,
    websocket_closed_error,
    websocket_connect_error,
    websocket_url,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "wss://api.cartesia.ai"
DEFAULT_VERSION = "2026-08-14"  # what the cartesia SDK (v4) sends
DEFAULT_MODEL = "sonic-2"
# A stock voice from Cartesia's quick-start documentation.
DEFAULT_VOICE = "f786b574-daa5-4673-aa0c-cbe3e8534c02"

_Item = dict[str, Any] | ProviderError


class CartesiaTTS(TTS):
    """Streaming PCM16 at 24 kHz, one Cartesia *context* per clause.

    ``api_key``/``base_url``/``voice_id`` default to ``CARTESIA_API_KEY``,
    ``CARTESIA_BASE_URL`` and ``VOCO_CARTESIA_VOICE``. ``chunk_timeout`` bounds
    the wait for each next message of a generation (first audio included).
    """

    name = "cartesia"
    capabilities = TTSCapabilities(streaming=True)
    sample_rate = 24_000

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        voice_id: str | None = None,
        model_id: str = DEFAULT_MODEL,
        language: str | None = "en",
        version: str | None = None,
        connect_timeout: float = 5.0,
        chunk_timeout: float = 10.0,
    ) -> None:
        key = api_key or os.environ.get("CARTESIA_API_KEY")
        if not key:
            raise ProviderError(self.name, "no API key (set CARTESIA_API_KEY)", retryable=False)
        self._api_key = key
        base = base_url or os.environ.get("CARTESIA_BASE_URL") or DEFAULT_BASE_URL
        self.url = websocket_url(base, "/tts/websocket")
        self._version = version or os.environ.get("CARTESIA_VERSION") or DEFAULT_VERSION
        self._voice_id = voice_id or os.environ.get("VOCO_CARTESIA_VOICE") or DEFAULT_VOICE
        self._model_id = model_id
        self._language = language
        self._connect_timeout = connect_timeout
        self._chunk_timeout = chunk_timeout
        self._conn: _Connection | None = None
        self._connect_lock = asyncio.Lock()

    @property
    def voice_name(self) -> str:
        """Shown to clients (``session.ready.voice``)."""
        return self._voice_id

    async def warmup(self) -> None:
        """Open the WebSocket now so the first clause does not pay for the handshake."""
        await self._connection()

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        if not text.strip():
            return
        context_id = uuid.uuid4().hex
        request: dict[str, Any] = {
            "model_id": self._model_id,
            "transcript": text,
            "voice": {"mode": "id", "id": self._voice_id},
            "output_format": {
                "container": "raw",
                "encoding": "pcm_s16le",
                "sample_rate": self.sample_rate,
            },
            "context_id": context_id,
            "continue": False,
        }
        if self._language:
            request["language"] = self._language
        conn = await self._start(context_id, request)
        queue = conn.contexts[context_id]
        finished = False  # the server ended this context (done or error)
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), self._chunk_timeout)
                except TimeoutError:
                    raise ProviderError(
                        self.name, f"no audio for {self._chunk_timeout:g} s"
                    ) from None
                if isinstance(item, ProviderError):
                    finished = True
                    raise item
                kind = item.get("type")
                if kind == "error":
                    finished = True
                    raise _server_error(item)
                if kind == "chunk" and item.get("data"):
                    try:
                        pcm = base64.b64decode(item["data"], validate=True)
                    except (binascii.Error, TypeError) as exc:
                        raise ProviderError(self.name, "bad base64 audio chunk") from exc
                    if pcm:
                        yield pcm
                if kind == "done" or item.get("done") is True:
                    finished = True
                    return
        finally:
            conn.contexts.pop(context_id, None)
            if not finished:
                # Cancelled (barge-in), abandoned, or timed out: tell Cartesia to
                # stop generating this context. Best effort - the socket may be gone.
                with contextlib.suppress(Exception):
                    cancel = {"context_id": context_id, "cancel": True}
                    await asyncio.wait_for(conn.send(cancel), 1.0)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close(ProviderError(self.name, "provider closed", retryable=False))

    # ------------------------------------------------------------------ internals

    async def _connection(self) -> _Connection:
        """The shared socket, (re)connected on first use or after a drop."""
        async with self._connect_lock:
            if self._conn is not None and self._conn.alive:
                return self._conn
            headers = {
                "Authorization": f"Bearer {self._api_key}",
                "Cartesia-Version": self._version,
            }
            try:
                ws = await websockets.connect(
                    self.url,
                    additional_headers=headers,
                    open_timeout=self._connect_timeout,
                    max_size=2**24,
                    # PCM does not compress: deflating every 32 ms frame (and inflating
                    # every reply) was CPU per session for nothing (bench/bench_load.py)
                    compression=None,
                )
            except Exception as exc:
                raise websocket_connect_error(self.name, exc) from exc
            self._conn = _Connection(ws)
            return self._conn

    async def _start(self, context_id: str, request: dict[str, Any]) -> _Connection:
        """Register the context and send its request. If the idle socket turns out
        to be closed (servers drop idle connections), reconnect once: nothing has
        been generated yet, so resending is safe."""
        for attempt in (1, 2):
            conn = await self._connection()
            conn.contexts[context_id] = asyncio.Queue()
            try:
                await conn.send(request)
                return conn
            except ProviderError:
                conn.contexts.pop(context_id, None)
                conn.mark_dead()
                if attempt == 2:
                    raise
            except BaseException:  # cancelled while sending
                conn.contexts.pop(context_id, None)
                raise
        raise AssertionError("unreachable")


class _Connection:
    """One WebSocket, its reader task and the contexts (clauses) in flight on it.

    The reader routes each message to its context's queue by ``context_id``; when
    the socket closes it fails every context still waiting, so a drop surfaces
    as a :class:`ProviderError` in each in-flight ``synthesize``.
    """

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.contexts: dict[str, asyncio.Queue[_Item]] = {}
        self._dead = False
        self._reader = asyncio.create_task(self._read())

    @property
    def alive(self) -> bool:
        return not self._dead and not self._reader.done()

    def mark_dead(self) -> None:
        self._dead = True

    async def send(self, msg: dict[str, Any]) -> None:
        try:
            await self.ws.send(json.dumps(msg))
        except ConnectionClosed as exc:
            self._dead = True
            raise websocket_closed_error(CartesiaTTS.name, exc) from exc

    async def close(self, error: ProviderError) -> None:
        self._dead = True
        self._reader.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 2.0)
        self._broadcast(error)

    async def _read(self) -> None:
        error: ProviderError
        try:
            async for raw in self.ws:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    log.warning("cartesia: ignoring a non-JSON message")
                    continue
                if not isinstance(msg, dict):
                    continue
                queue = self.contexts.get(str(msg.get("context_id")))
                if queue is not None:
                    queue.put_nowait(msg)
                elif msg.get("type") == "error" and not msg.get("context_id"):
                    self._broadcast(_server_error(msg))  # connection-level error
            error = ProviderError(CartesiaTTS.name, "connection closed by server")
        except ConnectionClosed as exc:
            error = websocket_closed_error(CartesiaTTS.name, exc)
        self._dead = True
        self._broadcast(error)

    def _broadcast(self, error: ProviderError) -> None:
        for queue in self.contexts.values():
            queue.put_nowait(error)


def _server_error(msg: dict[str, Any]) -> ProviderError:
    """``{"type":"error","status_code":..,"title":..,"message":..}`` -> ProviderError."""
    status = msg.get("status_code")
    status = status if isinstance(status, int) else None
    title = msg.get("title") or msg.get("error_code") or "error"
    message = msg.get("message") or msg.get("error") or ""
    return ProviderError(
        CartesiaTTS.name,
        f"{title}: {message}".rstrip(": ") + (f" (status {status})" if status else ""),
        retryable=retryable_status(status),
    )
