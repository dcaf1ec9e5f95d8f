"""The life of one response, as a sans-I/O state machine (no sockets, no clocks).

Why a machine of its own: a response is cut in many ways — a barge-in while its
audio plays, speech while it thinks, ``interrupt``, a new ``text.input``, the
session closing — and each cut must send the same things in the same order
(``halt_audio`` first if audio plays, then one ``agent.done`` cut to what was
heard, then the stored record). Deciding that in one pure function, from one
``phase`` instead of scattered flags, is what lets the session have a single
cancel path and lets these rules be tested with a fake clock.

Phases::

    THINKING ──audio.start──▶ SPEAKING ──played out──▶ DONE
       │                         │  ▲
       │                  barge-in/interrupt
       │                         ▼  │ caught up
       └──cut / finished──▶ DONE  HALTED ──▶ RESUMED ──▶ SPEAKING
                                      (a barge-in judged false: resume_audio)

A barge-in halts *tentatively* (``cut_plan(..., tentative=True)``): the audio
stops at once (``halt_audio``, the gate shut) but nothing is decided about the
reply — its task runs on, no ``agent.done`` interrupted, nothing stored cut,
and **the response has not ended** (no :meth:`take_end`) — until
:meth:`ResponseLifecycle.confirm_cut` (a real interruption: exactly today's
cut, to what was heard at the halt, ending once that is known) or
:meth:`ResponseLifecycle.resume` (a backchannel or noise: the same response
plays on from there; its record is one uninterrupted reply).

(The session's "listening" is the absence of a live response.) The caller
passes ``now`` to every method; the adapter owns the clock.

**The end of a response** is one event, :meth:`ResponseLifecycle.take_end`
(an :class:`Ended`, given once), not ``agent.done``: the turn's record (thread
store, usage) needs the audio actually sent and what was heard, and both are
known only once nothing more plays — a reply played out (DONE), or cut and its
heard text final (a halted reply: the client's ``audio.played`` after the
halt, else the engine's estimate once ``played_wait_s`` passed, or at once
when the session closes, :meth:`ResponseLifecycle.conclude`). A halt that is
resumed (HALTED → RESUMED) has not ended; once ended it cannot resume.

Audio is counted twice over, on purpose: ``audio.sent_ms`` is where the reply's
*timeline* stands (what can have been heard — a resumed stretch is not heard
twice), ``audio.wire_ms`` is every millisecond that crossed the wire, replayed
ones included — that is what :class:`Ended` bills.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from voco.engine.playout import ResponseAudio


class Phase(enum.Enum):
    THINKING = "thinking"  # the model works; no audio yet
    SPEAKING = "speaking"  # audio.start went out
    HALTED = "halted"  # cut while audio played (halt_audio sent)
    RESUMED = "resumed"  # resume_audio sent after a false interruption; replay going out
    DONE = "done"  # nothing more is sent for this response


# Every legal move. HALTED → RESUMED → SPEAKING: a tentative halt judged false
# (engine/backchannel.py) resumes the same reply (issue 10).
_MOVES: dict[Phase, frozenset[Phase]] = {
    Phase.THINKING: frozenset({Phase.SPEAKING, Phase.DONE}),
    Phase.SPEAKING: frozenset({Phase.HALTED, Phase.DONE}),
    Phase.HALTED: frozenset({Phase.RESUMED, Phase.DONE}),
    Phase.RESUMED: frozenset({Phase.SPEAKING, Phase.HALTED, Phase.DONE}),
    Phase.DONE: frozenset(),
}


class LifecycleError(RuntimeError):
    """An illegal move: a bug in the adapter, never a client's doing."""


class Cut(enum.Enum):
    """Why a response is being cut (the adapter's words for the user's act)."""

    SPEECH = "speech"  # the user started speaking (a barge-in if audio plays)
    INTERRUPT = "interrupt"  # an ``interrupt`` message, or a new text turn
    CLOSE = "close"  # the session is ending; nothing more can be sent


