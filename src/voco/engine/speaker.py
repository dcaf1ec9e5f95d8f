"""Speaks one reply: clauses → TTS → 24 kHz encoder → paced binary frames.

Runs beside the model as its own task, so the first clause is synthesized while
the model is still writing the rest. Audio is paced to at most ``lead_ms`` ahead
of real-time playback: that keeps the engine's "audio sent" a good estimate of
what was heard, and means a barge-in discards little.

The text stays written (``README.md``) everywhere but in the TTS call, which
gets :func:`~voco.engine.spoken_text.speakable` of each clause.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from voco.audio.encode import OUTPUT_RATE, OutputEncoder
from voco.common.clauses import ClauseSplitter
from voco.engine.playout import ResponseAudio
from voco.engine.spoken_text import speakable
from voco.providers.base import TTS
from voco.providers.inference_queue import FIRST, LATER, job_priority

PIECE_MS = 80  # TTS PCM is encoded and sent in pieces of this length


class Speaker:
    def __init__(
        self,
        tts: TTS,
        response: ResponseAudio,
        encoding: str,
        *,
        on_start: Callable[[], Awaitable[None]],
        send_audio: Callable[[bytes], Awaitable[bool]],
        on_end: Callable[[int], Awaitable[None]],
        lead_ms: int = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tts = tts
        self.response = response
        self._encoding = encoding
        self._on_start = on_start
        self._send_audio = send_audio
        self._on_end = on_end
        self._lead_ms = lead_ms
        self._clock = clock
        self._splitter = ClauseSplitter()
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._encoder: OutputEncoder | None = None
        self.first_clause_at: float | None = None
        self.first_audio_at: float | None = None

    def feed(self, text: str) -> None:
        for clause in self._splitter.feed(text):
            self._queue.put_nowait(clause)

    def say(self, sentence: str) -> None:
        """Speak a whole sentence now (flushing whatever was pending first)."""
        for clause in [*self._splitter.flush(), sentence]:
            self._queue.put_nowait(clause)

    def finish(self) -> None:
        for clause in self._splitter.flush():
            self._queue.put_nowait(clause)
        self._queue.put_nowait(None)

    async def run(self) -> None:
        """Consume clauses until :meth:`finish`; sends ``audio.end`` if any audio went out."""
        while (clause := await self._queue.get()) is not None:
            first = self.first_clause_at is None
            if first:
                self.first_clause_at = self._clock()
            with job_priority(FIRST if first else LATER):  # shared TTS: first clauses first
                await self._speak(clause)
        if self._encoder is not None:
            tail = self._encoder.flush()
            if not tail or await self._send_audio(tail):
                self.response.add_audio(self._encoder.duration_ms)
            self.response.finish()
            await self._on_end(self._encoder.duration_ms)

    async def _speak(self, clause: str) -> None:
        self.response.begin_clause(clause)  # the written words: what was heard, as text
        async for pcm in self._tts.synthesize(speakable(clause)):
            if self._encoder is None:
                self._encoder = OutputEncoder(self._tts.sample_rate, self._encoding)  # type: ignore[arg-type]
            step = self._tts.sample_rate * PIECE_MS // 1000 * 2
            for i in range(0, len(pcm), step):
                await self._send_piece(pcm[i : i + step])

    async def _send_piece(self, pcm: bytes) -> None:
        assert self._encoder is not None
        start_ms = self._encoder.duration_ms
        data = self._encoder.encode(pcm)
        if self.response.started_at is None:
            await self._on_start()
            self.first_audio_at = self._clock()
        else:  # pace: never more than lead_ms ahead of real-time playback
            due = self.response.started_at + (start_ms - self._lead_ms) / 1000
            delay = due - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
        # counted once sent: a piece the gate refused (the reply was cut) was
        # never sent, so neither billed nor taken as heard
        if not data or await self._send_audio(data):
            self.response.add_audio(self._encoder.duration_ms)


def pcm_ms(n_bytes: int, rate: int = OUTPUT_RATE) -> int:
    return n_bytes // 2 * 1000 // rate
