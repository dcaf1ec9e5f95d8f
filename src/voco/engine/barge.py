"""The asyncio side of a tentative barge-in: feeds a :class:`BargeJudge` and
carries out its verdict through the session (resume the reply, or cut it).

Kept out of :mod:`voco.engine.session` so the session only says *when* (speech
started, words heard, the turn ended) and this says *what follows*. The state
it keeps is per utterance: a backchannel's own transcript must not become a
turn, and speech that goes on after a resume is judged again.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from voco.engine.backchannel import BargeJudge, BargeTimings, Verdict, still_no_turn, words_of
from voco.engine.response import Response
from voco.protocol import messages as m


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
            await asyncio.sleep(max(0.02, due - self._clock()))
            if judge is not self._judge:
                return
            v = judge.poll(
                self._clock(),
                in_speech=self._host.user_in_speech(),
                quiet_ms=self._host.user_quiet_ms(),
            )
            if v is not Verdict.PENDING:
                await self._act(judge, v)

    async def _act(self, judge: BargeJudge, v: Verdict) -> None:
        resp = self._resp
        if v is Verdict.PENDING or resp is None or judge is not self._judge:
            return
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
