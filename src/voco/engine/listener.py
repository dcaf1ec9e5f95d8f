"""The user's side of a conversation: audio frames → VAD → turn detection →
transcription → a finished :class:`~voco.engine.record.Turn`.

Runs where the audio is read: each frame is stepped as soon as its VAD score
is known (engine/frame_pipe.py: in order, no task or future per frame), so a
barge-in is decided where the audio arrives, never behind a queue.
What to do about the assistant's reply when the user speaks is not decided
here: :class:`Listener` reports through its :class:`ListenerHost`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from voco.audio.gate import EnergyGate
from voco.audio.pcm import FRAME_MS
from voco.audio.turns import (
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TurnDetector,
    TurnEvent,
)
from voco.audio.vad import VadStream
from voco.engine.echo import EchoGate
from voco.engine.frame_pipe import FramePipe
from voco.engine.record import Turn, new_id
from voco.engine.runtime import EngineRuntime
from voco.engine.turn_end import Completeness, TurnEnd
from voco.engine.turn_timeline import TurnTimeline
from voco.engine.vocabulary import ProjectVocabulary
from voco.protocol import messages as m
from voco.providers.base import STT, ProviderError, SpeechStream


class ListenerHost(abc.ABC):
    """What the listener needs from its session."""

    @abc.abstractmethod
    async def send(self, msg: m._Msg) -> None: ...

    @abc.abstractmethod
    async def user_started_speaking(self, confirmed_ms: int, onset_ms: int) -> None:
        """Speech confirmed: cut the reply (a barge-in if it plays), then say
        ``vad.speech_start`` at the onset."""

    @abc.abstractmethod
    async def user_turn(self, turn: Turn) -> None:
        """A transcribed turn is ready to answer."""

    @abc.abstractmethod
    async def nothing_heard(self) -> None:
        """The speech transcribed to nothing."""

    @abc.abstractmethod
    async def not_understood(self, turn: Turn, exc: ProviderError) -> None:
        """Transcription failed."""

    async def turn_may_end(self, text: str) -> None:  # noqa: B027 - optional hook
        """The user paused on words that read as a whole request (``text``, as
        :meth:`user_turn` would get it): the reply may be prepared now, but
        nothing of it may reach the client before :meth:`user_turn`."""

    async def turn_goes_on(self) -> None:  # noqa: B027 - optional hook
        """Speech resumed after :meth:`turn_may_end`: drop what was prepared."""

    async def words_so_far(self, text: str) -> None:  # noqa: B027 - optional hook
        """The speculative transcript at the first pause (judges a tentative halt)."""

    async def user_resumed_speaking(self) -> None:  # noqa: B027 - optional hook
        """Speech came back after a pause, within the same utterance."""


class Listener:
    def __init__(
        self,
        runtime: EngineRuntime,
        host: ListenerHost,
        *,
        clock: Callable[[], float],
        spawn: Callable[[Awaitable[Any]], None],
    ) -> None:
        self.rt = runtime
        self._host = host
        self._clock = clock
        self._spawn = spawn
        self.vad_stream = VadStream()
        # frames in order through the VAD and step(), no future per frame
        self.pipe = FramePipe(runtime.vad, self.vad_stream, self, spawn)
        # clearly silent frames skip the model (audio/gate.py); None: all scored
        gate = getattr(runtime.vad, "gate", None)
        self._gate = EnergyGate(gate) if gate is not None else None
        self.turns = TurnDetector(runtime.turn_config)
        self._preroll: deque[bytes] = deque(
            maxlen=max(1, runtime.turn_config.preroll_ms // FRAME_MS)
        )
        self._utterance: SpeechStream | None = None
        self._onset = (0, 0)  # usage: (onset of the current speech, preroll given to STT)
        self._preview: asyncio.Future[str | None] | None = None
        self._early: asyncio.Future[str | None] | None = None  # words_now's decode
        # the open utterance's audio, for a snippet on rt.snippet_stt (words_now)
        self._heard: list[bytes] = []
        self._joined: Turn | None = None  # thinking turn the new speech joins
        # how long this pause must last, from the words heard (engine/turn_end.py)
        self.turn_end = TurnEnd(runtime.turn_end)
        self._timeline: TurnTimeline | None = None  # the current pause's clock readings
        # the project's names this conversation has seen (fed from MCP results
        # by the session): they bias the STT and respell the transcript
        self.vocabulary = ProjectVocabulary()
        # the reply's own voice coming back through the user's speakers is not
        # a barge-in (fed by the session: reference audio and playback anchors)
        self.echo = EchoGate()

    def stream_ms(self) -> int:
        """Stream time just after the current frame."""
        return self.turns.frame_index * FRAME_MS + FRAME_MS

    def words_now(self) -> Awaitable[str | None] | None:
        """The open utterance's words so far, decoded now (a tentative halt's
        judge asks at a short silence: engine/barge.py). On the runtime's
        snippet recogniser if it has one — its words judge the halt only, the
        turn's stay the main recogniser's; else the pause's own preview when
        that has started in this silence (the early pause comes first after
        enough speech: a second decode would queue behind it on the same
        thread — bench_bargein measured ~540 ms for the two). None: no
        utterance is open."""
        if self._utterance is None:
            return None
        if self.rt.snippet_stt is not None:  # cheaper, and never the turn's words
            return asyncio.ensure_future(self._snippet(self.rt.snippet_stt, b"".join(self._heard)))
        if self._preview is not None:  # this silence's pause is being decoded: the same words
            return asyncio.shield(self._preview)
        self._early = asyncio.ensure_future(self._utterance.preview())
        return self._early

    @staticmethod
    async def _snippet(stt: STT, pcm: bytes) -> str | None:
        stream = await stt.open_stream()
        try:
            await stream.push(pcm)
            return await stream.finish()
        finally:
            await stream.aclose()

    def join(self, turn: Turn) -> None:
        """The words being spoken continue ``turn`` (it was cut while thinking)."""
        self._joined = turn

    async def on_audio(self, frames: list[bytes], first_index: int = 0) -> None:
        """Feed ``frames`` and wait until each is stepped (the reader's path
        for audio that did not take the fast lane, and the tests')."""
        self.pipe.feed(frames)
        await self.pipe.settled()

    def feed(self, frames: list[bytes]) -> None:
        """Feed ``frames`` without waiting (the fast lane, engine/ws_protocol.py)."""
        self.pipe.feed(frames)

    # ------------------------------------------ the per-frame step (FramePipe)

    def needs_model(self, frame: bytes) -> bool:
        """Whether the model scores ``frame``; a clearly silent one is 0.0."""
        gate = self._gate
        if gate is None:
            return True  # PCM16 bytes as they came: the VAD scales them into its batch
        scored = gate.admit(frame, self.turns.in_speech)
        if not scored:  # far below the room's noise and no speech going on
            return False
        if len(scored) > 1:  # the gate opened: its skipped frames first
            self.rt.vad.warm(self.vad_stream, scored[:-1])
        return True

    def step(self, frame: bytes, prob: float) -> Awaitable[None] | None:
        """The frame's synchronous work; the rest (rare: an event, or audio
        for the recogniser) is returned to be awaited before the next frame."""
        if self.echo.active and self.echo.is_echo(frame, self.stream_ms()):
            prob = prob if self.turns.in_speech else 0.0  # own voice: no barge-in
        event = self.turns.push(prob)
        if event is None and self._utterance is None:  # the usual frame: silence
            self._preroll.append(frame)
            return None
        return self._step_async(frame, event)

    async def _step_async(self, frame: bytes, event: TurnEvent | None) -> None:
        if isinstance(event, SpeechStarted):
            await self._speech_started(event)
        if self._utterance is not None and (self.turns.in_speech or isinstance(event, SpeechEnded)):
            await self._push(frame)
        if isinstance(event, SpeechPaused):
            self._start_preview(event)
        elif isinstance(event, SpeechResumed):
            self._cancel_preview()
            self.turn_end.resume()
            await self._host.turn_goes_on()
            await self._host.user_resumed_speaking()
        elif isinstance(event, SpeechEnded):
            await self._speech_ended(event)
        self._preroll.append(frame)

    def _start_preview(self, ev: SpeechPaused) -> None:
        """The user paused: transcribe now, while the end-of-turn silence runs;
        until the words are known the pause waits as for an unfinished sentence.
        A decode :meth:`words_now` started in this same silence is the same
        words: it is taken instead of a second one."""
        early, self._early = self._early, None
        self._cancel_preview()
        if self._utterance is not None:
            self.turn_end.pause(ev.end_ms)
            self.turns.end_after(self.turn_end.silence_needed())
            self._timeline = TurnTimeline.at_pause(self._clock(), self.stream_ms() - ev.end_ms)
            if early is None or early.cancelled():
                early = asyncio.ensure_future(self._utterance.preview())
            self._preview = preview = early
            preview.add_done_callback(self._preview_done)

    def _preview_done(self, preview: asyncio.Future[str | None]) -> None:
        """The pause's words are known: set the silence it must last from how
        complete they are, end the turn now if it already has, and let the host
        prepare the reply to a request that reads as whole.

        A done-callback, not a frame's work, so a transcript that arrives after
        the short silence has passed ends the turn at once. Everything stateful
        here is synchronous, so it cannot interleave with a frame in the reader.
        """
        if preview is not self._preview or preview.cancelled() or not self.turn_end.paused:
            return
        if self._timeline is not None:
            self._timeline.decoded_at = self._clock()
        exc = preview.exception()
        text = None if exc is not None else preview.result()
        level = self.turn_end.transcript(text.strip() if text is not None else None)
        said = self.vocabulary.normalise(text.strip()) if text else ""
        request = ""
        if said and level is not Completeness.INCOMPLETE:
            request = f"{self._joined.text} {said}" if self._joined is not None else said
        ended = self.turns.end_after(self.turn_end.silence_needed())
        finish = self._take_utterance(ended) if ended is not None else None
        self._spawn(self._after_preview(preview, text is not None, said, request, ended, finish))

    async def _after_preview(
        self,
        preview: asyncio.Future[str | None],
        judge: bool,
        said: str,
        request: str,
        ended: SpeechEnded | None,
        finish: Awaitable[None] | None,
    ) -> None:
        """In this order: a tentative halt is judged on the pause's words (and a
        cut carried out, record included), *then* the reply may be prepared, *then*
        the turn that ended here is announced — so no speculative or confirmed
        run reads the conversation before the cut reply is recorded in it."""
        if judge:  # engine/barge.py
            await self._host.words_so_far(said)
        # prepare only while this pause lasts: if the turn ended (or went on)
        # while the halt was judged, there is nothing to prepare for
        if request and ended is None and self._preview is preview:
            await self._host.turn_may_end(request)
        if ended is not None:
            await self._announce_end(ended, finish, inline=True)

    def _cancel_preview(self) -> None:
        if self._preview is not None and not self._preview.done():
            self._preview.cancel()
        self._preview = None
        self._early = None  # the voice came back (or a new utterance): stale

    async def _speech_started(self, ev: SpeechStarted) -> None:
        await self._host.user_started_speaking(ev.confirmed_ms, ev.onset_ms)
        if self._utterance is not None:
            await self._utterance.aclose()
        self._cancel_preview()
        names = self.vocabulary.terms(60) if self.rt.stt.capabilities.vocabulary else None
        vocab = {"vocabulary": names} if names else {}  # providers without it get no kwarg
        self._utterance = await self.rt.stt.open_stream(self._on_partial, **vocab)
        self._onset = (ev.onset_ms, len(self._preroll) * FRAME_MS)
        # the onset frames and a little audio before them (the preroll ring
        # holds every frame up to the current one, which is pushed next)
        self._heard = []
        for f in self._preroll:
            await self._push(f)

    async def _push(self, frame: bytes) -> None:
        assert self._utterance is not None
        if self.rt.snippet_stt is not None:
            self._heard.append(frame)
        await self._utterance.push(frame)

    async def _on_partial(self, text: str) -> None:
        """A partial is display only: one the recogniser delivers after the
        client has gone is dropped (the session's close handles the rest)."""
        with contextlib.suppress(ConnectionError):
            await self._host.send(m.TranscriptPartial(turn_id="pending", text=text))

    async def _speech_ended(self, ev: SpeechEnded) -> None:
        await self._announce_end(ev, self._take_utterance(ev))

    def _take_utterance(self, ev: SpeechEnded) -> Awaitable[None] | None:
        """The turn ended: take its utterance now (synchronously, so a frame read
        later belongs to whatever comes next); returns its finishing work."""
        self.turn_end.resume()
        utterance, self._utterance = self._utterance, None
        self._heard = []
        if utterance is None:
            return None
        joined, self._joined = self._joined, None
        preview, self._preview = self._preview, None
        timeline, self._timeline = self._timeline, None
        if timeline is not None:
            timeline.confirmed_at = self._clock()
        onset, preroll_ms = self._onset
        heard = (
            max(0, ev.end_ms - onset),
            max(0, ev.decided_ms - onset) + preroll_ms,
            max(0, ev.decided_ms - ev.end_ms),
        )
        return self._finish_utterance(utterance, self._clock(), joined, preview, heard, timeline)

    async def _announce_end(
        self, ev: SpeechEnded, finish: Awaitable[None] | None, *, inline: bool = False
    ) -> None:
        """``vad.speech_end``, then the transcript: spawned from the reader (it
        must not wait), awaited ``inline`` where this already is a task of its own."""
        await self._host.send(m.VadSpeechEnd(t_ms=ev.end_ms))
        if finish is not None:
            if inline:
                await finish
            else:
                self._spawn(finish)

    async def _finish_utterance(
        self,
        utterance: SpeechStream,
        decided: float,
        joined: Turn | None,
        preview: asyncio.Future[str | None] | None,
        heard: tuple[int, int, int | None] = (0, 0, None),
        timeline: TurnTimeline | None = None,
    ) -> None:
        t0 = self._clock()
        try:
            text: str | None = None
            if preview is not None:  # speculative transcript of the same speech
                with contextlib.suppress(ProviderError):
                    text = await preview
            if text is None:
                text = await utterance.finish()
            text = self.vocabulary.normalise(text.strip())
        except ProviderError as exc:
            await self._host.not_understood(joined or Turn(new_id(), new_id()), exc)
            return
        finally:
            await utterance.aclose()
        stt_ms = int((self._clock() - t0) * 1000)
        if not text:
            await self._host.nothing_heard()
            return
        if joined is not None:
            turn = Turn(joined.turn_id, joined.user_msg_id, f"{joined.text} {text}")
        else:
            turn = Turn(new_id(), new_id(), text)
        turn.speech_end_at, turn.stt_ms = decided, stt_ms
        turn.speech_ms, turn.stt_audio_ms, turn.eot_ms = heard
        turn.timeline = timeline
        if joined is not None:
            turn.speech_ms += joined.speech_ms
            turn.stt_audio_ms += joined.stt_audio_ms
        await self._host.user_turn(turn)

    async def aclose(self) -> None:
        self.pipe.close()
        self._cancel_preview()
        if self._utterance is not None:
            await self._utterance.aclose()
