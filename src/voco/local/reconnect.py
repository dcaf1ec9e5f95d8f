"""When and how a client reconnects to the engine, and which typed turns it re-sends.

Sans-I/O and clock-injected: the adapters (``voco talk``, the UI relay) feed
in what happened — a close code, a refused connection, a sent ``text.input``,
an ``agent.done``, the thread's stored turns after the reconnect — with the
time, and get back decisions. No sockets, no sleeping, no randomness of its
own (the jitter source is injected), so every rule is a plain unit test.

Why this exists: an engine behind a load balancer goes away (a drain closes
1012, a crash looks like 1006 or a refused connection) and another engine on
the same database can resume the thread. A client that reconnects with the
same ``thread_id`` loses nothing if it also re-sends the one typed turn that
was in flight — but only if that turn did not in fact finish: the engine
stores finished turns in the thread's checkpoint, so the stored turns decide.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

# The session cannot succeed by trying again: a bad or expired token (a fresh
# one is presented at every connect, so 4401 after that is real), no
# subscription, someone else's thread, a protocol bug in this client.
FATAL_CLOSES: dict[int, str] = {
    4400: "the engine refused this client's messages (protocol error)",
    4401: "the access token was refused",
    4402: "the organisation has no active subscription",
    4403: "forbidden",
}
NORMAL_CLOSE = 1000  # session.end, or we closed: nothing to resume
AT_CAPACITY = 4503


@dataclass(frozen=True)
class Retry:
    """Connect again at ``at`` (same clock as the ``now`` given)."""

    at: float
    delay_s: float
    attempt: int  # 1 for the first retry after a loss
    why: str


@dataclass(frozen=True)
class GiveUp:
    """Stop: ``message`` says why, for the person."""

    message: str
    fatal: bool  # True: refused for good (4401/4402/4403/4400); False: outage too long


Decision = Retry | GiveUp


@dataclass
class ReconnectPolicy:
    """Capped, jittered exponential backoff with the engine's retry-after honoured.

    Delay for attempt *n* is ``min(cap, base·2^(n-1))`` scaled by a factor in
    ``[1 - jitter, 1]`` from ``rng`` (so many clients dropped by one engine do
    not all knock on the next at the same instant); a 4503 ``retry_after_ms``
    is a floor. ``give_up_after_s`` bounds one outage (None: never give up).
    """

    base_s: float = 0.25
    cap_s: float = 10.0
    jitter: float = 0.5
    give_up_after_s: float | None = None
    rng: Callable[[], float] = field(default=random.random)
    attempt: int = 0
    _outage_since: float | None = None

    def connected(self) -> None:
        """A session is open again: the next loss starts from the first delay."""
        self.attempt = 0
        self._outage_since = None

    def closed(
        self, code: int | None, now: float, *, retry_after_ms: int | None = None, reason: str = ""
    ) -> Decision:
        """The session's WebSocket closed with ``code`` (None: no close frame, 1006)."""
        if code in FATAL_CLOSES:
            why = FATAL_CLOSES[code]
            return GiveUp(f"{why}: {reason}" if reason else why, fatal=True)
        if code == NORMAL_CLOSE:
            return GiveUp(reason or "the engine ended the session", fatal=True)
        if code == AT_CAPACITY:
            why = "the engine is at capacity"
        elif code in (1001, 1012):
            why = "the engine is going away (drain or restart)"
        elif code is None or code == 1006:
            why = "the engine connection was lost"
        else:
            why = f"the engine closed the session ({code})"
        return self._retry(now, why, retry_after_ms)

    def unreachable(self, now: float, message: str) -> Decision:
        """Nothing answered (connection refused, a timeout, no Voco engine there)."""
        return self._retry(now, f"engine unreachable: {message}", None)

    def _retry(self, now: float, why: str, retry_after_ms: int | None) -> Decision:
        if self._outage_since is None:
            self._outage_since = now
        elif self.give_up_after_s is not None and now - self._outage_since >= self.give_up_after_s:
            return GiveUp(f"{why}; gave up after {self.give_up_after_s:g} s", fatal=False)
        self.attempt += 1
        step = min(self.cap_s, self.base_s * 2 ** (self.attempt - 1))
        delay = step * (1.0 - self.jitter * min(1.0, max(0.0, self.rng())))
        if retry_after_ms is not None and retry_after_ms > 0:
            delay = max(delay, min(retry_after_ms / 1000, 60.0))  # a floor, sanely capped
        return Retry(at=now + delay, delay_s=delay, attempt=self.attempt, why=why)


class StoredTurn(Protocol):
    """What :meth:`PendingTurns.synced` reads of a ``thread.history`` turn."""

    @property
    def turn_id(self) -> str: ...
    @property
    def user_text(self) -> str: ...
    @property
    def reply_text(self) -> str: ...
    @property
    def interrupted(self) -> bool: ...


