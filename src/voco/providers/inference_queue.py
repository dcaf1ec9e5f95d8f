"""One bounded, measured, prioritised queue per embedded model and process.

Why: the embedded Whisper and Piper each run on one dedicated thread, so every
session of the process shares them. A plain executor queue is unbounded and
blind: under load a first clause waits behind other replies' later clauses,
and nobody knows how long jobs wait. This queue

- runs one job at a time on the model's thread, lowest ``priority`` first
  (FIFO within a priority): TTS gives a reply's first clause priority 0 and the
  rest 1, so a new reply starts speaking before older replies finish;
- refuses a job when ``max_depth`` are already waiting (a clear
  :class:`~voco.providers.base.ProviderError`, never an unbounded backlog);
- measures the wait of every job and the fraction of wall time the model was
  busy, which :mod:`voco.engine.admission` reads to refuse new sessions before
  the queue grows.

The priority travels in a context variable (:func:`job_priority`), so the
providers' interface stays ``synthesize(text)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

from voco.providers.base import ProviderError

T = TypeVar("T")

PRIORITY: contextvars.ContextVar[int] = contextvars.ContextVar("voco_job_priority", default=0)
FIRST, LATER = 0, 1

_QUEUES: weakref.WeakSet[InferenceQueue] = weakref.WeakSet()


@contextlib.contextmanager
def job_priority(priority: int) -> Iterator[None]:
    """Jobs submitted inside the block (in this task) run at ``priority``."""
    token = PRIORITY.set(priority)
    try:
        yield
    finally:
        PRIORITY.reset(token)


def process_queues() -> list[InferenceQueue]:
    """Every live queue of this process (what admission and ``/metrics`` sample)."""
    return sorted(_QUEUES, key=lambda q: q.name)


@dataclass(frozen=True)
class QueueSample:
    """The queue since the previous :meth:`InferenceQueue.sample`."""

    depth: int  # jobs waiting now
    max_wait_s: float  # the longest wait seen, jobs still waiting included
    busy: float  # fraction of the interval the model thread was working
    waits: tuple[float, ...]  # each started job's wait (for histograms)


class InferenceQueue:
    """Serialises jobs onto ``executor`` (a one-thread pool) with priorities.

    Loop-agnostic on purpose: a job's end is seen on the model thread and the
    next waiter is woken on *its own* event loop, so one queue serves every loop
    of a process (the tests run one per test) and a closed loop's leftover
    waiters are skipped rather than blocking the model forever."""

    def __init__(
        self,
        name: str,
        executor: Executor,
        *,
        max_depth: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.max_depth = max_depth
        self._executor = executor
        self._clock = clock
        self._lock = threading.Lock()  # the model thread releases, loops enqueue
        self._heap: list[tuple[int, int, float, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._running = False
        self._busy_s = 0.0  # completed work since the last sample
        self._run_start: float | None = None
        self._waits: list[float] = []
        self._last_sample = clock()
        _QUEUES.add(self)

    @property
    def depth(self) -> int:
        with self._lock:
            return sum(1 for *_, f in self._heap if not f.done())

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the model thread when its turn comes."""
        if self.depth >= self.max_depth:
            raise ProviderError(
                self.name, f"the {self.name} queue is full ({self.max_depth} jobs waiting)"
            )
        enqueued = self._clock()
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            heapq.heappush(self._heap, (PRIORITY.get(), next(self._seq), enqueued, turn))
            self._next()
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # our turn came as we were cancelled
                self._release()
            raise
        started = self._clock()
        with self._lock:
            self._waits.append(started - enqueued)
            self._run_start = started
        try:
            job = self._executor.submit(fn, *args)
        except BaseException:
            self._release()
            raise
        # the thread, not the waiter, frees the slot: a cancelled waiter whose
        # job already runs keeps the model busy until the job ends
        job.add_done_callback(lambda _: self._release())
        return await asyncio.wrap_future(job)

    def _next(self) -> None:
        """Wake the first live waiter (call with the lock held)."""
        while not self._running and self._heap:
            *_, turn = heapq.heappop(self._heap)
            loop = turn.get_loop()
            if turn.done() or loop.is_closed():  # cancelled, or its loop is gone
                continue
            self._running = True
            try:
                loop.call_soon_threadsafe(self._wake, turn)
            except RuntimeError:  # the loop closed just now
                self._running = False

    def _wake(self, turn: asyncio.Future[None]) -> None:
        if turn.done():  # cancelled between being chosen and being woken
            self._release()
        else:
            turn.set_result(None)

    def _release(self) -> None:
        with self._lock:
            if self._run_start is not None:
                self._busy_s += self._clock() - self._run_start
                self._run_start = None
            self._running = False
            self._next()

    def sample(self) -> QueueSample:
        """Wait, depth and busy fraction since the previous call (then reset)."""
        with self._lock:
            now = self._clock()
            busy = self._busy_s
            if self._run_start is not None:  # count the running job's share so far
                busy += now - self._run_start
                self._run_start = now
            span = max(1e-6, now - self._last_sample)
            waiting = [now - t for _, _, t, f in self._heap if not f.done()]
            waits = tuple(self._waits)
            self._waits.clear()
            self._busy_s = 0.0
            self._last_sample = now
        return QueueSample(
            depth=len(waiting),
            max_wait_s=max([*waits, *waiting], default=0.0),
            busy=min(1.0, busy / span),
            waits=waits,
        )
