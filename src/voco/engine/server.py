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
from collections.abc import AsyncIterator, Coroutine, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from voco.admin.api import admin_routes
from voco.auth.tokens import AuthError
from voco.engine.admission import ADMIT, Admission, AdmissionConfig, Decision
from voco.engine.capacity import CapacitySampler, instrument_vad
from voco.engine.history import CheckpointHistory, thread_history
from voco.engine.http_routes import http_routes
from voco.engine.metrics import EngineMetrics
from voco.engine.runtime import EngineConfig, EngineRuntime, describe_llm, describe_voice
from voco.engine.session import Session
from voco.engine.ws_protocol import AudioLane, abort_connection, audio_lane, writable_probe
from voco.protocol import PROTOCOL_VERSION
from voco.protocol import messages as m
from voco.protocol.connection import (
    MAX_WS_FRAME,
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
from voco.store.tenancy import SessionGrant, SessionRefused

log = logging.getLogger("voco.server")

SEND_TIMEOUT_S = 10.0  # a client that stops reading is dropped, not buffered for
# Keepalive agrees with the send timeout: a client that stops reading also stops
# answering pings, and is dropped within KEEPALIVE_INTERVAL_S + KEEPALIVE_TIMEOUT_S
# = SEND_TIMEOUT_S, not uvicorn's default 20 + 20 s.
KEEPALIVE_INTERVAL_S = 5.0
KEEPALIVE_TIMEOUT_S = SEND_TIMEOUT_S - KEEPALIVE_INTERVAL_S


GOING_AWAY = "the engine is going away (restart or scale-down); reconnect"


class _Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        self.code, self.reason = code, reason


class Handler:
    """One WebSocket from upgrade to close."""

    def __init__(
        self,
        ws: WebSocket,
        rt: EngineRuntime,
        live: set[Handler] | None = None,
        gate: Admission | None = None,
        metrics: EngineMetrics | None = None,
        send_timeout_s: float = SEND_TIMEOUT_S,
    ) -> None:
        self.ws = ws
        self.send_timeout_s = send_timeout_s
        self.rt = rt
        self.conn = ServerConnection()
        self.session: Session | None = None
        self.grant: SessionGrant | None = None  # the tenant store's admission
        self._live = live if live is not None else set()
        self._gate = gate
        self._metrics = metrics
        self._holds_slot = False  # counted in the gate's admitted sessions
        # the fast lane for audio (engine/ws_protocol.py): frames reach the
        # listener from data_received while the reader waits with nothing in hand
        self._lane: AudioLane | None = None
        self._reading = False  # blocked in receive(), nothing read still being handled
        self._failure: BaseException | None = None  # the lane's audio ran into it
        # every audio piece and event of every session is a send, and a timer
        # per send was ~2 % of a loaded engine: only one that may wait gets one
        self._writable = writable_probe(ws.scope)

    async def send_text(self, data: str) -> None:
        await self._send(self.ws.send_text(data))

    async def send_bytes(self, data: bytes) -> None:
        await self._send(self.ws.send_bytes(data))

    async def _send(self, sending: Coroutine[Any, Any, None]) -> None:
        """Every send's two ways to fail become the engine's one "peer gone"
        signal, ConnectionError: a client that stopped reading, and a socket
        whose close was already sent (Starlette's RuntimeError) — which late
        callbacks, e.g. a provider's partial after the session ended, hit."""
        if self.ws.application_state == WebSocketState.DISCONNECTED:
            sending.close()
            raise ConnectionError("the session's socket is closed")
        if self._writable is not None and self._writable():
            await sending  # it cannot wait: nothing to time out (the usual send)
            return
        try:
            # a timeout scope, not wait_for: wait_for runs the send as a task of
            # its own (13.5 vs 3.7 µs, and two extra loop turns)
            async with asyncio.timeout(self.send_timeout_s):
                await sending
        except TimeoutError as exc:
            raise self._not_reading() from exc

    def _not_reading(self) -> ConnectionError:
        """The send timeout passed: drop the socket now (abort, not close — a close
        would wait for this very client to read what is queued; engine/ws_protocol.py)."""
        abort_connection(self.ws.scope)
        return ConnectionError("client is not reading; closing the session")

    async def run(self) -> None:
        await self.ws.accept()
        self._live.add(self)
        try:
            await self._loop()
        except _Closed as c:
            await self._close(c.code, c.reason)
        except (WebSocketDisconnect, ConnectionError) as exc:
            log.info("session ended: %s", exc)
        except Exception as exc:
            if self._socket_gone(exc):
                log.info("session ended: %s", exc)
            else:  # a bug: said as one, to the log and to the client (§7: 1011)
                log.exception("session crashed")
                with contextlib.suppress(WebSocketDisconnect, ConnectionError, RuntimeError):
                    await self.send_text(
                        m.Error(code="internal", message="internal error", fatal=True).to_json()
                    )
                await self._close(CloseCode.INTERNAL, "internal error")
        except asyncio.CancelledError:  # only shutdown cancels a handler
            if self.session is not None:
                log.warning("shutdown: cut %s", self.session.describe())
            raise
        finally:
            self._reading = False
            if self._lane is not None:
                self._lane.detach()
            self._live.discard(self)
            if self._holds_slot and self._gate is not None:
                self._gate.released()
                if self._metrics is not None:
                    self._metrics.sessions.set(self._gate.sessions)
            if self.session is not None:
                await self.session.close()
            if self.grant is not None:
                try:
                    await self.grant.release()
                except Exception:  # the database is gone; its lease lapses by itself
                    log.exception("could not release the session's slot")

    def _socket_gone(self, exc: Exception) -> bool:
        """Starlette reports use of a closed socket as a plain ``RuntimeError``;
        only that one counts as a disconnect, never a RuntimeError of our own
        (a RecursionError is a RuntimeError too)."""
        if type(exc) is not RuntimeError:
            return False
        gone = WebSocketState.DISCONNECTED
        return self.ws.client_state is gone or self.ws.application_state is gone

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
                self._reading = True
                try:
                    msg = await self.ws.receive()
                finally:
                    self._reading = False
            if self._failure is not None:
                raise self._failure
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

    def _fast_audio(self, data: bytes) -> bool:
        """The lane's sink: plain audio of a started session, fed to the
        listener synchronously. ``False`` (the frame then takes the ordinary
        path) unless the reader is idle — so a frame is never handled before
        one read earlier — and the frame needs none of receive_bytes' errors."""
        s = self.session
        if not self._reading or s is None or s.listener.pipe.failure is not None:
            return False
        frames = self.conn.receive_audio(data)
        if frames is None:
            return False
        if frames:
            s.listener.feed(frames)
        return True

    def _audio_failed(self, exc: BaseException) -> None:
        """A lane frame's step raised: end the session as if the reader had."""
        self._failure = exc
        if self._lane is not None:
            self._lane.wake()

    def _open_lane(self, session: Session) -> None:
        pipe = session.listener.pipe
        pipe.on_failure = self._audio_failed
        lane = audio_lane(self.ws.scope)
        if lane is not None:
            pipe.hold = lane.hold
            lane.attach(self._fast_audio)
            self._lane = lane

    async def _act(self, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, AudioReceived):
                assert self.session is not None
                if self._lane is not None:
                    # the pipe keeps the order and holds reading when behind; not
                    # waiting here lets the next frames take the lane again
                    self.session.listener.feed(ev.frames)
                else:  # no lane, no hold: this await is the backpressure
                    await self.session.on_audio(ev.frames, ev.first_frame_index)
            elif isinstance(ev, MessageReceived):
                assert self.session is not None
                # the audio sent before this message is handled first (frame_pipe.py)
                await self.session.listener.pipe.settled()
                await self._dispatch(ev.message)
            elif isinstance(ev, SendError):
                await self.send_text(
                    m.Error(
                        code=ev.code,
                        message=ev.message,
                        fatal=ev.fatal,
                        retry_after_ms=ev.retry_after_ms,
                    ).to_json()
                )
            elif isinstance(ev, Close):
                raise _Closed(ev.code, ev.reason)
            elif isinstance(ev, StartRequested):
                await self._start(ev.message)

    async def _refuse(
        self, code: int, error: str, message: str, retry_after_ms: int | None = None
    ) -> None:
        await self._act(self.conn.start_refused(code, error, message, retry_after_ms))

    def _admit(self) -> Decision:
        """Capacity first (cheapest, and before any work for a session we cannot
        serve); the slot is taken now so concurrent starts cannot overshoot."""
        if self._gate is None:
            return ADMIT
        decision = self._gate.decide(time.monotonic())
        if decision.admit:
            self._gate.admitted()
            self._holds_slot = True
        if self._metrics is not None:
            if decision.admit:
                self._metrics.admitted.inc()
                self._metrics.sessions.set(self._gate.sessions)
            else:
                self._metrics.refused.labels(decision.reason).inc()
        return decision

    async def _start(self, start: m.SessionStart) -> None:
        if not (decision := self._admit()).admit:
            log.warning("refused a session: %s (%s)", decision.message, decision.reason)
            await self._refuse(
                CloseCode.AT_CAPACITY, "at_capacity", decision.message, decision.retry_after_ms
            )
            return
        token = start.token
        if not token:
            auth = self.ws.headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                token = auth[7:].strip()
        try:
            principal = await self.rt.auth.verify(token)
        except AuthError as exc:
            await self._audit_auth_failure(str(exc))
            await self._refuse(CloseCode.UNAUTHENTICATED, "unauthenticated", str(exc))
            return
        user = principal.user_id
        if principal.project_id and principal.project_id != start.project_id:
            await self._refuse(
                CloseCode.FORBIDDEN, "forbidden", "token is not valid for this project"
            )
            return
        session_id = uuid.uuid4().hex
        # tenant store: session cap (reserved first), organisation, project,
        # thread ownership (RLS on Postgres) — each refusal with its close code
        try:
            self.grant = await self.rt.tenants.open_session(
                principal,
                project_id=start.project_id,
                thread_id=start.thread_id,
                session_id=session_id,
            )
        except SessionRefused as r:
            await self._refuse(r.code, r.error, r.message, r.retry_after_ms)
            return
        notice = None
        if self.grant.notice is not None:
            notice = m.Error(code="thread_not_found", message=self.grant.notice)
        thread_id = self.grant.thread_id
        self.session = Session(
            self.rt,
            send_text=self.send_text,
            send_bytes=self.send_bytes,
            session_id=session_id,
            thread_id=thread_id,
            user_id=user,
            project_id=start.project_id,
            domain=start.domain,
            encoding=start.audio.output.encoding,
            grant=self.grant,
        )
        # names the runtime listed: the first turn's STT prompt and rewrites know them
        self.session.listener.vocabulary.add(list(start.project_names))
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
        self._open_lane(self.session)

    async def _audit_auth_failure(self, reason: str) -> None:
        try:
            await self.rt.tenants.record_auth_failure(reason)
        except Exception:  # the refusal matters more than its record
            log.exception("could not audit an auth failure")

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
            # on the session's writer: off the reader, and after the writes
            # submitted before it (a client reads what it just caused)
            async def answer(req: m.ThreadHistoryRequest = msg) -> None:
                history = CheckpointHistory(self.rt.graph)
                with contextlib.suppress(ConnectionError, WebSocketDisconnect):  # client gone
                    await s.send(await thread_history(history, s.thread_id, req))

            s.writer.submit(answer, "thread.history")

    async def _violation(self, code: str, message: str) -> None:
        await self._act(self.conn.record_violation(code, message, time.monotonic()))

    async def going_away(self) -> None:
        """Drain's last word: a fatal ``going_away`` error, then 1012 (§10)."""
        with contextlib.suppress(WebSocketDisconnect, ConnectionError, RuntimeError, OSError):
            await self.send_text(
                m.Error(
                    code="going_away", message=GOING_AWAY, fatal=True, retry_after_ms=0
                ).to_json()
            )
        await self._close(CloseCode.GOING_AWAY, GOING_AWAY)

    async def _close(self, code: int, reason: str) -> None:
        # the peer may be gone already; closing twice is Starlette's RuntimeError
        with contextlib.suppress(WebSocketDisconnect, ConnectionError, RuntimeError, OSError):
            await self.ws.close(code, reason.encode()[:120].decode(errors="ignore"))


def create_app(
    runtime: EngineRuntime | None = None,
    config: EngineConfig | None = None,
    providers: dict[str, Any] | None = None,
    admission: AdmissionConfig | None = None,
    *,
    send_timeout_s: float = SEND_TIMEOUT_S,
) -> Starlette:
    """The engine ASGI app. Pass a ready ``runtime`` (tests) or let start-up build one.
    ``send_timeout_s``: serve it with ``uvicorn_options(send_timeout_s)`` too, so
    keepalive agrees."""
    live: set[Handler] = set()
    if admission is None and config is not None:
        admission = config.admission
    gate = Admission(admission)
    metrics = EngineMetrics()
    sampler = CapacitySampler(gate, metrics)

    async def session_endpoint(ws: WebSocket) -> None:
        await Handler(ws, app.state.runtime, live, gate, metrics, send_timeout_s).run()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = runtime or await EngineRuntime.create(config, **(providers or {}))
        instrument_vad(app.state.runtime.vad, metrics)
        app.state.runtime.turn_observers.append(metrics.observe_turn)
        sampler.start()
        try:
            yield
        finally:
            await sampler.stop()
            with contextlib.suppress(ValueError):
                app.state.runtime.turn_observers.remove(metrics.observe_turn)
            for h in list(live):  # uvicorn's cancel bound passed and they linger
                if h.session is not None:
                    log.warning("shutdown: closing %s", h.session.describe())
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(1.0):
                            await h.session.close()
            if owned:
                close_s = app.state.runtime.shutdown_s / 4
                try:
                    async with asyncio.timeout(close_s):
                        await app.state.runtime.aclose()
                except TimeoutError:
                    log.error(
                        "shutdown: models and store did not close in %.1f s; exiting", close_s
                    )

    app = Starlette(
        routes=[
            *http_routes(lambda: app.state.runtime, gate, metrics),
            WebSocketRoute("/v1/session", session_endpoint),
            *admin_routes(lambda: app.state.runtime),
        ],
        lifespan=lifespan,
    )
    app.state.live = live
    app.state.admission = gate
    app.state.metrics = metrics
    return app


def uvicorn_options(send_timeout_s: float = SEND_TIMEOUT_S) -> dict[str, Any]:
    """WebSocket settings every engine server uses (the CLI and the in-loop one).

    No permessage-deflate: PCM does not compress, and inflating every 32 ms
    frame (and deflating every reply frame) was a tenth of the engine's CPU
    per session (bench/bench_load.py with py-spy). Clients that offer it get
    a plain connection, as the WebSocket spec allows. Keepalive's ping interval
    + pong timeout equal the send timeout (the defaults: 5 + 5 = 10 s), so both
    ways of noticing a client that stopped reading agree."""
    interval = KEEPALIVE_INTERVAL_S * send_timeout_s / SEND_TIMEOUT_S
    return {
        "ws": "voco.engine.ws_protocol:BoundedCloseProtocol",  # closes never wait on a reader
        "ws_max_size": MAX_WS_FRAME,
        "ws_per_message_deflate": False,
        "ws_ping_interval": interval,
        "ws_ping_timeout": send_timeout_s - interval,
    }
