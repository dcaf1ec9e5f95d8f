"""Deepgram live transcription over its documented WebSocket protocol.

Why ``websockets`` directly rather than ``deepgram-sdk``: the live protocol is
small (binary audio up; ``KeepAlive``/``Finalize``/``CloseStream`` text frames up;
``Results``/``Metadata``/``Error`` JSON down), and the engine needs exact control
over the two things that matter for latency and robustness - waiting for the
``from_finalize`` result at end of speech, and turning every close or timeout
into a :class:`ProviderError`. The SDK would add a thread/callback layer between
us and those frames.

One WebSocket per utterance: an abandoned utterance (barge-in) can simply be
closed, and no late result of one turn can leak into the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import weakref
from collections.abc import Coroutine, Sequence
from typing import Any
from urllib.parse import urlencode

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

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


class DeepgramSTT(STT):
    """Streaming STT with interim results (``nova-3`` by default).

    ``endpointing_ms`` is Deepgram's own pause detection; the engine's VAD decides
    the end of the turn, so it only splits long utterances into final segments.
    ``keepalive_interval`` keeps a stream open while no audio flows (Deepgram
    closes an idle stream after ~10 s). ``finalize_timeout`` bounds the wait for
    the flushed result after ``Finalize``.
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
        self._closing: set[asyncio.Task[None]] = set()
        self._streams: weakref.WeakSet[DeepgramSpeechStream] = weakref.WeakSet()

    def stream_url(self, vocabulary: Sequence[str] = ()) -> str:
        """The listen URL, with the project's names as ``keyterm`` (Nova-3) or
        ``keywords`` (older models) so the service prefers their spelling."""
        terms = list(dict.fromkeys(t.strip() for t in vocabulary if t.strip()))[:MAX_KEYTERMS]
        if not terms:
            return self.url
        key = "keyterm" if self._model.startswith("nova-3") else "keywords"
        return self.url + "&" + urlencode([(key, t) for t in terms])

    async def open_stream(
        self, on_partial: PartialCallback | None = None, *, vocabulary: Sequence[str] = ()
    ) -> SpeechStream:
        try:
            ws = await websockets.connect(
                self.stream_url(vocabulary),
                additional_headers={"Authorization": f"Token {self._api_key}"},
                open_timeout=self._connect_timeout,
                max_size=2**22,
                # PCM does not compress: deflating every 32 ms frame (and inflating
                # every reply) was CPU per session for nothing (bench/bench_load.py)
                compression=None,
            )
        except Exception as exc:
            raise websocket_connect_error(self.name, exc) from exc
        stream = DeepgramSpeechStream(self, ws, on_partial)
        self._streams.add(stream)
        return stream

    async def aclose(self) -> None:
        """Abandon open utterances and wait for their sockets to close."""
        for stream in list(self._streams):
            await stream.aclose()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _close_later(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


class DeepgramSpeechStream(SpeechStream):
    """One utterance on its own WebSocket.

    A reader task consumes server messages for the whole life of the socket: it
    collects ``is_final`` segments, forwards interim hypotheses to ``on_partial``
    and notices closes and ``Error`` messages, so that ``push``/``finish`` can
    fail fast with the reason.
    """

    def __init__(
        self, stt: DeepgramSTT, ws: ClientConnection, on_partial: PartialCallback | None
    ) -> None:
        self._stt = stt
        self._ws = ws
        self._on_partial = on_partial
        self._finals: list[str] = []
        self._interim = ""
        self._sent_bytes = 0
        self._finalized_until = 0.0  # seconds of audio covered by is_final results
        self._got_results = False
        self._finalized = asyncio.Event()
        self._error: ProviderError | None = None
        self._done = False  # finish() returned or aclose() called
        self._last_send = time.monotonic()
        self._reader = asyncio.create_task(self._read())
        self._keepalive: asyncio.Task[None] | None = None
        if stt._keepalive_interval:
            self._keepalive = asyncio.create_task(self._keep_alive(stt._keepalive_interval))

    # ------------------------------------------------------------------ engine API

    async def push(self, pcm: bytes) -> None:
        self._check()
        if not pcm:
            return
        try:
            await self._ws.send(pcm)
        except ConnectionClosed as exc:
            raise self._fail(
                websocket_closed_error(self._stt.name, exc, fatal_codes=_FATAL_CLOSE_CODES)
            ) from exc
        self._sent_bytes += len(pcm)
        self._last_send = time.monotonic()

    async def finish(self) -> str:
        """Flush with ``Finalize`` and return the utterance's final text.

        Deepgram answers ``Finalize`` with a ``from_finalize`` result when audio
        is still buffered, but documents that this reply is not guaranteed when
        there is little or nothing left to process. So: no wait at all when the
        finals already cover everything sent; otherwise wait up to
        ``finalize_timeout``, then fall back to the last hypothesis if the server
        has been answering (a silent server is an error).
        """
        self._check()
        try:
            pending = self._sent_bytes / _BYTES_PER_SECOND - self._finalized_until
            if pending > 0.03:
                self._finalized.clear()
                await self._send_json({"type": "Finalize"})
                try:
                    await asyncio.wait_for(self._finalized.wait(), self._stt._finalize_timeout)
                except TimeoutError:
                    if not self._got_results:
                        raise self._fail(
                            ProviderError(self._stt.name, "timed out waiting for a transcript")
                        ) from None
                    log.warning("deepgram: no from_finalize result; using the last hypothesis")
                    if self._interim:
                        self._finals.append(self._interim)
                self._check()
            text = " ".join(t for t in self._finals if t).strip()
        except BaseException:
            self._shutdown()
            raise
        self._shutdown()
        return text

    async def aclose(self) -> None:
        self._shutdown()

    # ------------------------------------------------------------------ internals

    def _check(self) -> None:
        if self._error is not None:
            raise self._error
        if self._done:
            raise ProviderError(self._stt.name, "stream already finished", retryable=False)

    def _fail(self, err: ProviderError) -> ProviderError:
        if self._error is None:
            self._error = err
        self._finalized.set()  # wake a waiting finish()
        return self._error

    async def _send_json(self, msg: dict[str, Any]) -> None:
        try:
            await self._ws.send(json.dumps(msg))
        except ConnectionClosed as exc:
            raise self._fail(
                websocket_closed_error(self._stt.name, exc, fatal_codes=_FATAL_CLOSE_CODES)
            ) from exc
        self._last_send = time.monotonic()

    def _shutdown(self) -> None:
        """Stop the tasks and close the socket (``CloseStream``) without waiting:
        ``finish`` must return the text at once, and ``aclose`` runs on barge-in."""
        if self._done:
            return
        self._done = True
        if self._keepalive is not None:
            self._keepalive.cancel()
        self._reader.cancel()
        self._stt._close_later(self._close_ws())

    async def _close_ws(self) -> None:
        """``CloseStream`` asks Deepgram to flush, send ``Metadata`` and close
        the socket itself; drain until it does (bounded), then make sure."""
        await asyncio.wait([self._reader])  # one reader at a time on a socket
        with contextlib.suppress(Exception):
            await self._ws.send(json.dumps({"type": "CloseStream"}))
            async with asyncio.timeout(2.0):
                async for _ in self._ws:
                    pass
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(), 1.0)

    async def _keep_alive(self, interval: float) -> None:
        while True:
            idle = time.monotonic() - self._last_send
            if idle < interval:
                await asyncio.sleep(interval - idle)
                continue
            try:
                await self._send_json({"type": "KeepAlive"})
            except ProviderError:
                return

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                if isinstance(raw, bytes):
                    continue
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                await self._handle(msg)
        except ConnectionClosed as exc:
            self._fail(websocket_closed_error(self._stt.name, exc, fatal_codes=_FATAL_CLOSE_CODES))
            return
        if not self._done:  # closed cleanly by the server while we still needed it
            code, reason = self._ws.close_code, self._ws.close_reason
            detail = f" (code {code} {reason})".rstrip() if code is not None else ""
            self._fail(ProviderError(self._stt.name, f"server closed the stream{detail}"))

    async def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "Error":
            text = msg.get("description") or msg.get("message") or "unknown error"
            self._fail(ProviderError(self._stt.name, f"{msg.get('variant', 'Error')}: {text}"))
            return
        if kind != "Results":
            return  # Metadata, SpeechStarted, UtteranceEnd: nothing the engine needs
        self._got_results = True
        alternatives = (msg.get("channel") or {}).get("alternatives") or [{}]
        transcript = str(alternatives[0].get("transcript") or "").strip()
        if msg.get("is_final"):
            if transcript:
                self._finals.append(transcript)
            self._interim = ""
            end = float(msg.get("start", 0.0)) + float(msg.get("duration", 0.0))
            self._finalized_until = max(self._finalized_until, end)
        else:
            self._interim = transcript
        if msg.get("from_finalize"):
            self._finalized.set()
        if self._on_partial is not None and transcript:
            partial = " ".join(t for t in [*self._finals, self._interim] if t)
            try:
                await self._on_partial(partial)
            except Exception:
                log.exception("deepgram: on_partial callback failed")