@dataclass(frozen=True)
class Done:
    """What one ``agent.done`` says."""

    text: str
    interrupted: bool
    model: str


@dataclass(frozen=True)
class CutPlan:
    """What the adapter must do, in this order, to cut a response."""

    halt: str | None = None  # send halt_audio with this reason first
    stop_task: bool = False  # cancel the response task (model, TTS)
    done: Done | None = None  # then send this agent.done
    record_heard: str | None = None  # then store the reply cut to this text
    join_turn: bool = False  # the user's new words join this response's turn


NOTHING = CutPlan()


@dataclass(frozen=True)
class Ended:
    """A response is over: what its turn's record says (given once)."""

    text: str  # every word the reply wrote (what agent.done said if it finished)
    interrupted: bool
    heard_text: str | None  # interrupted: the words heard ("" if none); else None
    audio_ms: int  # reply audio actually sent to the client (a resume's replay included)
    model: str
    joined: bool = False  # cut by speech while thinking: its turn goes on, unrecorded


@dataclass
class TurnDeadlines:
    """Bounds on a turn's model calls (``EngineConfig``, ``voco serve`` flags).

    ``first_token_s``: a model call that has produced nothing by then fails
    (and falls back where a fallback is configured); ``total_s``: no single
    model call runs longer; ``still_working_s``: silence after which the user
    hears a short "still working on it" (once per response).
    """

    first_token_s: float = 15.0
    total_s: float = 90.0
    still_working_s: float = 2.0

    def __post_init__(self) -> None:
        for name in ("first_token_s", "total_s", "still_working_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


STILL_WORKING = "Still working on it. "


@dataclass
class ResponseLifecycle:
    """One response from the first thought to its last audible word."""

    audio: ResponseAudio
    started_at: float
    default_model: str = ""
    still_working_s: float = 2.0
    phase: Phase = Phase.THINKING
    running: bool = True  # its task has not ended
    model: str = ""  # the model that answered (router pick, then the real one)
    first_delta_at: float | None = None
    text: list[str] = field(default_factory=list)
    sent: Done | None = None  # the last agent.done sent for it
    # how long a halted reply waits for the client's audio.played before the
    # engine's estimate of what was heard stands (and the response ends)
    played_wait_s: float = 1.0
    halted_at: float | None = None
    pending_halt: bool = False  # halted tentatively: neither cut nor resumed yet
    _played_in_halt: bool = False  # audio.played came during the tentative halt
    _resumed_from: int | None = None  # timeline ms of the last resume
    _cue_given: bool = False
    _heard_at_cut: str = ""  # the estimate when cut (the clock runs on after a halt)
    _played_after_cut: bool = False
    _joined: bool = False
    _ended: bool = False

    # --------------------------------------------------------------- moves

    def _go(self, to: Phase) -> None:
        if to is not self.phase and to not in _MOVES[self.phase]:
            raise LifecycleError(f"response cannot go from {self.phase.value} to {to.value}")
        self.phase = to

    @property
    def cut(self) -> bool:
        """Whether it was cut by the user (or the session) rather than finishing."""
        return self.sent is not None and self.sent.interrupted

    def may_send_audio(self) -> bool:
        return self.phase in (Phase.THINKING, Phase.SPEAKING, Phase.RESUMED)

    def is_playing(self, now: float) -> bool:
        """Protocol §7 'speaking': audio went out and has not played out."""
        return self.may_send_audio() and self.audio.is_playing(now)

    def is_live(self, now: float) -> bool:
        """Still thinking or still audible: a new user act must cut it."""
        return self.running or self.is_playing(now)

    # -------------------------------------------------------------- events

    def on_text(self, text: str, now: float, *, from_model: bool = True) -> None:
        """Reply text went out. The still-working cue does not count as the first
        token (``from_model=False``): it must not hide a silent model."""
        if from_model and self.first_delta_at is None:
            self.first_delta_at = now
        self.text.append(text)

    def on_model(self, model: str) -> None:
        self.model = model

    def on_audio_start(self, now: float) -> bool:
        """``audio.start`` is due; False if the response was already cut."""
        if not self.may_send_audio():
            return False
        self.audio.started_at = now
        self._go(Phase.SPEAKING)
        return True

    def still_working_due(self, now: float) -> bool:
        """True once, when the user has heard nothing for ``still_working_s``."""
        if self._cue_given or not self.running or self.phase is not Phase.THINKING:
            return False
        if self.text or now - self.started_at < self.still_working_s:
            return False
        self._cue_given = True
        return True

    def next_cue_at(self) -> float | None:
        """When the adapter should next ask :meth:`still_working_due`."""
        if self._cue_given or self.text or self.phase is not Phase.THINKING:
            return None
        return self.started_at + self.still_working_s

    def finished(self) -> Done | None:
        """The response's text is complete: the (first) ``agent.done``, if not cut."""
        if self.cut:
            return None
        self.sent = Done("".join(self.text), False, self.model or self.default_model)
        return self.sent

    def task_ended(self, now: float) -> None:
        self.running = False
        self.settle(now)

    def settle(self, now: float) -> bool:
        """Move to DONE once nothing runs and nothing plays — for a halted reply,
        once what was heard is known (see the module doc); True if it is done."""
        if self.phase is Phase.DONE:
            return True
        if self.pending_halt:  # undecided: it may yet play on
            return False
        if self.phase is Phase.HALTED:
            if self.halted_at is None:  # halted by a move other than a cut
                self.halted_at = now
            if not self._played_after_cut and now < self.halted_at + self.played_wait_s:
                return False
        elif self.running or self.is_playing(now):
            return False
        self._go(Phase.DONE)
        return True

    def take_end(self, now: float) -> Ended | None:
        """The response's end, once: None until it has settled, and after it was
        taken. The turn's record hangs off this and nothing else."""
        if self._ended or not self.settle(now):
            return None
        self._ended = True
        model = self.sent.model if self.sent is not None else (self.model or self.default_model)
        text = "".join(self.text)
        if not self.cut:
            return Ended(text, False, None, self.audio.wire_ms, model)
        heard = self._heard_at_cut
        if self._played_after_cut and self.audio.played_ms is not None:
            heard = self.audio.heard_text(min(self.audio.played_ms, self.audio.sent_ms))
        return Ended(text, True, heard, self.audio.wire_ms, model, joined=self._joined)

    def conclude(self, now: float) -> Ended | None:
        """End it now (the session closes): a halted reply stops waiting for
        ``audio.played`` and the estimate stands; one still live is cut first."""
        if self._ended:
            return None
        if not self.cut and not self.settle(now):
            self.cut_plan(Cut.CLOSE, now)
        if self.phase is not Phase.DONE:
            self._go(Phase.DONE)
        return self.take_end(now)

    # ----------------------------------------------------------------- cut

    def cut_plan(self, why: Cut, now: float, *, tentative: bool = False) -> CutPlan:
        """Decide (and enter) the cut. Idempotent: a second cut plans nothing.

        ``tentative`` (speech while audio plays): only the halt — ``halt_audio``
        and the gate shut — and the response waits for :meth:`confirm_cut` or
        :meth:`resume`. Any other cut of a response halted tentatively confirms
        it (closing: without sending anything).

        * audio playing → ``halt_audio`` first (``barge_in`` for speech), the
          audio gate shut, so no audio frame can follow it;
        * a running task is stopped;
        * one ``agent.done`` with ``interrupted: true`` and the words heard
          ("" if none) — even when a first ``agent.done`` already went out while
          audio still played: this one supersedes it (docs/protocol.md);
        * the stored record is cut to what was heard, if anything was;
        * speech while nothing was heard joins the user's turn.
        Closing sends nothing: the socket is going away.
        """
        if self.pending_halt:
            plan = self.confirm_cut(now)
            return CutPlan(stop_task=plan.stop_task) if why is Cut.CLOSE else plan
        if self.cut or not self.is_live(now):
            return NOTHING
        playing = self.is_playing(now)
        if tentative and playing and why is Cut.SPEECH:
            self.audio.halt(now)
            self.halted_at = now
            self._go(Phase.HALTED)
            self.pending_halt = True
            self._played_in_halt = False
            return CutPlan(halt="barge_in")
        heard = self.audio.started_at is not None
        heard_text = self.audio.heard_text(self.audio.heard_ms(now)) if heard else ""
        halt: str | None = None
        self._heard_at_cut = heard_text
        self._joined = why is Cut.SPEECH and not heard
        if playing:
            self.audio.halt(now)
            self.halted_at = now
            self._go(Phase.HALTED)
            if why is not Cut.CLOSE:
                halt = "barge_in" if why is Cut.SPEECH else "interrupt"
        elif self.phase is not Phase.HALTED:
            self.audio.halted = True
            self._go(Phase.DONE)
        done = Done(heard_text, True, self.model or self.default_model)
        self.sent = done
        if why is Cut.CLOSE:
            return CutPlan(stop_task=self.running)
        return CutPlan(
            halt=halt,
            stop_task=self.running,
            done=done,
            record_heard=heard_text if heard else None,
            join_turn=why is Cut.SPEECH and not heard,
        )

    def on_played(self, played_ms: int, now: float) -> str | None:
        """The client's ``audio.played``; returns the corrected heard text if the
        response was halted (the stored record must be cut to it)."""
        if self._resumed_from is not None and played_ms <= self._resumed_from:
            return None  # an earlier halt's report, overtaken by the resume
        self.audio.played_ms = played_ms
        if self.pending_halt:  # kept for the verdict: a cut is then cut to it
            self._played_in_halt = True
            return None
        if self.phase is Phase.HALTED or (self.cut and self.audio.started_at is not None):
            self._played_after_cut = True  # what was heard is known: the reply may end
            return self.audio.heard_text(self.audio.heard_ms(now))
        return None

    # -------------------------------------------------- tentative halt decided

    def confirm_cut(self, now: float) -> CutPlan:
        """The tentative halt was a real interruption: the cut it deferred, as
        any cut of a playing reply — stop the task, ``agent.done`` interrupted
        with what was heard up to the halt, the record cut to it (no second
        ``halt_audio``) — and the response ends as any halted one does: once
        the client's ``audio.played`` came (during the halt counts), else
        ``played_wait_s`` after the *halt*, or at close."""
        if not self.pending_halt:
            return NOTHING
        self.pending_halt = False
        heard_text = self.audio.heard_text(self.audio.heard_ms(now))
        self._heard_at_cut = heard_text
        self._played_after_cut = self._played_in_halt
        done = Done(heard_text, True, self.model or self.default_model)
        self.sent = done
        return CutPlan(stop_task=self.running, done=done, record_heard=heard_text)

    def resume(self, now: float) -> int | None:
        """The tentative halt was nothing: play on. Returns the resume point on the
        reply's audio timeline (what the client played, else the engine's estimate
        at the halt), or None if there is nothing to resume. The playback clock is
        re-anchored so that the reply's timeline continues from there *now*; the
        halt leaves no trace in what the response's end will say."""
        if not self.pending_halt:
            return None
        self.pending_halt = False
        self._played_in_halt = False
        self.halted_at = None
        from_ms = self.audio.resume(now)
        self._resumed_from = from_ms
        self._go(Phase.RESUMED)
        return from_ms

    def caught_up(self) -> None:
        """The replayed audio is out: an ordinary speaking response again."""
        if self.phase is Phase.RESUMED:
            self._go(Phase.SPEAKING)
