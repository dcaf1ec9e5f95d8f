"""The asyncio side of a barge-in: feeds a :class:`BargeJudge` and carries out
its verdict (resume the reply, or cut it); and :class:`BargeIn`, the session's
half of it — the reply's audio gate, ``halt_audio``, the one cut path and
``resume_audio``.

Kept out of :mod:`voco.engine.session` so the session only says *when* (speech
started, words heard, the turn ended) and this says *what follows*. The state
:class:`TentativeHalts` keeps is per utterance: a backchannel's own transcript
must not become a turn, and speech that goes on after a resume is judged again.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from voco.agent.state import Message
from voco.engine.backchannel import BargeJudge, BargeTimings, Verdict, still_no_turn, words_of
from voco.engine.lifecycle import NOTHING, Cut
from voco.engine.listener import Listener
from voco.engine.outcomes import ResponseOutcomes
from voco.engine.record import interruption_updates
from voco.engine.response import Response
from voco.engine.writer import SerialWriter
from voco.protocol import messages as m
from voco.providers.base import ProviderError

log = logging.getLogger("voco.session")
trace_log = logging.getLogger("voco.barge")


class BargeHost(abc.ABC):
    """What the judge's adapter needs from its session."""

    response: Response | None

    @abc.abstractmethod
    async def resume_reply(self, resp: Response) -> None:
        """The halt was nothing: ``resume_audio`` and the rest of the reply."""

    @abc.abstractmethod
    async def confirm_cut(self, resp: Response) -> None:
        """The halt was a real interruption: the deferred cut."""

    @abc.abstractmethod
    async def halt_again(self) -> None:
        """Speech came back after a resume: halt the reply tentatively again."""

    @abc.abstractmethod
    def user_in_speech(self) -> bool: ...

    @abc.abstractmethod
    def user_quiet_ms(self) -> int:
        """How long the microphone has been without voice (stream ms)."""

    @abc.abstractmethod
    def user_voice_end_ms(self) -> int:
        """Stream time where the last voiced frame ended."""

    @abc.abstractmethod
    def words_now(self) -> Awaitable[str | None] | None:
        """The interruption's words so far, decoded now; None: nothing to decode."""


