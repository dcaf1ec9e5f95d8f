"""One browser page ↔ one engine session (docs/ui-protocol.md).

The runtime, not the page, holds the engine session: it relays audio and the
protocol's messages both ways, answers ``mcp.request``s itself through the
sandbox (they never reach the page), and reconnects to the engine — resuming
the same thread — when that connection drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import websockets
from starlette.websockets import WebSocket, WebSocketDisconnect

from voco.local.engine_client import EngineClient, SessionRefused
from voco.local.mcp_bridge import McpBridge
from voco.local.reconnect import Decision, GiveUp, PendingTurns, ReconnectPolicy
from voco.local.resuming import retry_after_ms
from voco.local.ui.approvals import UiApprovals
from voco.protocol import messages as m
from voco.protocol import ui_messages as ui

log = logging.getLogger("voco.local")

MAX_BACKOFF_S = 10.0
HISTORY_PAGE = 20  # turns asked for when a page (re)connects; the page pages back
RESTARTED = -1  # _pump's answer when the page asked for a new engine session


class Settings(Protocol):
    """The runtime-wide settings a page may change (``settings.update``)."""

    def approve_choices(self) -> list[ui.ApproveMode]: ...

    async def set_approve(self, mode: ui.PageApproveMode) -> None: ...


@dataclass
class RuntimeConfig:
    engine_url: str
    token: str
    project_id: str = "default"
    encoding: str = "mp3"
    # Called at every (re)connect when set, so a long-running runtime never
    # presents an expired token (``voco up`` issues short-lived ones).
    token_source: Callable[[], str] | None = None

    def fresh_token(self) -> str:
        return self.token_source() if self.token_source is not None else self.token


class BrowserRelay:
    def __init__(
        self,
        ws: WebSocket,
        config: RuntimeConfig,
        bridge: McpBridge,
        approvals: UiApprovals | None,
        thread_id: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.ws = ws
        self.cfg = config
        self.bridge = bridge
        self.approvals = approvals
        self.settings = settings
        self.engine: EngineClient | None = None
        self.engine_state: ui.EngineLink = "connecting"
        self.engine_message: str | None = None
        self.thread_id = thread_id  # a reconnecting page resumes its conversation
        self._send_lock = asyncio.Lock()
        self._restart = asyncio.Event()
        self._closed = False
        self.pending = PendingTurns()  # typed turns until their agent.done
        self._synced = False
        self._last_fatal: m.Error | None = None

    async def send(self, msg: m._Msg) -> None:
        async with self._send_lock:
            await self.ws.send_text(msg.to_json())

    async def status(
        self,
        engine: ui.EngineLink,
        message: str | None = None,
        *,
        attempt: int | None = None,
        retry_in_ms: int | None = None,
    ) -> None:
        """Tell the page where the engine link stands (and the settings in force)."""
        self.engine_state, self.engine_message = engine, message
        await self.send(
            ui.RuntimeStatus(
                engine=engine,
                roots=[str(r) for r in self.bridge.roots],
                approve=self.bridge.approve_mode,  # type: ignore[arg-type]
                approve_choices=self.settings.approve_choices() if self.settings else [],
                message=message,
                attempt=attempt,
                retry_in_ms=retry_in_ms,
            )
        )

    async def _error(self, code: str, message: str) -> None:
        await self.send(m.Error(code=code, message=message, fatal=False))

    async def run(self) -> None:
        pump = asyncio.create_task(self._engine_loop())
        try:
            await self._browser_loop()
        finally:
            self._closed = True
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
            if self.engine is not None:
                self.bridge.cancel_pending(self.engine)
                await self.engine.close()

    # ----------------------------------------------------------- engine side

    async def _engine_loop(self) -> None:
        """Connect, relay, and when the engine goes away (drain 1012, a crash, at
        capacity 4503) reconnect with backoff, resuming the thread and re-sending
        a typed turn that was in flight (:mod:`voco.local.reconnect`)."""
        policy = ReconnectPolicy(cap_s=MAX_BACKOFF_S)
        decision: Decision | None = None
        while not self._closed:
            if decision is None or isinstance(decision, GiveUp):
                await self.status("connecting")
            start = m.SessionStart(
                token=self.cfg.fresh_token(),
                project_id=self.cfg.project_id,
                thread_id=self.thread_id,
                audio=m.AudioConfig(output=m.AudioOutput(encoding=self.cfg.encoding)),  # type: ignore[arg-type]
            )
            try:
                self.engine = await EngineClient.connect(self.cfg.engine_url, start)
            except SessionRefused as exc:
                why = exc.error.message if exc.error else ""
                after = retry_after_ms(exc.error)
                decision = policy.closed(
                    exc.code, time.monotonic(), retry_after_ms=after, reason=why
                )
            except OSError as exc:
                decision = policy.unreachable(time.monotonic(), str(exc))
            else:
                policy.connected()
                self.thread_id = self.engine.ready.thread_id
                await self.send(self.engine.ready)
                await self.status("connected")
                if self.approvals is not None:  # prompts opened before this page came
                    for prompt in self.approvals.open_prompts():
                        await self.send(prompt)
                # the conversation so far (a reloaded page, or after a reconnect);
                # the answer comes back through the pump like any engine message,
                # and settles the typed turns the last connection left unanswered
                self._synced = False
                with contextlib.suppress(Exception):
                    await self.engine.send(m.ThreadHistoryRequest(limit=HISTORY_PAGE))
                code = await self._pump(self.engine)
                self.bridge.cancel_pending(self.engine)  # nobody is waiting for those now
                self.pending.lost()
                with contextlib.suppress(Exception):
                    await self.engine.close()
                self.engine = None
                if code == RESTARTED:
                    decision = None
                    self._restart.clear()
                    continue
                err, self._last_fatal = self._last_fatal, None
                decision = policy.closed(
                    code,
                    time.monotonic(),
                    retry_after_ms=retry_after_ms(err),
                    reason=err.message if err is not None else "",
                )
            if isinstance(decision, GiveUp):
                await self.status("disconnected", decision.message)
                if decision.fatal:
                    return  # retrying cannot help; the page says why
                delay = MAX_BACKOFF_S
            else:
                delay = max(0.0, decision.at - time.monotonic())
                await self.status(
                    "reconnecting",
                    f"{decision.why}; reconnecting and resuming this conversation",
                    attempt=decision.attempt,
                    retry_in_ms=int(delay * 1000),
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._restart.wait(), delay)
            self._restart.clear()

    async def _settle(self, engine: EngineClient, history: m.ThreadHistory) -> None:
        """The first newest-page history after a connect: re-send the typed turns
        the last engine never finished (once), say which were lost twice."""
        if self._synced or history.before is not None:
            return
        self._synced = True
        for r in self.pending.synced(history.turns):
            if r.outcome == "resend":
                self.pending.sent(r.text, resend=True)
                with contextlib.suppress(Exception):
                    await engine.send(m.TextInput(text=r.text))
            elif r.outcome == "lost":
                await self._error(
                    "turn_lost",
                    f"the engine went away twice while answering {r.text!r}; send it again",
                )

    async def _pump(self, engine: EngineClient) -> int | None:
        """Relay until the engine connection ends; its close code (None: no close
        frame), or ``RESTARTED`` when the page asked for a new session."""
        restart = asyncio.create_task(self._restart.wait())
        recv: asyncio.Task[Any] | None = None
        try:
            while True:
                recv = asyncio.create_task(engine.recv())
                done, _ = await asyncio.wait({recv, restart}, return_when=asyncio.FIRST_COMPLETED)
                if restart in done:
                    await engine.close()
                    return RESTARTED
                try:
                    item = recv.result()
                except websockets.ConnectionClosed as exc:
                    return exc.rcvd.code if exc.rcvd else None
                except Exception:  # garbage from the engine: treat as a lost link
                    return None
                msg = item.message
                if item.audio is not None:
                    async with self._send_lock:
                        await self.ws.send_bytes(item.audio)
                    continue
                if isinstance(msg, m.McpRequest):
                    self.bridge.submit(msg, engine)  # never shown to the page
                    continue
                if isinstance(msg, m.TranscriptFinal):
                    self.pending.transcript(msg.turn_id, msg.text)
                elif isinstance(msg, m.AgentDone):
                    self.pending.done(msg.turn_id)
                elif isinstance(msg, m.Error) and msg.fatal:
                    self._last_fatal = msg
                if msg is not None:
                    async with self._send_lock:
                        await self.ws.send_text(msg.to_json())
                if isinstance(msg, m.ThreadHistory):
                    await self._settle(engine, msg)
        finally:
            restart.cancel()
            if recv is not None and not recv.done():
                recv.cancel()
            if recv is not None:  # retrieve it, so a closed socket is not logged as lost
                with contextlib.suppress(BaseException):
                    await recv

    # ---------------------------------------------------------- browser side

    async def _browser_loop(self) -> None:
        while True:
            try:
                frame = await self.ws.receive()
            except WebSocketDisconnect:
                return
            if frame["type"] == "websocket.disconnect":
                return
            if frame.get("bytes") is not None:
                if self.engine is not None:
                    with contextlib.suppress(Exception):
                        await self.engine.send_audio(frame["bytes"])
            elif frame.get("text") is not None:
                await self._browser_message(frame["text"])

    async def _browser_message(self, text: str) -> None:
        try:
            msg = ui.parse_browser(text)
        except m.ProtocolError as exc:
            await self._error(exc.code, exc.message)
            return
        if isinstance(msg, ui.RELAYED_TO_ENGINE):
            engine = self.engine
            if engine is None or self.engine_state != "connected":
                if isinstance(msg, m.TextInput):  # never dropped silently
                    await self._error(
                        "engine_offline", "the engine is not connected; the turn was not sent"
                    )
                return
            if isinstance(msg, m.TextInput):  # tracked until its agent.done
                self.pending.sent(msg.text)
            try:
                await engine.send(msg)
            except Exception:
                # the link just dropped: a typed turn stays pending and is re-sent
                # after the reconnect (unless the thread shows it finished)
                if self.engine is engine or self.engine is None:
                    self.pending.lost()
        elif isinstance(msg, ui.ApprovalDecision):
            if self.approvals is not None:
                self.approvals.decide(msg.id, msg.approve)
        elif isinstance(msg, ui.SessionRestart):
            self._restart.set()
        elif isinstance(msg, ui.SettingsUpdate):
            if self.settings is None:
                await self._error("unsupported", "this runtime has no settings to change")
                return
            try:
                await self.settings.set_approve(msg.approve)
            except ValueError as exc:
                await self._error("invalid_setting", str(exc))
