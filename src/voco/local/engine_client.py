"""The local runtime's end of the session WebSocket (protocol §1–§2).

A thin client: connect, handshake, then typed messages and audio both ways.
Every received item is stamped with the monotonic time it arrived, so callers
(tests, benchmarks, the CLI) can measure latency at the client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from voco.local.reconnect import Resolved
from voco.protocol import messages as m


class SessionRefused(Exception):
    def __init__(self, code: int | None, error: m.Error | None, reason: str) -> None:
        super().__init__(f"session refused ({code}): {error.message if error else reason}")
        self.code = code
        self.error = error


class EngineUnreachable(OSError):
    """No Voco engine session endpoint at the URL; the message says what to do.

    An ``OSError`` so that callers that retry on network failure (the UI relay)
    treat it like any other unreachable peer."""


async def _open(url: str, headers: dict[str, str] | None, open_timeout: float) -> ClientConnection:
    try:
        return await websockets.connect(
            url, additional_headers=headers, open_timeout=open_timeout, max_size=4 << 20
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        raise EngineUnreachable(
            f"the server at {url} answered HTTP {status}, not a Voco session "
            "(is the path /v1/session?)"
        ) from None
    except InvalidURI as exc:
        raise EngineUnreachable(f"{url} is not a WebSocket URL: {exc}") from None
    except InvalidHandshake as exc:
        raise EngineUnreachable(f"the server at {url} is not a Voco engine: {exc}") from None
    except TimeoutError:
        raise EngineUnreachable(
            f"the engine at {url} did not answer within {open_timeout:g} s"
        ) from None
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise EngineUnreachable(
            f"nothing is listening at {url} ({why}); start the engine with `voco serve`"
        ) from None


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() on arrival
    message: m.ServerMessage | None = None
    audio: bytes | None = None
    # set by a resuming session: a typed turn settled while the link was down
    resolved: Resolved | None = None


class EngineClient:
    def __init__(self, ws: ClientConnection, ready: m.SessionReady) -> None:
        self.ws = ws
        self.ready = ready

    @classmethod
    async def connect(
        cls,
        url: str,
        start: m.SessionStart,
        *,
        headers: dict[str, str] | None = None,
        open_timeout: float = 10.0,
    ) -> EngineClient:
        ws = await _open(url, headers, open_timeout)
        await ws.send(start.to_json())
        first: m.Error | None = None
        while True:
            try:
                raw = await ws.recv()
            except websockets.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                raise SessionRefused(code, first, str(exc)) from exc
            if isinstance(raw, bytes):
                continue
            msg = m.parse_server(raw)
            if isinstance(msg, m.SessionReady):
                return cls(ws, msg)
            if isinstance(msg, m.Error):
                first = msg

    async def recv(self) -> Received:
        raw = await self.ws.recv()
        now = time.monotonic()
        if isinstance(raw, bytes):
            return Received(now, audio=raw)
        return Received(now, message=m.parse_server(raw))

    async def send(self, msg: m._Msg) -> None:
        await self.ws.send(msg.to_json())

    async def send_json(self, obj: dict[str, Any]) -> None:
        import json

        await self.ws.send(json.dumps(obj))

    async def send_audio(self, pcm: bytes) -> None:
        await self.ws.send(pcm)

    async def close(self) -> None:
        await self.ws.close()
