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
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from voco.local.engine_client import EngineClient, SessionRefused
from voco.local.mcp_bridge import McpBridge
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

    async def send(self, msg: m._Msg) -> None:
        async with self._send_lock:
            await self.ws.send_text(msg.to_json())

    async def status(self, engine: ui.EngineLink, message: str | None = None) -> None:
        """Tell the page where the engine link stands (and the settings in force)."""
        self.engine_state, self.engine_message = engine, message
        await self.send(
            ui.RuntimeStatus(
                engine=engine,
                roots=[str(r) for r in self.bridge.roots],
                approve=self.bridge.approve_mode,  # type: ignore[arg-type]
                approve_choices=self.settings.approve_choices() if self.settings else [],
                message=message,
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
        backoff = 0.5
        while not self._closed:
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
                await self.status("disconnected", str(exc))
                if exc.code in (4401, 4402, 4403):
                    return  # retrying cannot help; the page says why
            except OSError as exc:
                await self.status("disconnected", f"engine unreachable: {exc}")
            else:
                backoff = 0.5
                self.thread_id = self.engine.ready.thread_id
                await self.send(self.engine.ready)
                await self.status("connected")
                if self.approvals is not None:  # prompts opened before this page came
                    for prompt in self.approvals.open_prompts():
                        await self.send(prompt)
                # the conversation so far (a reloaded page, or after a reconnect);
                # the answer comes back through the pump like any engine message
                with contextlib.suppress(Exception):
                    await self.engine.send(m.ThreadHistoryRequest(limit=HISTORY_PAGE))
                await self._pump(self.engine)
                self.bridge.cancel_pending(self.engine)  # nobody is waiting for those now
                await self.status("disconnected", "engine connection lost; reconnecting")
                with contextlib.suppress(Exception):
                    await self.engine.close()
                self.engine = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._restart.wait(), backoff)
            self._restart.clear()
            backoff = min(MAX_BACKOFF_S, backoff * 2)

    async def _pump(self, engine: EngineClient) -> None:
        restart = asyncio.create_task(self._restart.wait())
        recv: asyncio.Task[Any] | None = None
        try:
            while True:
                recv = asyncio.create_task(engine.recv())
                done, _ = await asyncio.wait({recv, restart}, return_when=asyncio.FIRST_COMPLETED)
                if restart in done:
                    await engine.close()
                    return
                try:
                    item = recv.result()
                except Exception:  # connection closed or garbage from the engine
                    return
                if item.audio is not None:
                    async with self._send_lock:
                        await self.ws.send_bytes(item.audio)
                elif isinstance(item.message, m.McpRequest):
                    self.bridge.submit(item.message, engine)  # never shown to the page
                elif item.message is not None:
                    async with self._send_lock:
                        await self.ws.send_text(item.message.to_json())
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
            try:
                await engine.send(msg)
            except Exception:
                if isinstance(msg, m.TextInput):
                    await self._error(
                        "engine_offline", "the engine connection dropped; the turn was not sent"
                    )
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
