"""A session's serial writer: its store round trips, in order, off the reader.

Why: the WebSocket reader must always be free to answer pings and act on the
next frame, whatever the store does. A cut reply's record and its correction
from ``audio.played`` are graph state round trips (``aget_state`` then
``aupdate_state``, on Postgres two or more queries) that can wait on a busy pool
or a stalled server for seconds. Awaiting them in the reader froze the session
— pings unanswered, the client's keepalive closing it (issue 15 §4).

So the reader *submits* each write here and returns at once. One worker task
runs them one after another in submission order (a correction can never land
before the record it corrects). A job that fails is logged and the next one
runs. :meth:`SerialWriter.settled` lets the next graph run wait for the writes
submitted before it (so it reads the cut reply), and :meth:`SerialWriter.aclose`
drains everything before the session is gone: nothing submitted is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("voco.session")

Job = Callable[[], Awaitable[None]]


class WriterClosed(RuntimeError):
    """A write was submitted after :meth:`SerialWriter.aclose` (a bug in the caller)."""


class SerialWriter:
    def __init__(self, name: str = "session") -> None:
        self._name = name
        self._queue: asyncio.Queue[tuple[Job, str] | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self.submitted = 0
        self.done = 0  # jobs run (failed ones included)
        self.failed = 0
        self._progress = asyncio.Condition()

    def submit(self, job: Job, what: str = "write") -> int:
        """Queue ``job`` (a coroutine function); returns its sequence number.
        Never blocks: safe to call from the reader."""
        if self._closed:
            raise WriterClosed(f"{self._name}: {what} submitted after close")
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name=f"writer {self._name}")
        self.submitted += 1
        self._queue.put_nowait((job, what))
        return self.submitted

    @property
    def pending(self) -> int:
        return self.submitted - self.done

    async def _run(self) -> None:
        while (item := await self._queue.get()) is not None:
            job, what = item
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failed += 1
                log.exception("%s: %s failed", self._name, what)
            finally:
                self.done += 1
                async with self._progress:
                    self._progress.notify_all()

    async def settled(self) -> None:
        """Return once every job submitted before this call has run."""
        target = self.submitted
        async with self._progress:
            await self._progress.wait_for(lambda: self.done >= target)

    async def aclose(self) -> None:
        """Run everything submitted, then stop. If cancelled meanwhile (a bounded
        shutdown), say how many writes were cut."""
        if self._closed:
            return
        self._closed = True
        if self._worker is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.shield(self._worker)
        except asyncio.CancelledError:
            if self.pending:
                log.error("%s: closing cut %d unfinished write(s)", self._name, self.pending)
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            raise
