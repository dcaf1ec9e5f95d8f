"""What the user has heard of a reply (sans-I/O; callers pass wall-clock ``now``).

Barge-in must cut the stored assistant message to what was actually heard
(protocol §4). The engine knows which text each clause carried and where that
clause sits on the reply's audio timeline; the client tells us how much it
played (``audio.played``), and until it does we estimate from audio sent and
real-time pacing. Mapping played milliseconds back to words is done here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Clause:
    text: str
    start_ms: int
    end_ms: int | None = None


@dataclass
class ResponseAudio:
    response_id: str
    started_at: float | None = None  # wall time of audio.start
    sent_ms: int = 0  # audio sent so far, on the reply's timeline
    replayed_ms: int = 0  # audio sent again after a resume (the client dropped it)
    ended: bool = False  # audio.end sent
    played_ms: int | None = None  # from the client's audio.played
    halted: bool = False
    halted_ms: int | None = None  # where playback stood when halt_audio went out
    clauses: list[Clause] = field(default_factory=list)

    # ------------------------------------------------------------- producing

    def begin_clause(self, text: str, *, at_ms: int | None = None) -> None:
        at = self.sent_ms if at_ms is None else at_ms
        if self.clauses and self.clauses[-1].end_ms is None:
            self.clauses[-1].end_ms = at
        self.clauses.append(Clause(text, at))

    def add_audio(self, ms: int) -> None:
        self.sent_ms = ms

    @property
    def wire_ms(self) -> int:
        """Audio that crossed the wire — the timeline plus every replayed stretch
        (what is billed; what can be heard is ``sent_ms``)."""
        return self.sent_ms + self.replayed_ms

    def halt(self, now: float) -> None:
        """Playback stops now: freeze the heard position (until audio.played says)."""
        self.halted_ms = self.heard_ms(now)
        self.halted = True

    def resume(self, now: float) -> int:
        """Play on from the halt point; the timeline restarts there at ``now``."""
        from_ms = self.heard_ms(now)
        self.replayed_ms += max(0, self.sent_ms - from_ms)  # sent, dropped, sent again
        self.started_at = now - from_ms / 1000
        self.played_ms = None
        self.halted, self.halted_ms = False, None
        return from_ms

    def finish(self) -> None:
        if self.clauses and self.clauses[-1].end_ms is None:
            self.clauses[-1].end_ms = self.sent_ms
        self.ended = True

    # -------------------------------------------------------------- hearing

    def elapsed_ms(self, now: float) -> int:
        return 0 if self.started_at is None else max(0, int((now - self.started_at) * 1000))

    def heard_ms(self, now: float) -> int:
        """Client's report if any, else audio that was both sent and had time to play."""
        if self.played_ms is not None:
            return min(self.played_ms, self.sent_ms)
        if self.halted and self.halted_ms is not None:
            return self.halted_ms
        return min(self.sent_ms, self.elapsed_ms(now))

    def is_playing(self, now: float, *, grace_ms: int = 150) -> bool:
        """Protocol §7 'speaking': from audio.start until the audio has played out."""
        if self.started_at is None or self.halted:
            return False
        if not self.ended:
            return True
        if self.played_ms is not None and self.played_ms >= self.sent_ms:
            return False
        return self.elapsed_ms(now) < self.sent_ms + grace_ms

    def heard_text(self, heard_ms: int) -> str:
        """The words of the reply that fit in ``heard_ms`` of its audio.

        Whole clauses that finished playing, plus the share of the current
        clause's words proportional to how much of its audio played.
        """
        words: list[str] = []
        for c in self.clauses:
            end = c.end_ms if c.end_ms is not None else self.sent_ms
            if heard_ms >= end:
                words.extend(c.text.split())
                continue
            if heard_ms > c.start_ms and end > c.start_ms:
                parts = c.text.split()
                k = int(len(parts) * (heard_ms - c.start_ms) / (end - c.start_ms))
                words.extend(parts[:k])
            break
        return " ".join(words)