@dataclass(frozen=True)
class Resolved:
    """An orphaned typed turn after a sync: already answered (``reply`` from the
    thread), to be sent again (``resend``), or ``lost`` (it was already re-sent
    once; the caller tells the person)."""

    text: str
    outcome: Literal["answered", "resend", "lost"]
    reply: str = ""
    # the live turn id the lost connection gave it (``transcript.final``), if
    # one did: a page that showed that turn can tell which one this settles
    turn_id: str | None = None


_UNSYNCED = object()


@dataclass
class _Pending:
    text: str
    turn_id: str | None = None  # the live turn id, once transcript.final named it
    resent: bool = False
    orphaned: bool = False  # its connection was lost before the answer came
    shown_id: str | None = None  # the last live turn id, kept across a loss


class PendingTurns:
    """Typed turns sent on this thread and not yet answered by their ``agent.done``.

    After a loss (:meth:`lost`) the next sync (:meth:`synced`, the thread's
    stored turns on the new connection) decides what happened to each orphaned
    turn: one that finished was stored with its reply — counted against the
    finished turns of the same text this client already saw since the previous
    sync, so "run the tests" twice is two turns — and is answered, not re-sent;
    any other is re-sent, once: a turn lost twice is reported, not looped.
    Turns sent on the new connection are not touched by that sync.
    """

    def __init__(self) -> None:
        self._pending: list[_Pending] = []
        self._baseline: object = _UNSYNCED  # newest stored turn id at the last sync
        self._done_since: Counter[str] = Counter()  # answered texts since that sync

    @property
    def texts(self) -> list[str]:
        return [p.text for p in self._pending]

    def sent(
        self,
        text: str,
        *,
        resend: bool = False,
        orphaned: bool = False,
        shown_id: str | None = None,
    ) -> None:
        """A ``text.input`` went out (``orphaned``: into a link known to be down,
        so the next sync settles it like one the loss caught in flight)."""
        self._pending.append(_Pending(text, resent=resend, orphaned=orphaned, shown_id=shown_id))

    def transcript(self, turn_id: str, text: str) -> None:
        """``transcript.final``: a typed turn's own (same text) gets its live id."""
        if any(p.turn_id == turn_id for p in self._pending):
            return
        for p in self._pending:
            if p.turn_id is None and not p.orphaned and p.text == text:
                p.turn_id = p.shown_id = turn_id
                return

    def done(self, turn_id: str) -> str | None:
        """``agent.done``: the typed turn it answers (its text), if any."""
        for i, p in enumerate(self._pending):
            if p.turn_id == turn_id and not p.orphaned:
                del self._pending[i]
                self._done_since[p.text] += 1
                return p.text
        return None

    def lost(self) -> None:
        """The connection dropped: every turn still pending is orphaned (its
        live turn id means nothing on the next connection)."""
        for p in self._pending:
            p.orphaned, p.turn_id = True, None

    def synced(self, page: Sequence[StoredTurn]) -> list[Resolved]:
        """The thread's newest stored turns (oldest first, as ``thread.history``
        gives them), asked for right after a (re)connect. Returns what to do
        with each orphaned turn, in the order they were sent; the caller sends
        the ``resend`` ones again with ``sent(text, resend=True)``."""
        turns = list(page)
        since = self._since_baseline(turns)
        replies: dict[str, list[str]] = {}
        for t in since:
            if t.reply_text or t.interrupted:  # a user message alone did not finish
                replies.setdefault(t.user_text, []).append(t.reply_text)
        for text, n in self._done_since.items():
            del replies.get(text, [])[:n]
        out: list[Resolved] = []
        live: list[_Pending] = []
        for p in self._pending:
            if not p.orphaned:
                live.append(p)
            elif replies.get(p.text):
                out.append(Resolved(p.text, "answered", replies[p.text].pop(0), p.shown_id))
            elif not p.resent:
                out.append(Resolved(p.text, "resend", turn_id=p.shown_id))
            else:  # sent twice and lost twice: reported, not looped
                out.append(Resolved(p.text, "lost", turn_id=p.shown_id))
        self._pending = live
        self._baseline = turns[-1].turn_id if turns else None
        self._done_since.clear()
        return out

    def _since_baseline(self, turns: list[StoredTurn]) -> list[StoredTurn]:
        if self._baseline is _UNSYNCED:  # never synced: every stored turn may be ours
            return turns
        if self._baseline is None:  # the thread was empty at the last sync
            return turns
        for i, t in enumerate(turns):
            if t.turn_id == self._baseline:
                return turns[i + 1 :]
        return turns  # the baseline scrolled out of the page: everything shown is newer
