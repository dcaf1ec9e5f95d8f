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

It also has a **fast lane for binary (audio) frames** (issue 11 §1). uvicorn
puts every parsed frame on an ``asyncio.Queue``, pauses reading until the app
takes it, and wakes the app's task; Starlette wraps it, the engine's reader
parses it. For a 32 ms audio frame that was most of the engine's cost per
session. Once a session has started, the app attaches a *sink* (through
``scope["extensions"]["voco.transport"]["lane"]``, an :class:`AudioLane`),
and each complete binary frame is handed to it synchronously from
``data_received`` — no queue, no task wake-up, no pause/resume of reading.

What keeps it correct:

* **Order.** A binary frame goes to the sink only while the ASGI queue is
  empty *and* the sink accepts it (the engine's reader accepts only while it
  is blocked waiting for the next message, i.e. nothing it read is still
  being handled). Otherwise the frame takes the ordinary queue, behind the
  text frame before it. So frames are handled in wire order, as before.
* **Bad frames.** The sink refuses anything but plain audio of a started
  session (too large, odd length, a fragmented message), which then takes
  the ordinary path: same errors, same close codes.
* **Backpressure.** The sink cannot block; when its session falls behind it
  calls :meth:`AudioLane.hold` and reading stops until it catches up (reading
  resumes only when neither the lane nor the ASGI queue holds it paused).
* **Close.** Once uvicorn has sent a close frame, or the connection is lost,
  the lane is off and frames take uvicorn's own path (which drops them).

**Parsing.** The websockets library's parser (a generator-based coroutine per
frame) was the next largest per-frame cost. When the library's parser is
provably idle at a frame boundary (its stream buffer empty, suspended waiting
for the next header, no fragmented message open, connection open, no
extension), the complete, masked, final binary frames at the start of a
``data_received`` chunk are unmasked here (the library's own C
``apply_mask``) and handed to the sink without the parser; the rest of the
chunk, from the first frame that is anything else (text, control, partial,
oversized) or that the sink refuses, goes to the library from that frame
boundary — so every limit and close code stays its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State
from websockets.speedups import apply_mask
from websockets.streams import StreamReader

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


Sink = Callable[[bytes], bool]
"""Takes one complete binary message; ``False``: not now, use the ordinary path."""


class AudioLane:
    """The app's handle on its connection's fast lane (see the module docstring)."""

    __slots__ = ("_p",)

    def __init__(self, protocol: BoundedCloseProtocol) -> None:
        self._p = protocol

    def attach(self, sink: Sink) -> None:
        self._p.sink = sink

    def detach(self) -> None:
        self._p.sink = None
        self.hold(False)

    def hold(self, paused: bool) -> None:
        """Stop (``True``) or restart reading the socket for the sink's sake."""
        self._p.lane_hold(paused)

    def wake(self) -> None:
        """Wake the app's pending ``receive()`` with a message that carries
        nothing (neither text nor bytes): the reader then looks at its own
        state, e.g. a failure the sink ran into."""
        if not self._p.disconnected:
            self._p.queue.put_nowait(cast(Any, {"type": "websocket.receive"}))


