"""A client that stops reading is dropped by the documented 10 s, whichever
mechanism notices first: the send timeout, or keepalive (a client that does not
read does not answer pings either)."""

from __future__ import annotations

import asyncio
import inspect
import socket
from typing import Any

import uvicorn
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from tests.fakes import LONG_REPLY, ScriptedLLM, SignallingGrant
from voco.engine.server import KEEPALIVE_INTERVAL_S, SEND_TIMEOUT_S, create_app, uvicorn_options
from voco.engine.ws_protocol import BoundedCloseProtocol
from voco.protocol import messages as m
from voco.serving import serving
from voco.store.tenancy import MemoryTenantStore, SessionGrant


def test_keepalive_drops_a_silent_client_within_the_send_timeout() -> None:
    opts = uvicorn_options()
    assert opts["ws_ping_interval"] == KEEPALIVE_INTERVAL_S
    # worst case: the client goes quiet just after a pong; the next ping goes out
    # one interval later and its pong is due one timeout after that
    assert opts["ws_ping_interval"] + opts["ws_ping_timeout"] <= SEND_TIMEOUT_S
    defaults = inspect.signature(uvicorn.Config).parameters
    assert defaults["ws_ping_interval"].default + defaults["ws_ping_timeout"].default > (
        SEND_TIMEOUT_S
    )  # why this exists: uvicorn's own keepalive would take 40 s
    uvicorn.Config(object(), **opts)  # every option is one uvicorn knows


async def test_the_engine_declines_permessage_deflate(engine_factory) -> None:
    """A client offering compression (websockets, browsers do) gets none: PCM does
    not compress, and inflating every frame was a tenth of the engine's CPU."""
    import websockets

    async with engine_factory() as engine, websockets.connect(engine.url) as ws:
        assert ws.protocol.extensions == []  # it offered permessage-deflate


# ------------------------------------------------------------- behaviour


class _Released(MemoryTenantStore):
    """The memory store; ``ended`` is set when a session gives its slot back
    (the engine has dropped it) — the test's sync point, no clock involved."""

    def __init__(self) -> None:
        super().__init__()
        self.ended = asyncio.Event()

    def _admit(self, *args: Any) -> SessionGrant:
        return SignallingGrant(super()._admit(*args), released=self.ended)


class RawClient:
    """A WebSocket client whose reading the test controls: websockets' sans-I/O
    protocol over a plain socket with a small receive buffer. While the test
    does not call :meth:`read`, nothing is read — pings included."""

    def __init__(self, sock: socket.socket, url: str) -> None:
        self.sock = sock
        self.proto = ClientProtocol(parse_uri(url), max_size=None)
        self.loop = asyncio.get_running_loop()

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        c = cls(sock, f"ws://127.0.0.1:{port}/v1/session")
        await c.loop.sock_connect(sock, ("127.0.0.1", port))
        c.proto.send_request(c.proto.connect())
        await c.flush()
        while c.proto.state is State.CONNECTING:  # the upgrade's response
            await c.read()
        assert c.proto.state is State.OPEN, c.proto.handshake_exc
        return c

    async def flush(self) -> None:
        for data in self.proto.data_to_send():
            if data:
                await self.loop.sock_sendall(self.sock, data)

    async def send(self, msg: m._Msg) -> None:
        self.proto.send_text(msg.to_json().encode())
        await self.flush()

    async def read(self) -> list[Any]:
        """Read once; the events it completed ([] at end of stream)."""
        data = await self.loop.sock_recv(self.sock, 65536)
        if data:
            self.proto.receive_data(data)
        else:
            self.proto.receive_eof()
        events = self.proto.events_received()
        return events if data or events else []

    async def read_until_ready(self) -> None:
        while True:
            for ev in await self.read():
                text = isinstance(ev, Frame) and ev.opcode is Opcode.TEXT
                if text and isinstance(m.parse_server(ev.data.decode()), m.SessionReady):
                    return

    async def read_to_the_end(self) -> Close | None:
        """Read everything the engine had sent, up to its close frame or EOF."""
        while self.proto.close_rcvd is None and self.proto.state is not State.CLOSED:
            await self.read()
        return self.proto.close_rcvd


async def test_a_client_that_never_reads_is_dropped_by_the_send_timeout(
    engine_factory: Any,
) -> None:
    """Over real WebSockets, with a small send timeout (1 s; the engine's is
    10 s): the engine floods the client with reply audio it never reads, and
    ends the session — keepalive closes it 1011 "keepalive ping timeout"
    (docs/protocol.md, "Slow readers"), at the same bound as the send timeout."""
    tenants = _Released()
    llm = ScriptedLLM(lambda msgs: [LONG_REPLY * 3])
    async with engine_factory(llm, tenants=tenants) as eng:
        app = create_app(eng.runtime, send_timeout_s=1.0)
        async with serving(app, **uvicorn_options(send_timeout_s=1.0)) as port:
            c = await RawClient.connect(port)
            pcm = m.AudioConfig(output=m.AudioOutput(encoding="pcm_s16le"))
            await c.send(m.SessionStart(token=eng.token(), audio=pcm))
            await c.read_until_ready()
            await c.send(m.TextInput(text="tell me everything"))
            # from here on the client reads nothing: audio piles up, pings go unanswered
            await asyncio.wait_for(tenants.ended.wait(), 60)  # the engine dropped it
            close = await asyncio.wait_for(c.read_to_the_end(), 60)
            c.sock.close()
    assert close is not None
    assert (close.code, close.reason) == (1011, "keepalive ping timeout")


async def test_a_client_that_never_reads_is_aborted_not_left_lingering(
    engine_factory: Any,
) -> None:
    """Send timeout (keepalive off, so it is the one that notices): the engine
    aborts the socket at once. Before, the reply task's send timed out and
    nothing else happened: the reader kept waiting on a client that sends
    nothing, and any ``transport.close()`` would have waited for this client to
    read the queued reply audio first — i.e. forever."""
    lost = asyncio.Event()

    class Observed(BoundedCloseProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # a small kernel send buffer (like the client's small receive one), so
            # unread output backs up into the transport within the test's seconds
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            lost.set()  # the server's socket is really gone

    tenants = _Released()
    llm = ScriptedLLM(lambda msgs: [LONG_REPLY * 3])
    async with engine_factory(llm, tenants=tenants) as eng:
        app = create_app(eng.runtime, send_timeout_s=1.0)
        opts = {**uvicorn_options(send_timeout_s=1.0), "ws": Observed, "ws_ping_interval": None}
        async with serving(app, **opts) as port:
            c = await RawClient.connect(port)
            pcm = m.AudioConfig(output=m.AudioOutput(encoding="pcm_s16le"))
            await c.send(m.SessionStart(token=eng.token(), audio=pcm))
            await c.read_until_ready()
            await c.send(m.TextInput(text="tell me everything"))
            await asyncio.wait_for(tenants.ended.wait(), 60)  # the send timed out
            await asyncio.wait_for(lost.wait(), 30)  # …and the socket went with it
            c.sock.close()


def test_the_engine_serves_the_bounded_close_protocol() -> None:
    assert uvicorn_options()["ws"] == "voco.engine.ws_protocol:BoundedCloseProtocol"
    cfg = uvicorn.Config(object(), **uvicorn_options())
    cfg.load()
    assert cfg.ws_protocol_class is BoundedCloseProtocol
