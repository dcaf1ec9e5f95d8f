"""uvicorn's WebSocket protocol, with a bounded close for a peer that never reads.

Why: asyncio's ``transport.close()`` waits until everything buffered has been
written before the socket is really closed. A client that stopped reading never
takes that data, so every way uvicorn "closes" such a connection (the app
returning after our send timeout, a keepalive timeout, a close frame with no
answer) left the socket — its kernel buffers and every reply frame queued in
user space — open until TCP gave up, minutes later (issue 15 §8).

So this protocol:

* hands the app an ``abort`` in the ASGI scope (``scope["extensions"]
  ["voco.transport"]["abort"]``): the engine's send timeout already knows the
  client is not reading, so it drops the connection at once
  (``transport.abort()``: buffered output discarded, socket closed now);
* bounds every other close: if output is still buffered when uvicorn calls
  ``close()``, the transport is aborted ``linger_s`` later. A client that does
  read still gets what was queued — the close frame included — in that time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

EXTENSION = "voco.transport"
LINGER_S = 5.0  # how long a closing socket may wait for its reader (= keepalive timeout)


class _BoundedClose:
    """The connection's transport, except that ``close()`` with output still
    buffered turns into ``abort()`` after ``linger_s``. Everything else is the
    transport's own (delegated)."""

    def __init__(self, transport: asyncio.Transport, linger_s: float) -> None:
        self._t = transport
        self._linger_s = linger_s
        self._abort_timer: asyncio.TimerHandle | None = None

    def close(self) -> None:
        self._t.close()
        if self._abort_timer is None and self._t.get_write_buffer_size() > 0:
            loop = asyncio.get_running_loop()
            self._abort_timer = loop.call_later(self._linger_s, self._t.abort)

    def abort(self) -> None:
        self.cancel_linger()
        self._t.abort()

    def cancel_linger(self) -> None:
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._t, name)


class BoundedCloseProtocol(WebSocketsSansIOProtocol):
    """``uvicorn --ws`` class: see the module docstring."""

    linger_s = LINGER_S

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        super().connection_made(transport)
        self.transport = _BoundedClose(transport, self.linger_s)  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        bounded = self.transport
        if isinstance(bounded, _BoundedClose):
            bounded.cancel_linger()  # closed by itself: nothing left to abort
        super().connection_lost(exc)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)  # absent when the upgrade was refused
        if scope is not None:
            scope["extensions"][EXTENSION] = {"abort": self.transport.abort}


def abort_connection(scope: Any) -> bool:
    """Drop the connection of ``scope`` now, buffered output discarded; False
    when the server is not running :class:`BoundedCloseProtocol`."""
    ext = (scope.get("extensions") or {}).get(EXTENSION)
    if not ext:
        return False
    ext["abort"]()
    return True
