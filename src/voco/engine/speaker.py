"""Speaks one reply: clauses → TTS → 24 kHz encoder → paced binary frames.

Runs beside the model as its own task, so the first clause is synthesized while
the model is still writing the rest. Audio is paced to at most ``lead_ms`` ahead
of real-time playback: that keeps the engine's "audio sent" a good estimate of
what was heard, and means a barge-in discards little.

The text stays written (``README.md``) everywhere but in the TTS call, which
gets :func:`~voco.engine.spoken_text.speakable` of each clause.

A barge-in halts it tentatively (:meth:`Speaker.pause`): synthesis goes on into
the *tape* (the reply's PCM, the last ``TAPE_MS`` kept) but nothing is encoded
or sent until :meth:`Speaker.restart` — a false interruption — re-encodes the
tape from the resume point with a fresh encoder (a client's decoder starts a
clean stream after ``resume_audio``) and carries on from there.
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
TAPE_MS = 15_000  # reply PCM kept for a resume (a client cannot be further behind)


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
        on_pcm: Callable[[bytes, int, int], None] | None = None,
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
        self._on_pcm = on_pcm  # (pcm, rate, timeline ms): the echo gate's reference
        self._gate = asyncio.Event()  # clear while halted tentatively
        self._gate.set()
        self._tape = bytearray()  # TTS PCM, from absolute input sample _tape0
        self._tape0 = 0
        self._synth = 0  # input samples synthesized (absolute)
        self._encoded = 0  # input samples given to the current encoder (absolute)
        self._base_ms = 0  # timeline ms where the current encoder's output starts

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
            await self._gate.wait()  # halted at the very end: the verdict first
            tail = self._encoder.flush()
            if not tail or await self._send_audio(tail):
                self._count()
            self.response.finish()
            await self._on_end(self.timeline_ms())

    def timeline_ms(self) -> int:
        """Where the audio encoded so far ends on the reply's timeline."""
        return self._base_ms + (self._encoder.duration_ms if self._encoder else 0)

    def pause(self) -> None:
        """Tentative halt: keep synthesizing into the tape, send nothing."""
        self._gate.clear()

    def restart(self, from_ms: int) -> bytes:
        """Resume at ``from_ms`` of the reply: the tape from there, freshly
        encoded (the caller sends it right after ``resume_audio``, then calls
        :meth:`replayed`); later pieces follow in the same new stream.

        No piece of the old stream can follow it: a piece encoded before the
        halt waits on the session's send lock *behind* the cut (asyncio's lock
        serves waiters in order), so it is refused long before a resume."""
        rate = self._tts.sample_rate
        start = max(self._tape0, min(from_ms * rate // 1000, self._encoded))
        self._encoder = OutputEncoder(rate, self._encoding)  # type: ignore[arg-type]
        self._base_ms = start * 1000 // rate
        data = self._encoder.encode(
            bytes(self._tape[(start - self._tape0) * 2 :][: (self._encoded - start) * 2])
        )
        self._gate.set()
        return data

    def replayed(self) -> None:
        """The restart's audio went out: the timeline stands where it ended, and
        the replay counts as sent again (the client dropped its copy at the halt)."""
        self._count()

    def _count(self) -> None:
        """The audio encoded so far was sent: the timeline stands at its end
        (a replay is billed on top: ``ResponseAudio.replayed_ms``)."""
        self.response.add_audio(self.timeline_ms())

    async def _speak(self, clause: str) -> None:
        # the written words (what was heard, as text), placed where the audio
        # encoded so far ends — a piece refused at a halt is still on the timeline
        self.response.begin_clause(clause, at_ms=self.timeline_ms())
        async for pcm in self._tts.synthesize(speakable(clause)):
            if self._encoder is None:
                self._encoder = OutputEncoder(self._tts.sample_rate, self._encoding)  # type: ignore[arg-type]
            step = self._tts.sample_rate * PIECE_MS // 1000 * 2
            for i in range(0, len(pcm), step):
                await self._send_piece(pcm[i : i + step])

    async def _send_piece(self, pcm: bytes) -> None:
        self._record(pcm)
        target = self._synth
        if self.response.started_at is None:
            if self._encoder is None:
                self._encoder = OutputEncoder(self._tts.sample_rate, self._encoding)  # type: ignore[arg-type]
            await self._on_start()
            self.first_audio_at = self._clock()
        while True:  # pace: never more than lead_ms ahead of real-time playback
            await self._gate.wait()
            started = self.response.started_at
            if started is None:
                break
            delay = started + (self.timeline_ms() - self._lead_ms) / 1000 - self._clock()
            if delay <= 0:
                break
            await asyncio.sleep(delay)
            if self._gate.is_set():
                break
        if self._encoded >= target:  # a restart already re-encoded this piece
            return
        assert self._encoder is not None
        lo = (self._encoded - self._tape0) * 2
        data = self._encoder.encode(bytes(self._tape[lo : lo + (target - self._encoded) * 2]))
        self._encoded = target  # refused or not, it is on the tape for a restart
        # counted once sent: a piece the gate refused (the reply was halted or
        # cut) was never sent, so neither billed nor taken as heard
        if not data or await self._send_audio(data):
            self._count()

    def _record(self, pcm: bytes) -> None:
        """Onto the tape (bounded to TAPE_MS behind what was encoded)."""
        rate = self._tts.sample_rate
        if self._on_pcm is not None:
            self._on_pcm(pcm, rate, self._synth * 1000 // rate)
        self._tape += pcm
        self._synth += len(pcm) // 2
        drop = min(self._encoded, self._synth) - rate * TAPE_MS // 1000 - self._tape0
        if drop > rate:  # trim in steps of a second or more
            del self._tape[: drop * 2]
            self._tape0 += drop


def pcm_ms(n_bytes: int, rate: int = OUTPUT_RATE) -> int:
    return n_bytes // 2 * 1000 // rate
