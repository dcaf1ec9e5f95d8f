"""An engine session that survives its engine: reconnect, resume the thread, re-send.

The asyncio adapter around :mod:`voco.local.reconnect`: when the WebSocket
closes with a going-away (1012), abnormal (1006) or at-capacity (4503) code,
or the engine cannot be reached, it waits as the policy says, connects again
with the same ``thread_id`` (through a load balancer that is another engine on
the same database), asks for the thread's stored turns and re-sends the typed
turn that was in flight unless the thread shows it finished. 4400/4401/4402/
4403 are final (:class:`SessionRefused`, with the engine's message).

Audio is not replayed: speech cut by a crash is said again by the person.
Each connection is its own :class:`EngineClient`, so MCP request ids (unique
per engine session) never collide in the bridge across a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import websockets

from voco.local.engine_client import EngineClient, EngineUnreachable, Received, SessionRefused
from voco.local.reconnect import GiveUp, PendingTurns, ReconnectPolicy, Resolved
from voco.protocol import messages as m

HISTORY_PAGE = 100  # stored turns read after a reconnect (the protocol's maximum)


class ResumeFailed(EngineUnreachable):
    """The engine stayed away longer than the policy allows."""


@dataclass(frozen=True)
class Reconnecting:
    """Told to ``on_reconnect`` before each wait: attempt, delay and why."""

    attempt: int
    delay_s: float
    why: str


StartFactory = Callable[[str | None], m.SessionStart]  # thread_id -> session.start


def retry_after_ms(error: m.Error | None, raw: str | None = None) -> int | None:
    """A refusal's ``retry_after_ms`` (at capacity / draining), if the engine gave one."""
    value = getattr(error, "retry_after_ms", None)
    if value is None and raw:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            value = json.loads(raw).get("retry_after_ms")
    return value if isinstance(value, int) and value >= 0 else None