class BoundedCloseProtocol(WebSocketsSansIOProtocol):
    """``uvicorn --ws`` class: see the module docstring."""

    linger_s = LINGER_S
    sink: Sink | None = None
    lane_held = False

    def data_received(self, data: bytes) -> None:
        pos = 0
        if self.sink is not None and _parser_idle(self.conn):
            # whole binary frames from the start of the chunk go to the sink;
            # the parser is still at a frame boundary after each one
            while not self.close_sent and self.queue.empty() and self.sink is not None:
                got = _binary_frame_at(data, pos, self.conn.max_message_size)
                if got is None or not self.sink(got[0]):
                    break
                pos = got[1]
            if pos == len(data):
                return
        super().data_received(data[pos:] if pos else data)

    def handle_bytes(self, event: Any) -> None:
        sink = self.sink
        if (
            sink is not None
            and event.fin
            and not self.close_sent
            and self.queue.empty()
            and sink(event.data)
        ):
            return
        super().handle_bytes(event)

    def lane_hold(self, paused: bool) -> None:
        if paused == self.lane_held:
            return
        self.lane_held = paused
        if self.disconnected:
            return
        if paused:
            self.transport.pause_reading()
        elif not self.read_paused:
            self.transport.resume_reading()

    async def receive(self) -> Any:
        # uvicorn's own, except that reading stays paused while the lane holds it
        message = await self.queue.get()
        if self.read_paused and self.queue.empty():
            self.read_paused = False
            if not self.lane_held:
                self.transport.resume_reading()
        return message

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport by contract; uvloop's do not subclass asyncio.Transport
        stream = cast(asyncio.Transport, transport)
        super().connection_made(stream)
        self.transport = _BoundedClose(stream, self.linger_s)  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        bounded = self.transport
        if isinstance(bounded, _BoundedClose):
            bounded.cancel_linger()  # closed by itself: nothing left to abort
        self.sink = None
        super().connection_lost(exc)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)  # absent when the upgrade was refused
        if scope is not None:
            scope["extensions"][EXTENSION] = {
                "abort": self.transport.abort,
                "lane": AudioLane(self),
                # uvicorn's send() awaits nothing but this event: while it is
                # set, a send completes without yielding to the loop
                "writable": self.writable.is_set,
            }


def _extension(scope: Any) -> dict[str, Any] | None:
    """What :class:`BoundedCloseProtocol` put in ``scope`` (``None``: another server)."""
    ext: dict[str, Any] | None = (scope.get("extensions") or {}).get(EXTENSION)
    return ext


def abort_connection(scope: Any) -> bool:
    """Drop the connection of ``scope`` now, buffered output discarded; False
    when the server is not running :class:`BoundedCloseProtocol`."""
    ext = _extension(scope)
    if not ext:
        return False
    ext["abort"]()
    return True


def writable_probe(scope: Any) -> Callable[[], bool] | None:
    """Whether a send on ``scope``'s connection would complete at once (the
    peer's buffers have room); ``None`` when the server is not running
    :class:`BoundedCloseProtocol`."""
    ext = _extension(scope)
    probe: Callable[[], bool] | None = ext.get("writable") if ext else None
    return probe


_AT_EOF = StreamReader.at_eof.__code__


def _parser_idle(conn: Any) -> bool:
    """``conn``'s parser sits at a frame boundary with nothing buffered, so a
    whole frame skipped leaves it exactly as parsing that frame would."""
    waiting = conn.parser  # the innermost generator it waits in (server → frames → reader)
    while (inner := getattr(waiting, "gi_yieldfrom", None)) is not None:
        waiting = inner
    return (
        conn.state is State.OPEN
        and conn.current_size is None  # no fragmented message open
        and not conn.extensions
        and conn.parser_exc is None
        and not conn.reader.buffer
        and not conn.reader.eof
        and getattr(waiting, "gi_code", None) is _AT_EOF
    )


def _binary_frame_at(data: bytes, pos: int, max_size: int | None) -> tuple[bytes, int] | None:
    """The unmasked payload and end of the frame at ``data[pos:]`` if it is a
    complete, final, masked binary frame within ``max_size``; else ``None``
    (the library parses it, and says what is wrong with it)."""
    n = len(data) - pos
    if n < 6 or data[pos] != 0x82:  # FIN, no RSV bits, opcode binary
        return None
    b1 = data[pos + 1]
    if not b1 & 0x80:  # a client frame must be masked: the library says so
        return None
    size, head = b1 & 0x7F, pos + 2
    if size == 126:
        size, head = int.from_bytes(data[pos + 2 : pos + 4], "big"), pos + 4
    elif size == 127:
        return None  # 64 KiB or more: never plain audio (MAX_AUDIO_FRAME)
    end = head + 4 + size
    if end > len(data) or (max_size is not None and size > max_size):
        return None
    return apply_mask(memoryview(data)[head + 4 : end], data[head : head + 4]), end


def audio_lane(scope: Any) -> AudioLane | None:
    """The fast lane of ``scope``'s connection; ``None`` when the server is not
    running :class:`BoundedCloseProtocol` (e.g. a test client)."""
    ext = _extension(scope)
    lane = ext.get("lane") if ext else None
    return lane if isinstance(lane, AudioLane) else None
