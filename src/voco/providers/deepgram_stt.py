"""Deepgram live transcription over its documented WebSocket protocol.

Why ``websockets`` directly rather than ``deepgram-sdk``: the live protocol is
small (binary audio up; ``KeepAlive``/``Finalize``/``CloseStream`` text frames up;
``Results``/``Metadata``/``Error`` JSON down), and the engine needs exact control
over the two things that matter for latency and robustness - waiting for the
``from_finalize`` result at end of speech, and turning every close or timeout
into a :class:`ProviderError`. The SDK would add a thread/callback layer between
us and those frames.

Why a pool of connections, one utterance at a time on each: a WebSocket per
utterance paid a TCP+TLS handshake at every onset (audio waits behind it) and
left ~80 objects of cyclic garbage per utterance, the biggest source of the
engine's full collections under load (bench/bench_load.py: ~40 connections a
second at 100 sessions). An utterance ends with ``Finalize`` and its reply, so
a connection goes back to the pool only once every result of its audio is in:
no late result of one turn can reach the next, and a result whose audio ends
before the utterance began is dropped anyway (the service's ``start`` and
``duration`` count seconds of audio on the connection). A connection in doubt
(a flush that timed out, a cancelled finish, an error) is closed, never reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Coroutine, Sequence
from typing import Any
from urllib.parse import urlencode

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from voco.providers.base import (
    STT,
    PartialCallback,
    ProviderError,
    SpeechStream,
    STTCapabilities,
)
from voco.providers.errors import (
    websocket_closed_error,
    websocket_connect_error,
    websocket_url,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "wss://api.deepgram.com"
SAMPLE_RATE = 16_000
_BYTES_PER_SECOND = SAMPLE_RATE * 2
MAX_KEYTERMS = 50  # Deepgram caps keyterms per request; the best names come first
# Deepgram closes with 1008 when the payload cannot be decoded as audio
# (DATA-0000): resending the same audio cannot help.
_FATAL_CLOSE_CODES = frozenset({1008})
_FLUSHED_S = 0.03  # audio not yet covered by final results that needs no Finalize
_FINALIZE = json.dumps({"type": "Finalize"})
_KEEPALIVE = json.dumps({"type": "KeepAlive"})
_CLOSE_STREAM = json.dumps({"type": "CloseStream"})


class DeepgramSTT(STT):
    """Streaming STT with interim results (``nova-3`` by default).

    ``endpointing_ms`` is Deepgram's own pause detection; the engine's VAD decides
    the end of the turn, so it only splits long utterances into final segments.
    ``keepalive_interval`` keeps a connection open while no audio flows (Deepgram
    closes an idle one after ~10 s). ``finalize_timeout`` bounds the wait for
    the flushed result after ``Finalize``. ``pool_size`` idle connections are
    kept for the next utterances, each for up to ``pool_idle_s`` (idle ones
    count against the account's concurrent-stream limit; 0 closes every
    connection after its utterance). Without keep-alives Deepgram's own idle
    timeout ends a pooled connection instead.
    """

    name = "deepgram"
    capabilities = STTCapabilities(streaming=True, interim_results=True, vocabulary=True)

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str = "nova-3",
        language: str | None = "en",
        endpointing_ms: int = 300,
        smart_format: bool = True,
        keepalive_interval: float | None = 4.0,
        connect_timeout: float = 5.0,
        finalize_timeout: float = 3.0,
        pool_size: int = 32,
        pool_idle_s: float = 20.0,
    ) -> None:
        key = api_key or os.environ.get("DEEPGRAM_API_KEY")
        if not key:
            raise ProviderError(self.name, "no API key (set DEEPGRAM_API_KEY)", retryable=False)
        self._api_key = key
        self._model = model
        params: dict[str, str] = {
            "model": model,
            "encoding": "linear16",
            "sample_rate": str(SAMPLE_RATE),
            "channels": "1",
            "interim_results": "true",
            "endpointing": str(endpointing_ms),
            "smart_format": "true" if smart_format else "false",
        }
        if language:
            params["language"] = language
        base = base_url or os.environ.get("DEEPGRAM_BASE_URL") or DEFAULT_BASE_URL
        self.url = websocket_url(base, "/v1/listen") + "?" + urlencode(params)
        self._keepalive_interval = keepalive_interval
        self._connect_timeout = connect_timeout
        self._finalize_timeout = finalize_timeout
        self._pool_size = pool_size
        self._pool_idle_s = pool_idle_s
        self._idle: dict[str, list[_Connection]] = {}  # by URL, most recently parked last
        self._connections: set[_Connection] = set()  # every one not yet closed
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    def stream_url(self, vocabulary: Sequence[str] = ()) -> str:
        """The listen URL, with the project's names as ``keyterm`` (Nova-3) or
        ``keywords`` (older models) so the service prefers their spelling."""
        terms = list(dict.fromkeys(t.strip() for t in vocabulary if t.strip()))[:MAX_KEYTERMS]
        if not terms:
            return self.url
        key = "keyterm" if self._model.startswith("nova-3") else "keywords"
        return self.url + "&" + urlencode([(key, t) for t in terms])

    @property
    def idle_connections(self) -> int:
        return sum(len(v) for v in self._idle.values())

    async def open_stream(
        self, on_partial: PartialCallback | None = None, *, vocabulary: Sequence[str] = ()
    ) -> SpeechStream:
        url = self.stream_url(vocabulary)  # keyterms are fixed per connection
        conn = self._reuse(url) or await self._connect(url)
        return conn.begin(on_partial)

    async def aclose(self) -> None:
        """Abandon open utterances, close every connection and wait for them."""
        self._closed = True
        for conn in list(self._connections):
            if conn.stream is not None:
                conn.stream.abandon()
            self.retire(conn)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    # ------------------------------------------------------------ the pool

    async def _connect(self, url: str) -> _Connection:
        try:
            ws = await websockets.connect(
                url,
                additional_headers={"Authorization": f"Token {self._api_key}"},
                open_timeout=self._connect_timeout,
                max_size=2**22,
                # PCM does not compress: deflating every 32 ms frame (and inflating
                # every reply) was CPU per session for nothing (bench/bench_load.py)
                compression=None,
            )
        except Exception as exc:
            raise websocket_connect_error(self.name, exc) from exc
        conn = _Connection(self, ws, url)
        self._connections.add(conn)
        return conn

    def _reuse(self, url: str) -> _Connection | None:
        idle = self._idle.get(url)
        while idle:
            conn = idle.pop()  # the most recent: the furthest from any idle timeout
            if conn.usable:
                return conn
            self.retire(conn)
        return None

    def park(self, conn: _Connection) -> None:
        """``conn`` carries no utterance and owes no result: keep it for the
        next utterance, or close it when the pool is full."""
        if self._closed or not conn.usable or self.idle_connections >= self._pool_size:
            self.retire(conn)
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.url, []).append(conn)

    def retire(self, conn: _Connection) -> None:
        """Close ``conn`` (in the background: an utterance's end must not wait)."""
        idle = self._idle.get(conn.url)
        if idle and conn in idle:
            idle.remove(conn)
        if conn.retiring:
            return
        conn.retiring = True
        self._close_later(conn.close())

    def settle(self, conn: _Connection) -> None:
        """An abandoned utterance: flush what it sent, then park the connection."""
        if conn.flushed:
            self.park(conn)
        else:
            self._close_later(self._settle(conn))

    async def _settle(self, conn: _Connection) -> None:
        try:
            flushed = await conn.flush()
        except ProviderError:
            flushed = False
        (self.park if flushed else self.retire)(conn)

    def forget(self, conn: _Connection) -> None:
        self._connections.discard(conn)

    def _close_later(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


class _Connection:
    """One WebSocket to Deepgram and the utterance it carries, if any.

    A reader task consumes server messages for the whole life of the socket:
    it tracks how far final results cover the audio sent, hands each result
    to the utterance it belongs to, and notices closes and ``Error`` messages,
    so that ``push``/``finish`` fail fast with the reason.
    """

    def __init__(self, stt: DeepgramSTT, ws: ClientConnection, url: str) -> None:
        self.stt = stt
        self.ws = ws
        self.url = url
        self.sent = 0  # bytes of audio sent: the service's timeline
        self.finalized_until = 0.0  # seconds of that audio covered by final results
        self.stream: DeepgramSpeechStream | None = None
        self.error: ProviderError | None = None
        self.retiring = False
        self.idle_since: float | None = None  # parked in the pool since
        self.last_send = time.monotonic()
        self._flushed = asyncio.Event()  # a from_finalize result (or the end) arrived
        self._reader = asyncio.create_task(self._read())
        self._keepalive: asyncio.Task[None] | None = None
        if stt._keepalive_interval:
            self._keepalive = asyncio.create_task(self._keep_alive(stt._keepalive_interval))

    @property
    def usable(self) -> bool:
        return self.error is None and not self.retiring and self.ws.state is State.OPEN

    @property
    def flushed(self) -> bool:
        """Final results cover the audio sent (all but ``_FLUSHED_S`` of it)."""
        return self.sent / _BYTES_PER_SECOND - self.finalized_until <= _FLUSHED_S

    def begin(self, on_partial: PartialCallback | None) -> DeepgramSpeechStream:
        self.idle_since = None
        self.stream = DeepgramSpeechStream(self, on_partial, self.sent / _BYTES_PER_SECOND)
        return self.stream

    async def send(self, data: bytes | str) -> None:
        if self.error is not None:
            raise self.error
        try:
            await self.ws.send(data)
        except ConnectionClosed as exc:
            raise self.fail(
                websocket_closed_error(self.stt.name, exc, fatal_codes=_FATAL_CLOSE_CODES)
            ) from exc
        if isinstance(data, bytes):
            self.sent += len(data)
        self.last_send = time.monotonic()

    async def flush(self) -> bool:
        """``Finalize`` what was sent and wait (bounded) for its reply: True once
        final results cover all of it. Deepgram answers with a ``from_finalize``
        result when audio is still buffered, but documents that this reply is
        not guaranteed when little or nothing is left: so no wait at all when
        the finals already cover everything sent."""
        if self.flushed:
            return True
        self._flushed.clear()
        await self.send(_FINALIZE)
        try:
            async with asyncio.timeout(self.stt._finalize_timeout):
                await self._flushed.wait()
        except TimeoutError:
            return False
        if self.error is not None:
            raise self.error
        return not self.retiring  # woken by close(): the reply may never come

    def fail(self, err: ProviderError) -> ProviderError:
        if self.error is None:
            self.error = err
        self._flushed.set()  # wake a waiting flush
        if self.stream is not None:
            self.stream.failed(self.error)
        self.stt.retire(self)
        return self.error

    async def close(self) -> None:
        """``CloseStream`` asks Deepgram to flush, send ``Metadata`` and close
        the socket itself; drain until it does (bounded), then make sure."""
        if self._keepalive is not None:
            self._keepalive.cancel()
        self._reader.cancel()
        self._flushed.set()  # a flush waiting for the reader's news would wait in vain
        await asyncio.wait([self._reader])  # one reader at a time on a socket
        with contextlib.suppress(Exception):
            await self.ws.send(_CLOSE_STREAM)
            async with asyncio.timeout(2.0):
                async for _ in self.ws:
                    pass
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 1.0)
        self.stt.forget(self)

    async def _keep_alive(self, interval: float) -> None:
        while True:
            now = time.monotonic()
            if self.idle_since is not None and now - self.idle_since >= self.stt._pool_idle_s:
                self.stt.retire(self)  # parked too long: give the account its stream back
                return
            idle = now - self.last_send
            if idle < interval:
                await asyncio.sleep(interval - idle)
                continue
            try:
                await self.send(_KEEPALIVE)
            except ProviderError:
                return

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    continue
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                await self._handle(msg)
        except ConnectionClosed as exc:
            self.fail(websocket_closed_error(self.stt.name, exc, fatal_codes=_FATAL_CLOSE_CODES))
            return
        if not self.retiring:  # closed cleanly by the server while we still had it
            code, reason = self.ws.close_code, self.ws.close_reason
            detail = f" (code {code} {reason})".rstrip() if code is not None else ""
            self.fail(ProviderError(self.stt.name, f"server closed the stream{detail}"))

    async def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "Error":
            text = msg.get("description") or msg.get("message") or "unknown error"
            self.fail(ProviderError(self.stt.name, f"{msg.get('variant', 'Error')}: {text}"))
            return
        if kind != "Results":
            return  # Metadata, SpeechStarted, UtteranceEnd: nothing the engine needs
        try:
            end = float(msg.get("start", 0.0)) + float(msg.get("duration", 0.0))
        except (TypeError, ValueError):  # it cannot be placed on the audio
            self.fail(ProviderError(self.stt.name, f"malformed result: {str(msg)[:120]}"))
            return
        if msg.get("is_final"):
            self.finalized_until = max(self.finalized_until, end)
        stream = self.stream
        if stream is not None and end > stream.start_s:  # audio of this utterance
            await stream.result(msg)
        if msg.get("from_finalize"):
            self._flushed.set()


class DeepgramSpeechStream(SpeechStream):
    """One utterance on a pooled connection: its final segments and latest
    hypothesis. ``start_s`` is where its audio begins on the connection."""

    def __init__(
        self, conn: _Connection, on_partial: PartialCallback | None, start_s: float
    ) -> None:
        self._conn = conn
        self._on_partial = on_partial
        self.start_s = start_s
        self._finals: list[str] = []
        self._interim = ""
        self._got_results = False
        self._error: ProviderError | None = None
        self._done = False  # finish() returned, or abandoned

    # ------------------------------------------------------------------ engine API

    async def push(self, pcm: bytes) -> None:
        self._check()
        if pcm:
            await self._conn.send(pcm)

    async def finish(self) -> str:
        """Flush and return the utterance's final text. When the flush's reply
        does not come in time, the last hypothesis is the text if the server has
        been answering (a silent server is an error)."""
        self._check()
        try:
            flushed = await self._conn.flush()
            self._check()
            if not flushed:
                if not self._got_results:
                    raise self.failed(
                        ProviderError(self._conn.stt.name, "timed out waiting for a transcript")
                    )
                log.warning("deepgram: no from_finalize result; using the last hypothesis")
                if self._interim:
                    self._finals.append(self._interim)
            text = " ".join(t for t in self._finals if t).strip()
        except BaseException:
            self._end(clean=False)
            raise
        self._end(clean=flushed)
        return text

    async def aclose(self) -> None:
        """Abandon the utterance (barge-in): its connection is flushed and
        pooled in the background, its results no longer reach anybody."""
        if not self._done:
            self._end(clean=None)

    # ------------------------------------------------------------------ the connection's side

    def abandon(self) -> None:
        """The provider is closing: the utterance ends without a flush."""
        self._done = True
        if self._conn.stream is self:
            self._conn.stream = None

    def failed(self, err: ProviderError) -> ProviderError:
        if self._error is None:
            self._error = err
        return self._error

    async def result(self, msg: dict[str, Any]) -> None:
        self._got_results = True
        alternatives = (msg.get("channel") or {}).get("alternatives") or [{}]
        transcript = str(alternatives[0].get("transcript") or "").strip()
        if msg.get("is_final"):
            if transcript:
                self._finals.append(transcript)
            self._interim = ""
        else:
            self._interim = transcript
        if self._on_partial is not None and transcript and not self._done:
            partial = " ".join(t for t in [*self._finals, self._interim] if t)
            try:
                await self._on_partial(partial)
            except Exception:
                log.exception("deepgram: on_partial callback failed")

    # ------------------------------------------------------------------ internals

    def _check(self) -> None:
        if self._error is not None:
            raise self._error
        if self._done:
            raise ProviderError(self._conn.stt.name, "stream already finished", retryable=False)

    def _end(self, *, clean: bool | None) -> None:
        """Hand the connection back: parked when ``clean`` (every result is
        in), flushed first when ``None`` (abandoned), else closed."""
        if self._done:
            return
        self.abandon()
        stt, conn = self._conn.stt, self._conn
        if clean:
            stt.park(conn)
        elif clean is None and conn.usable:
            stt.settle(conn)
        else:
            stt.retire(conn)
