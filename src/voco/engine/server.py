"""The engine's asyncio adapter: Starlette WebSocket endpoint ``/v1/session``.

Thin on purpose: it moves frames between the socket and the sans-I/O
:class:`~voco.protocol.connection.ServerConnection`, performs the handshake
(auth, thread ownership), and dispatches messages to the :class:`Session`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from voco.auth.tokens import JWKS_PATH, AuthError
from voco.engine.history import CheckpointHistory, thread_history
from voco.engine.runtime import EngineConfig, EngineRuntime, describe_llm, describe_voice
from voco.engine.session import Session
from voco.protocol import PROTOCOL_VERSION
from voco.protocol import messages as m
from voco.protocol.connection import (
    START_TIMEOUT_S,
    AudioReceived,
    Close,
    CloseCode,
    Event,
    MessageReceived,
    SendError,
    ServerConnection,
    StartRequested,
)

log = logging.getLogger("voco.server")

SEND_TIMEOUT_S = 10.0  # a client that stops reading is dropped, not buffered for
MAX_SESSIONS_PER_USER = 16


class _Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        self.code, self.reason = code, reason


class Handler:
    """One WebSocket from upgrade to close."""

    def __init__(self, ws: WebSocket, rt: EngineRuntime, active: Counter[str]) -> None:
        self.ws = ws
        self.rt = rt
        self.conn = ServerConnection()
        self.session: Session | None = None
        self._active = active
        self._counted_user: str | None = None

    async def send_text(self, data: str) -> None:
        try:
            await asyncio.wait_for(self.ws.send_text(data), SEND_TIMEOUT_S)
        except TimeoutError as exc:
            raise ConnectionError("client is not reading; closing the session") from exc

    async def send_bytes(self, data: bytes) -> None:
        try:
            await asyncio.wait_for(self.ws.send_bytes(data), SEND_TIMEOUT_S)
        except TimeoutError as exc:
            raise ConnectionError("client is not reading; closing the session") from exc

    async def run(self) -> None:
        await self.ws.accept()
        try:
            await self._loop()
        except _Closed as c:
            await self._close(c.code, c.reason)
        except (WebSocketDisconnect, ConnectionError, RuntimeError) as exc:
            log.info("session ended: %s", exc)
        except Exception:
            log.exception("session crashed")
            with contextlib.suppress(Exception):
                await self.send_text(
                    m.Error(code="internal", message="internal error", fatal=True).to_json()
                )
            await self._close(CloseCode.INTERNAL, "internal error")
        finally:
            if self.session is not None:
                await self.session.close()
            if self._counted_user is not None:
                self._active[self._counted_user] -= 1

    async def _frames(self) -> AsyncIterator[MutableMapping[str, Any]]:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.session is None:
                try:
                    msg = await asyncio.wait_for(
                        self.ws.receive(), max(0.0, deadline - time.monotonic())
                    )
                except TimeoutError:
                    await self._act(self.conn.start_deadline_passed())
                    return
            else:
                msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            yield msg

    async def _loop(self) -> None:
        async for frame in self._frames():
            now = time.monotonic()
            if frame.get("text") is not None:
                events = self.conn.receive_text(frame["text"], now)
            elif frame.get("bytes") is not None:
                events = self.conn.receive_bytes(frame["bytes"], now)
            else:
                continue
            await self._act(events)

    async def _act(self, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, AudioReceived):
                assert self.session is not None
                await self.session.on_audio(ev.frames, ev.first_frame_index)
            elif isinstance(ev, MessageReceived):
                await self._dispatch(ev.message)
            elif isinstance(ev, SendError):
                await self.send_text(
                    m.Error(code=ev.code, message=ev.message, fatal=ev.fatal).to_json()
                )
            elif isinstance(ev, Close):
                raise _Closed(ev.code, ev.reason)
            elif isinstance(ev, StartRequested):
                await self._start(ev.message)

    async def _refuse(self, code: int, error: str, message: str) -> None:
        await self._act(self.conn.start_refused(code, error, message))

    async def _start(self, start: m.SessionStart) -> None:
        token = start.token
        if not token:
            auth = self.ws.headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                token = auth[7:].strip()
        try:
            principal = await self.rt.auth.verify(token)
        except AuthError as exc:
            await self._refuse(CloseCode.UNAUTHENTICATED, "unauthenticated", str(exc))
            return
        user = principal.user_id
        if principal.project_id and principal.project_id != start.project_id:
            await self._refuse(
                CloseCode.FORBIDDEN, "forbidden", "token is not valid for this project"
            )
            return
        if self._active[user] >= MAX_SESSIONS_PER_USER:
            await self._refuse(
                CloseCode.RATE_LIMITED,
                "rate_limited",
                f"at most {MAX_SESSIONS_PER_USER} concurrent sessions per user",
            )
            return
        notice: m.Error | None = None
        thread_id = start.thread_id
        if thread_id:
            owner = await self.rt.threads.owner(thread_id)
            if owner is None:
                notice = m.Error(
                    code="thread_not_found",
                    message=f"thread {thread_id!r} does not exist; started a new one",
                )
                thread_id = None
            elif owner != user:
                await self._refuse(CloseCode.FORBIDDEN, "forbidden", "not your thread")
                return
        if not thread_id:
            thread_id = uuid.uuid4().hex
            await self.rt.threads.create(thread_id, user, start.project_id)
        self._active[user] += 1
        self._counted_user = user
        self.session = Session(
            self.rt,
            send_text=self.send_text,
            send_bytes=self.send_bytes,
            session_id=uuid.uuid4().hex,
            thread_id=thread_id,
            user_id=user,
            project_id=start.project_id,
            domain=start.domain,
            encoding=start.audio.output.encoding,
        )
        self.conn.start_accepted()
        await self.send_text(
            m.SessionReady(
                session_id=self.session.session_id,
                thread_id=thread_id,
                user_id=user,
                server=m.ServerInfo(version=self.rt.version, protocol=PROTOCOL_VERSION),
                llm=describe_llm(self.rt.llm),
                voice=describe_voice(self.rt.tts),
            ).to_json()
        )
        if notice is not None:
            await self.send_text(notice.to_json())
        await self.session.set_state("listening")

    async def _dispatch(self, msg: m.ClientMessage) -> None:
        s = self.session
        assert s is not None
        if isinstance(msg, m.TextInput):
            await s.on_text_input(msg.text)
        elif isinstance(msg, m.McpResponse):
            if not s.mcp.resolve(msg):
                await self._violation("unknown_mcp_id", f"no pending mcp.request {msg.id!r}")
            else:
                await s.after_tool()
        elif isinstance(msg, m.McpProgress):
            if not await s.on_mcp_progress(msg):
                await self._violation("unknown_mcp_id", f"no pending mcp.request {msg.id!r}")
        elif isinstance(msg, m.AudioPlayed):
            await s.on_audio_played(msg)
        elif isinstance(msg, m.Interrupt):
            await s.on_interrupt()
        elif isinstance(msg, m.Ping):
            await self.send_text(m.Pong(id=msg.id).to_json())
        elif isinstance(msg, m.SessionEnd):
            raise _Closed(CloseCode.NORMAL, "session ended by client")
        elif isinstance(msg, m.ThreadHistoryRequest):
            answer = await thread_history(CheckpointHistory(self.rt.graph), s.thread_id, msg)
            await self.send_text(answer.to_json())

    async def _violation(self, code: str, message: str) -> None:
        await self._act(self.conn.record_violation(code, message, time.monotonic()))

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code, reason.encode()[:120].decode(errors="ignore"))


def create_app(
    runtime: EngineRuntime | None = None,
    config: EngineConfig | None = None,
    providers: dict[str, Any] | None = None,
) -> Starlette:
    """The engine ASGI app. Pass a ready ``runtime`` (tests) or let start-up build one."""
    active: Counter[str] = Counter()

    async def session_endpoint(ws: WebSocket) -> None:
        await Handler(ws, app.state.runtime, active).run()

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "protocol": PROTOCOL_VERSION})

    async def jwks(request: Request) -> JSONResponse:
        # local mode publishes its public key like a Supabase project; Supabase mode has none
        doc = app.state.runtime.auth.public_jwks()
        if doc is None:
            return JSONResponse({"error": "this engine does not issue tokens"}, status_code=404)
        return JSONResponse(doc, headers={"cache-control": "public, max-age=300"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = runtime or await EngineRuntime.create(config, **(providers or {}))
        try:
            yield
        finally:
            if owned:
                await app.state.runtime.aclose()

    app = Starlette(
        routes=[
            Route("/healthz", health),
            Route(JWKS_PATH, jwks),
            WebSocketRoute("/v1/session", session_endpoint),
        ],
        lifespan=lifespan,
    )
    return app
