"""One session's audio frames, in order, through the VAD and the listener's step
with no task, future or wake-up per frame (issue 11 §1).

Why: at hundreds of sessions per core, awaiting a future per frame for its VAD
score (and the reader task woken for it) cost more than the model itself. Here
a frame is fed synchronously (from the socket's ``data_received``, see
:mod:`voco.engine.ws_protocol`); if it must be scored, it is submitted to the
batched VAD with a callback, and the listener's step runs in that callback.
Only a frame whose step has something to await (an event to announce, audio
for the recogniser) gets a task, and the frames after it wait behind it.

Ordering is what the old "await each frame in the reader" gave, exactly:

* frames are stepped one at a time, in arrival order; frame *n+1* is not even
  looked at (gated or submitted) before frame *n*'s step — awaits included —
  is done, because the gate's decision and the echo test read state that
  step leaves (``in_speech``, stream time);
* :meth:`settled` waits until every frame fed so far is stepped: the reader
  awaits it before it acts on a text message, so a message is handled after
  the audio the client sent before it.

Backpressure: the inbox is bounded by ``hold_after`` frames; past it ``hold``
is told to stop reading the socket (the kernel buffer then fills and the
client sees it, as with the ASGI queue), and told to read again once the inbox
is empty.

A failure (the model, or a step's await raising) stops the pipe: every later
:meth:`feed`/:meth:`settled` raises it, and ``on_failure`` is told at once so
the reader can end the session as it would have when the exception came out
of its own await.

Sans-I/O apart from the spawn it is given: no clocks, no sockets.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from voco.audio.vad import BatchedVAD, VadStream

HOLD_AFTER = 16  # frames (512 ms) waiting before the socket stops being read


class Stepper(Protocol):
    """The listener's side: which frames the model scores, and each frame's step."""

    def needs_model(self, frame: bytes) -> bool:
        """Called once per frame, just before its step, in order."""

    def step(self, frame: bytes, prob: float) -> Awaitable[None] | None:
        """Everything synchronous of a frame's step; what must be awaited, if
        anything, is returned (the next frame waits for it)."""


class FramePipe:
    def __init__(
        self,
        scorer: BatchedVAD,
        stream: VadStream,
        stepper: Stepper,
        spawn: Callable[[Awaitable[None]], None],
        *,
        hold_after: int = HOLD_AFTER,
    ) -> None:
        self._scorer = scorer
        self._stream = stream
        self._stepper = stepper
        self._spawn = spawn
        self._hold_after = hold_after
        self._inbox: deque[bytes] = deque()
        self._prob: float | None = None  # the head frame's score, once known
        self._busy = False  # the head frame is being scored, or its step awaited
        self._running = False  # inside _advance (a synchronous scorer re-enters)
        self._held = False
        self._closed = False
        self.failure: BaseException | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self.on_failure: Callable[[BaseException], None] | None = None
        self.hold: Callable[[bool], None] | None = None  # True: stop reading; False: read

    @property
    def pending(self) -> int:
        return len(self._inbox)

    def feed(self, frames: list[bytes]) -> None:
        """Take whole 512-sample frames, in order; steps what it can now."""
        if self.failure is not None:
            raise self.failure
        if self._closed:
            return
        self._inbox.extend(frames)
        if not self._busy:
            self._advance()
        if not self._held and len(self._inbox) > self._hold_after and self.hold is not None:
            self._held = True
            self.hold(True)

    async def settled(self) -> None:
        """Every frame fed so far has been stepped (or the pipe is closed)."""
        if self.failure is not None:
            raise self.failure
        if self._closed or (not self._inbox and not self._busy):
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        await fut

    def close(self) -> None:
        """Drop what is waiting; nothing more is stepped."""
        self._closed = True
        self._inbox.clear()
        self._wake(None)

    # -------------------------------------------------------------- internals

    def _advance(self) -> None:
        if self._running:  # a scorer answered synchronously, inside submit()
            return
        self._running = True
        try:
            while self._inbox and not self._busy and not self._closed:
                frame = self._inbox[0]
                if self._prob is None:
                    if self._stepper.needs_model(frame):
                        self._busy = True
                        self._scorer.submit(self._stream, frame, self._scored)
                        if self._busy:  # answered later, in _scored (or failed)
                            return
                    else:
                        self._prob = 0.0
                prob, self._prob = self._prob, None
                assert prob is not None
                self._inbox.popleft()
                work = self._stepper.step(frame, prob)
                if work is not None:
                    self._busy = True
                    self._spawn(self._await(work))
        finally:
            self._running = False
        if not self._inbox and not self._busy:
            if self._held and self.hold is not None:
                self._held = False
                self.hold(False)
            self._wake(None)

    def _scored(self, prob: float, exc: BaseException | None) -> None:
        if self._closed:
            return
        if exc is not None:
            self._fail(exc)
            return
        self._prob = prob
        self._busy = False
        self._advance()

    async def _await(self, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception as exc:
            self._fail(exc)
            return
        except asyncio.CancelledError:  # the session is closing
            self.close()
            raise
        self._busy = False
        self._advance()

    def _fail(self, exc: BaseException) -> None:
        self.failure = exc
        self._busy = True  # nothing more is stepped
        self._inbox.clear()
        self._wake(exc)
        if self.on_failure is not None:
            self.on_failure(exc)

    def _wake(self, exc: BaseException | None) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if fut.done():
                continue
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(None)