class TentativeHalts:
    def __init__(
        self,
        host: BargeHost,
        *,
        clock: Callable[[], float],
        spawn: Callable[[Awaitable[Any]], None],
        timings: BargeTimings | None = None,
    ) -> None:
        self._host = host
        self._clock = clock
        self._spawn = spawn
        self._timings = timings or BargeTimings()
        self._judge: BargeJudge | None = None
        self._resp: Response | None = None
        self._utterance: Verdict | None = None  # this utterance's last verdict
        self._reference: list[str] = []  # the reply's words around the halt (echo check)
        self._provisional = False  # the last verdict was on timing alone
        self.resumed = 0  # count (metrics, tests)

    def pending(self) -> bool:
        return self._judge is not None and self._judge.verdict is Verdict.PENDING

    def may_prepare(self) -> bool:
        """Whether the utterance being spoken may have a reply prepared: not
        while its halt is undecided, not if it resumed the reply (a backchannel
        is no turn); after a cut, yes — the cut's record is written by then."""
        return not self.pending() and self._utterance is not Verdict.RESUME

    def begin(self, resp: Response) -> bool:
        """After any cut plan of ``resp`` (under the send lock, so no audio slips
        between): True if it only halted tentatively — the speaker is paused and
        the verdict awaited; False if it is a cut to carry out (a halt being
        judged for it, if any, is over: the cut decided it)."""
        if not resp.life.pending_halt:
            if self._resp is resp:
                self._judge = self._resp = None
            return False
        if resp.speaker is not None:
            resp.speaker.pause()
        now = self._clock()
        self._reference = echo_reference(resp, now)
        self._judge = BargeJudge(now, now, self._timings, reference=self._reference)
        self._resp = resp
        self._utterance = Verdict.PENDING
        self._spawn(self._watch(self._judge))
        return True

    def new_utterance(self) -> None:
        """New speech: whatever was being judged is over (a pending halt is
        confirmed by the cut that follows: more speech is a real turn)."""
        self._judge = self._resp = None
        self._utterance = None

    async def words(self, text: str, *, final: bool) -> bool:
        """A transcript of the current utterance. True if it was only a
        backchannel that resumed the reply: it is no turn of its own. A reply
        resumed on timing alone (or on the first pause's words) is judged again
        on the final words: real words are a turn, which cuts the reply."""
        judge = self._judge
        if judge is not None and judge.verdict is Verdict.PENDING:
            self._mark_speech_end(judge)
            await self._act(judge, judge.heard(text, self._clock(), final=final))
        swallowed = self._utterance is Verdict.RESUME
        if final and swallowed:
            swallowed = still_no_turn(text, self._reference, provisional=self._provisional)
        if final:
            self._utterance = None
        return swallowed

    async def nothing_heard(self) -> None:
        judge = self._judge
        if judge is not None and judge.verdict is Verdict.PENDING:
            await self._act(judge, judge.nothing_heard())
        self._utterance = None

    async def speech_resumed(self) -> None:
        """The utterance goes on after a pause: if the reply resumed on its first
        words, halt again and judge the whole utterance."""
        if self._utterance is Verdict.RESUME:
            await self._host.halt_again()

    async def _watch(self, judge: BargeJudge) -> None:
        while (due := judge.next_poll_at()) is not None:
            await asyncio.sleep(max(0.01, due - self._clock()))
            if judge is not self._judge:
                return
            quiet, end = self._host.user_quiet_ms(), self._host.user_voice_end_ms()
            if judge.wants_words(quiet_ms=quiet, voice_end_ms=end):
                self._ask(judge, end)
            await self._poll(judge)

    async def _poll(self, judge: BargeJudge) -> None:
        v = judge.poll(
            self._clock(),
            in_speech=self._host.user_in_speech(),
            quiet_ms=self._host.user_quiet_ms(),
            voice_end_ms=self._host.user_voice_end_ms(),
        )
        if v is not Verdict.PENDING:
            await self._act(judge, v)

    def _ask(self, judge: BargeJudge, voice_end_ms: int) -> None:
        """A snippet decode of the interruption so far, off the watcher (the
        silence goes on being watched while it runs)."""
        words = self._host.words_now()
        if words is None:
            return
        judge.asked(self._clock(), voice_end_ms)

        async def decode() -> None:
            try:
                text = await words
            except ProviderError:  # the pause's preview and the deadline still judge
                return
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                return  # the decode was dropped: the voice came back (stale anyway)
            if text is None or judge is not self._judge or judge.verdict is not Verdict.PENDING:
                return
            self._mark_speech_end(judge)
            v = judge.snippet_heard(text, self._clock(), voice_end_ms)
            if v is Verdict.PENDING:
                await self._poll(judge)  # the quiet may be confirmed already
            else:
                await self._act(judge, v)

        self._spawn(decode())

    def _mark_speech_end(self, judge: BargeJudge) -> None:
        """Where the voice the words cover ended (clock time, for the trace)."""
        quiet = self._host.user_quiet_ms()
        if quiet > 0 or not self._host.user_in_speech():
            judge.voice_end_at = self._clock() - quiet / 1000

    async def _act(self, judge: BargeJudge, v: Verdict) -> None:
        resp = self._resp
        if v is Verdict.PENDING or resp is None or judge is not self._judge:
            return
        self._trace(judge, v)
        self._utterance = v
        self._provisional = judge.provisional
        self._judge = self._resp = None
        if self._host.response is not resp:
            return
        if v is Verdict.RESUME:
            self.resumed += 1
            await self._host.resume_reply(resp)
        else:
            await self._host.confirm_cut(resp)

    def _trace(self, judge: BargeJudge, v: Verdict) -> None:
        """One line per verdict with the engine's clock readings (ms after
        ``halt_audio``): where the gap to ``resume_audio`` goes
        (bench/bench_bargein.py reads these)."""
        now = self._clock()

        def at(t: float | None) -> int | None:
            return None if t is None else round((t - judge.halted_at) * 1000)

        marks = {
            "verdict": v.value,
            "words": judge.words,
            "speech_end_ms": at(judge.voice_end_at or judge.speech_ended_at),
            "decode_start_ms": at(judge.decode_started_at),
            "words_ms": at(judge.words_at),
            "decided_ms": at(now),
            "provisional": judge.provisional,
        }
        trace_log.debug("barge-in verdict %s", marks, extra={"barge": marks})