class ResumingSession:
    def __init__(
        self,
        url: str,
        start: StartFactory,
        *,
        policy: ReconnectPolicy | None = None,
        on_reconnect: Callable[[Reconnecting], Awaitable[None]] | None = None,
        on_lost: Callable[[EngineClient], None] | None = None,
        on_connected: Callable[[EngineClient], Awaitable[None]] | None = None,
        history_limit: int = HISTORY_PAGE,
        report_sync: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``on_connected`` runs after each handshake, before the sync (the UI
        relay forwards ``session.ready`` there). ``report_sync``: deliver the
        sync's ``thread.history`` and every settlement, re-sends included,
        through :meth:`recv` (a page shows them; ``voco talk`` needs neither)."""
        self.url = url
        self._start = start
        self.policy = policy or ReconnectPolicy(give_up_after_s=120.0)
        self.pending = PendingTurns()
        self._on_reconnect = on_reconnect
        self._on_lost = on_lost
        self._on_connected = on_connected
        self._history_limit = history_limit
        self._report_sync = report_sync
        self._clock = clock
        self.up = False  # a session is open and synced (False while reconnecting)
        self.client: EngineClient | None = None
        self.thread_id: str | None = None
        self.reconnects = 0
        self.resent = 0  # typed turns sent again after a reconnect
        self._backlog: list[Received] = []  # read while syncing, delivered after
        self._last_error: m.Error | None = None

    @property
    def ready(self) -> m.SessionReady:
        assert self.client is not None
        return self.client.ready

    async def open(self, *, first: bool = True) -> None:
        """Connect and sync the thread's stored turns. The first connect fails at
        once when nothing answers (the engine is not running: say so now, not in
        two minutes); after a loss, and on 4503/1012 at any time, it retries."""
        code: int | None = None
        while True:
            try:
                self.client = await EngineClient.connect(self.url, self._start(self.thread_id))
            except SessionRefused as exc:
                code = exc.code
                decision = self.policy.closed(
                    exc.code,
                    self._clock(),
                    retry_after_ms=retry_after_ms(exc.error),
                    reason=exc.error.message if exc.error else "",
                )
            except EngineUnreachable as exc:
                if first:
                    raise
                decision = self.policy.unreachable(self._clock(), str(exc))
            else:
                self.thread_id = self.client.ready.thread_id
                self.up = True  # a turn typed from here on goes out on this connection
                try:
                    if self._on_connected is not None:
                        await self._on_connected(self.client)
                    await self._sync()
                except websockets.ConnectionClosed as exc:  # lost again while syncing
                    self.up = False
                    self.pending.lost()
                    decision = self.policy.closed(
                        exc.rcvd.code if exc.rcvd else None, self._clock()
                    )
                else:
                    self.policy.connected()
                    return
            if isinstance(decision, GiveUp):
                if decision.fatal:
                    raise SessionRefused(code, None, decision.message)
                raise ResumeFailed(decision.message)
            if self._on_reconnect is not None:
                await self._on_reconnect(
                    Reconnecting(decision.attempt, decision.delay_s, decision.why)
                )
            await asyncio.sleep(max(0.0, decision.at - self._clock()))

    async def _sync(self) -> None:
        """Ask for the stored turns; settle every turn the last connection orphaned."""
        assert self.client is not None
        await self.client.send(m.ThreadHistoryRequest(limit=self._history_limit))
        while True:
            item = await self.client.recv()
            if isinstance(item.message, m.ThreadHistory) and item.message.before is None:
                break
            self._backlog.append(item)
        if self._report_sync:
            self._backlog.append(item)
        for r in self.pending.synced(item.message.turns):
            if r.outcome == "resend":
                self.pending.sent(r.text, resend=True, shown_id=r.turn_id)
                self.resent += 1
                await self.client.send(m.TextInput(text=r.text))
                if self._report_sync:
                    self._backlog.append(Received(item.at, resolved=r))
            else:
                self._backlog.append(Received(item.at, resolved=r))

    async def recv(self) -> Received:
        """The next item; a lost connection is resumed underneath (``Received.resolved``
        reports a turn that finished, or was lost twice, while the link was down)."""
        while True:
            if self._backlog:
                return self._backlog.pop(0)
            assert self.client is not None
            try:
                item = await self.client.recv()
            except websockets.ConnectionClosed as exc:
                await self._lost(exc)
                continue
            msg = item.message
            if isinstance(msg, m.TranscriptFinal):
                self.pending.transcript(msg.turn_id, msg.text)
            elif isinstance(msg, m.AgentDone):
                self.pending.done(msg.turn_id)
            elif isinstance(msg, m.Error) and msg.fatal:
                self._last_error = msg  # the close that follows decides: retry or refuse
                continue
            return item

    async def _lost(self, exc: websockets.ConnectionClosed) -> None:
        old = self.client
        assert old is not None
        self.up = False
        if self._on_lost is not None:
            self._on_lost(old)
        code = exc.rcvd.code if exc.rcvd else None
        error, self._last_error = self._last_error, None
        decision = self.policy.closed(
            code,
            self._clock(),
            retry_after_ms=retry_after_ms(error),
            reason=error.message if error is not None else (exc.rcvd.reason if exc.rcvd else ""),
        )
        if isinstance(decision, GiveUp):
            raise SessionRefused(code, error, decision.message) from exc
        self.pending.lost()
        self.reconnects += 1
        if self._on_reconnect is not None:
            await self._on_reconnect(Reconnecting(decision.attempt, decision.delay_s, decision.why))
        await asyncio.sleep(max(0.0, decision.at - self._clock()))
        await self.open(first=False)

    async def send_text(self, text: str) -> None:
        """A typed turn, tracked until its ``agent.done`` (re-sent after a loss).
        Sent while the link is known to be down, it waits for the next sync."""
        if not self.up:
            self.pending.sent(text, orphaned=True)
            return
        self.pending.sent(text)
        with contextlib.suppress(websockets.ConnectionClosed):
            assert self.client is not None
            await self.client.send(m.TextInput(text=text))
        # a send into a dying socket is settled by the sync after the reconnect

    async def send(self, msg: m._Msg) -> None:
        if self.client is not None:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self.client.send(msg)

    async def send_audio(self, pcm: bytes) -> None:
        """Microphone audio; dropped while the link is down (speech is not replayed)."""
        if self.client is not None:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self.client.send_audio(pcm)

    async def restart(self) -> None:
        """End this session (``session.end``) and open a new one on the same
        thread now, as after a loss but without waiting (the page's Reconnect)."""
        await self.close()
        self.pending.lost()
        self.up = False
        self._backlog.clear()
        self.policy.connected()
        await self.open(first=False)

    async def close(self) -> None:
        self.up = False
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.send(m.SessionEnd())
            await self.client.close()


__all__ = ["Reconnecting", "Resolved", "ResumeFailed", "ResumingSession", "retry_after_ms"]
