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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from voco.local.engine_client import EngineClient, Received, SessionRefused
from voco.local.mcp_bridge import McpBridge
from voco.local.reconnect import ReconnectPolicy
from voco.local.resuming import Reconnecting, ResumingSession
from voco.local.ui.approvals import UiApprovals
from voco.protocol import messages as m
from voco.protocol import ui_messages as ui

log = logging.getLogger("voco.local")

MAX_BACKOFF_S = 10.0
HISTORY_PAGE = 20  # turns asked for when a page (re)connects; the page pages back


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


def _refusal(exc: SessionRefused) -> str:
    """What the page says for a final refusal: the engine's words when it gave some."""
    return str(exc.args[0]) if exc.args else "the engine refused the session"


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
        self.session: ResumingSession | None = None  # the page's engine session
        self.engine_state: ui.EngineLink = "connecting"
        self.engine_message: str | None = None
        self.thread_id = thread_id  # a reconnecting page resumes its conversation
        self._send_lock = asyncio.Lock()
        self._restart = asyncio.Event()
        self._closed = False
        self._names: list[str] = []  # session.start.project_names, listed once per page

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
            if self.session is not None:
                if self.session.client is not None:
                    self.bridge.cancel_pending(self.session.client)
                with contextlib.suppress(Exception):
                    await self.session.close()

    # ----------------------------------------------------------- engine side

    def _start(self, thread_id: str | None) -> m.SessionStart:
        return m.SessionStart(
            token=self.cfg.fresh_token(),  # fresh at every (re)connect
            project_id=self.cfg.project_id,
            thread_id=thread_id or self.thread_id,
            audio=m.AudioConfig(output=m.AudioOutput(encoding=self.cfg.encoding)),  # type: ignore[arg-type]
            project_names=self._names,
        )

    async def _connected(self, client: EngineClient) -> None:
        """A handshake succeeded (first connect, reconnect or restart): the page
        learns the session and thread before the sync's history arrives."""
        self.thread_id = client.ready.thread_id
        await self.send(client.ready)
        await self.status("connected")
        if self.approvals is not None:  # prompts opened before this page came
            for prompt in self.approvals.open_prompts():
                await self.send(prompt)

    async def _reconnecting(self, r: Reconnecting) -> None:
        await self.status(
            "reconnecting",
            f"{r.why}; reconnecting and resuming this conversation",
            attempt=r.attempt,
            retry_in_ms=int(r.delay_s * 1000),
        )

    async def _engine_loop(self) -> None:
        """Hold the page's engine session for as long as the page is open.

        :class:`ResumingSession` does the surviving (the shared policy of
        :mod:`voco.local.reconnect`: drain 1012, a crash, 4503 at capacity →
        backoff, same thread, a typed turn in flight read back or re-sent once);
        this loop adds what only a page needs: ``runtime.status`` at each step,
        the page's Reconnect (``session.restart``: now, without waiting) and,
        after a final refusal (4401/4402/4403), waiting for that button."""
        self._names = await self.bridge.project_names()
        session = ResumingSession(
            self.cfg.engine_url,
            self._start,
            policy=ReconnectPolicy(cap_s=MAX_BACKOFF_S),  # a page's runtime never gives up
            on_reconnect=self._reconnecting,
            on_lost=self.bridge.cancel_pending,  # nobody is waiting for those now
            on_connected=self._connected,
            history_limit=HISTORY_PAGE,
            report_sync=True,
        )
        self.session = session
        await self.status("connecting")
        opened = False
        while not self._closed:
            work = asyncio.create_task(self._hold(session, restart=opened))
            restart = asyncio.create_task(self._restart.wait())
            opened = True
            try:
                await asyncio.wait({work, restart}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                restart.cancel()
                if not work.done():
                    work.cancel()
                await asyncio.wait({work})  # finished or cancelled; its outcome read below
            self._restart.clear()
            refused = work.exception() if not work.cancelled() else None
            if isinstance(refused, SessionRefused):
                if session.client is not None:
                    self.bridge.cancel_pending(session.client)
                await self.status("disconnected", _refusal(refused))
                await self._restart.wait()  # retrying cannot help until the page asks
                self._restart.clear()
            elif refused is not None:
                raise refused
            await self.status("connecting")

    async def _hold(self, session: ResumingSession, *, restart: bool) -> None:
        """Open (or, after the page's Reconnect, restart) and relay until cancelled."""
        if restart:
            if session.client is not None:
                self.bridge.cancel_pending(session.client)
            await session.restart()
        else:
            await session.open(first=False)  # no engine yet: keep trying, and say so
        while True:
            await self._relay(await session.recv())

    async def _relay(self, item: Received) -> None:
        """One item from the engine to the page (or, ``mcp.request``, to the sandbox)."""
        session = self.session
        assert session is not None
        if item.audio is not None:
            async with self._send_lock:
                await self.ws.send_bytes(item.audio)
        elif item.resolved is not None:  # a typed turn the lost connection left open
            r = item.resolved
            outcome = "resent" if r.outcome == "resend" else r.outcome
            reply = r.reply or None
            await self.send(
                ui.TurnResumed(text=r.text, outcome=outcome, turn_id=r.turn_id, reply=reply)
            )
        elif isinstance(item.message, m.McpRequest):
            if session.client is not None:  # this connection's: ids are per session
                self.bridge.submit(item.message, session.client)  # never shown to the page
        elif item.message is not None:
            await self.send(item.message)

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
                if self.session is not None and self.session.up:
                    with contextlib.suppress(Exception):
                        await self.session.send_audio(frame["bytes"])
            elif frame.get("text") is not None:
                await self._browser_message(frame["text"])

    async def _browser_message(self, text: str) -> None:
        try:
            msg = ui.parse_browser(text)
        except m.ProtocolError as exc:
            await self._error(exc.code, exc.message)
            return
        if isinstance(msg, ui.RELAYED_TO_ENGINE):
            session = self.session
            if session is None or not session.up or self.engine_state != "connected":
                if isinstance(msg, m.TextInput):  # never dropped silently; the page queues it
                    await self._error(
                        "engine_offline", "the engine is not connected; the turn was not sent"
                    )
                return
            if isinstance(msg, m.TextInput):
                # tracked until its agent.done: a link that drops now re-sends it
                # after the reconnect, unless the thread shows it finished
                await session.send_text(msg.text)
            else:
                await session.send(msg)
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