def resume_message(
    resp: Response, encoding: m.Encoding, t_ms: int, now: float
) -> m.ResumeAudio | None:
    """Resume ``resp`` in its lifecycle and say so: the ``resume_audio`` that must
    precede the replayed audio, or None if it is no longer halted tentatively."""
    from_ms = resp.life.resume(now)
    if from_ms is None:
        return None
    return m.ResumeAudio(
        response_id=resp.response_id,
        from_ms=from_ms,
        encoding=encoding,
        sample_rate=24000,
        t_ms=t_ms,
    )


ECHO_BEFORE_MS, ECHO_AFTER_MS = 4000, 500


def echo_reference(resp: Response, now: float) -> list[str]:
    """The reply's words that can be coming back through the speakers at a halt:
    what played in the last few seconds (the echo path and the recogniser's
    window), a little past the heard point (the estimate may lag)."""
    audio = resp.audio
    at = audio.heard_ms(now)
    before = audio.heard_text(max(0, at - ECHO_BEFORE_MS)).split()
    upto = audio.heard_text(min(audio.sent_ms, at + ECHO_AFTER_MS)).split()
    return words_of(" ".join(upto[len(before) :]))


def _reap(task: asyncio.Task[Any]) -> None:
    """A cut response's task, which nobody awaits: its end is retrieved here
    (a send to a gone client is how such a task often ends)."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.debug("cut response ended with %r", exc)


class BargeIn(BargeHost, ResponseOutcomes):
    """The session's side of halting, cutting and resuming a reply.

    A part of :class:`~voco.engine.session.Session` (a mixin), in this file so
    the session file stays the adapter of a conversation and everything that
    keeps "no audio frame after ``halt_audio``" true sits together: the audio
    gate and the send are one step under the send lock, and so are the cut
    plan and ``halt_audio``, and ``resume_audio`` and the replayed audio. The
    attributes declared below are the session's (what a cut leaves behind is
    :class:`ResponseOutcomes`'); the callables are declared, not defined, so
    they never shadow the session's own methods.
    """

    encoding: m.Encoding
    listener: Listener
    halts: TentativeHalts
    writer: SerialWriter
    _send_lock: asyncio.Lock
    _send_text_raw: Callable[[str], Awaitable[None]]
    _send_bytes_raw: Callable[[bytes], Awaitable[None]]
    set_state: Callable[[str], Awaitable[None]]
    _stream_ms: Callable[[], int]
    _graph_config: Callable[[], dict[str, Any]]

    # ---------------------------------------------------------- the reply's audio

    async def _send_audio(self, resp: Response, data: bytes) -> bool:
        async with self._send_lock:  # the gate and the send are one step: see _cut
            if not resp.life.may_send_audio() or self.response is not resp:
                return False
            # the echo gate follows where the client really plays (underruns)
            self.listener.echo.piece_sent(self._stream_ms(), resp.audio.sent_ms, self.clock())
            await self._send_bytes_raw(data)
            return True

    async def _audio_start(self, resp: Response) -> None:
        async with self._send_lock:
            if not resp.life.on_audio_start(self.clock()):
                return
            self.listener.echo.play_from(self._stream_ms(), 0, now=self.clock())
            await self._send_text_raw(
                m.AudioStart(
                    response_id=resp.response_id,
                    encoding=self.encoding,
                    sample_rate=24000,
                ).to_json()
            )
        await self.set_state("speaking")

    async def _audio_end(self, resp: Response, duration_ms: int) -> None:
        async with self._send_lock:
            if not resp.life.may_send_audio():
                return
            await self._send_text_raw(
                m.AudioEnd(response_id=resp.response_id, duration_ms=duration_ms).to_json()
            )

    # ----------------------------------------------- tentative barge-in (issue 10)

    async def words_so_far(self, text: str) -> None:
        await self.halts.words(text, final=False)

    async def user_resumed_speaking(self) -> None:
        await self.halts.speech_resumed()

    def user_in_speech(self) -> bool:
        return self.listener.turns.in_speech

    def user_quiet_ms(self) -> int:
        return self.listener.turns.silent_ms

    def user_voice_end_ms(self) -> int:
        return self._stream_ms() - self.listener.turns.silent_ms

    def words_now(self) -> Awaitable[str | None] | None:
        return self.listener.words_now()

    async def halt_again(self) -> None:
        await self._cut_current(Cut.SPEECH, self._stream_ms())
        await self.set_state("listening")

    async def confirm_cut(self, resp: Response) -> None:
        await self._cut(resp, Cut.SPEECH, self._stream_ms())

    async def resume_reply(self, resp: Response) -> None:
        """``resume_audio``, then the reply's audio again from where it stopped,
        then the rest as it comes — one step under the send lock (engine/barge.py)."""
        async with self._send_lock:
            out = resume_message(resp, self.encoding, self._stream_ms(), self.clock())
            if out is None or resp.speaker is None:
                return
            await self._send_text_raw(out.to_json())
            self.listener.echo.play_from(self._stream_ms(), out.from_ms, now=self.clock())
            data = resp.speaker.restart(out.from_ms)
            if data:
                await self._send_bytes_raw(data)
            resp.speaker.replayed()
            resp.life.caught_up()
        await self.set_state("speaking")

    # ---------------------------------------------------------------- cutting

    async def _cut_current(self, why: Cut, t_ms: int) -> None:
        if self.response is not None:
            await self._cut(self.response, why, t_ms)

    async def _cut(self, resp: Response, why: Cut, t_ms: int) -> None:
        """The one cancel path (protocol §4, steps 1–5), as the lifecycle plans it."""
        async with self._send_lock:
            # deciding under the send lock: once the gate shuts, no audio frame
            # can pass _send_audio, so none can follow halt_audio
            # speech over a resumable reply halts it tentatively (engine/barge.py)
            tentative = why is Cut.SPEECH and resp.speaker is not None
            plan = resp.life.cut_plan(why, self.clock(), tentative=tentative)
            if plan.halt is not None:  # 1. halt_audio first
                halt = m.HaltAudio(response_id=resp.response_id, reason=plan.halt, t_ms=t_ms)  # type: ignore[arg-type]
                await self._send_text_raw(halt.to_json())
                self.listener.echo.stop(self._stream_ms())
            if self.halts.begin(resp):  # the rest waits for the verdict
                return
        task = resp.task
        if plan.stop_task and task is not None and not task.done():  # 3. stop model/TTS
            # not awaited: a task slow to stop (a provider closing its stream) must
            # not hold the reader; the cut record waits for it on the writer
            task.cancel()
            task.add_done_callback(_reap)
        if plan.join_turn:
            self.listener.join(resp.turn)
        await self._finish_response(resp, plan.done)
        if plan.record_heard is not None:  # 5. the orchestrator sees the flag
            self._record_interrupted(resp, plan.record_heard)
        if plan is not NOTHING:
            self._end_or_watch(resp)  # halted: it ends once what was heard is known

    def _record_interrupted(self, resp: Response, heard_text: str) -> None:
        """Cut the stored reply to ``heard_text`` — on the session's writer: a
        graph round trip never sits in the reader (docs/architecture.md)."""
        self.writer.submit(
            lambda: self._write_interrupted(resp, heard_text), f"cut record of {resp.response_id}"
        )

    async def _write_interrupted(self, resp: Response, heard_text: str) -> None:
        if resp.task is not None and not resp.task.done():  # its own last writes first
            await asyncio.wait([resp.task])
        config = self._graph_config()
        # a read-modify-write of the thread's state: under the run lock, or another
        # session's run on the thread would overwrite it (or be overwritten)
        async with self.grant.run_lock():
            snapshot = await self.rt.graph.aget_state(config)
            existing: list[Message] = list(snapshot.values.get("messages", []))
            updates = interruption_updates(existing, resp.turn, resp.reply_msg_id, heard_text)
            await self.rt.graph.aupdate_state(
                config, {"messages": updates, "barge_in_detected": True}, as_node="model"
            )

    async def on_audio_played(self, msg: m.AudioPlayed) -> None:
        resp = self._unended.get(msg.response_id)  # an ended one has nothing to correct
        if resp is None:
            return
        heard = resp.life.on_played(msg.played_ms, self.clock())
        if heard is not None:  # correct the stored record with what was really heard
            self._record_interrupted(resp, heard)
        self._take_end(resp)
