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
  the queue grows;
- runs jobs of one batch key that are *already waiting* when the model frees up
  as one call (:meth:`InferenceQueue.run_batch`, up to ``max_batch``): Whisper
  decodes of several sessions in one CTranslate2 pass. Nothing ever waits to
  form a batch, so a job alone runs alone, as fast as before; the policy is
  the pure :func:`pick_batch`.

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
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from voco.providers.base import ProviderError

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 (a batch item)

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


@dataclass(frozen=True)
class Waiting:
    """What the batching policy sees of one waiting job."""

    key: Hashable | None  # its batch key (None: never batched)
    live: bool  # not cancelled, and on the leader's event loop


def pick_batch(key: Hashable | None, waiting: Sequence[Waiting], max_batch: int) -> list[int]:
    """Which waiting jobs (indices into ``waiting``, in queue order: priority,
    then arrival) run in one call with a job of ``key`` whose turn came: live
    ones of the same key, first come first, at most ``max_batch - 1``."""
    if key is None or max_batch <= 1:
        return []
    picked: list[int] = []
    for i, w in enumerate(waiting):
        if len(picked) == max_batch - 1:
            break
        if w.live and w.key == key:
            picked.append(i)
    return picked


@dataclass(frozen=True)
class _Slot(Generic[I]):
    key: Hashable
    item: I


@dataclass(frozen=True)
class _Ran:
    """A follower's outcome: it ran inside another job's batch."""

    value: Any = None
    error: BaseException | None = None


_Entry = tuple[int, int, float, "asyncio.Future[Any]", "_Slot[Any] | None"]


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
        max_batch: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.max_depth = max_depth
        self.max_batch = max_batch
        self._executor = executor
        self._clock = clock
        self._lock = threading.Lock()  # the model thread releases, loops enqueue
        self._heap: list[_Entry] = []
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
            return sum(1 for e in self._heap if not e[3].done())

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the model thread when its turn comes."""
        if self.depth >= self.max_depth:
            raise ProviderError(
                self.name, f"the {self.name} queue is full ({self.max_depth} jobs waiting)"
            )
        enqueued = self._clock()
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            heapq.heappush(self._heap, (PRIORITY.get(), next(self._seq), enqueued, turn, None))
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

    async def run_batch(self, fn: Callable[[list[I]], list[T]], key: Hashable, item: I) -> T:
        """``fn([item])[0]`` on the model thread when its turn comes — with the
        jobs of the same ``key`` waiting at that moment in the same call
        (``fn`` returns one result per item, in order)."""
        if self.depth >= self.max_depth:
            raise ProviderError(
                self.name, f"the {self.name} queue is full ({self.max_depth} jobs waiting)"
            )
        enqueued = self._clock()
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[_Ran | None] = loop.create_future()
        with self._lock:
            entry: _Entry = (PRIORITY.get(), next(self._seq), enqueued, turn, _Slot(key, item))
            heapq.heappush(self._heap, entry)
            self._next()
        try:
            ran = await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled() and turn.result() is None:
                self._release()  # our turn came as we were cancelled
            raise
        if ran is not None:  # it ran inside another job's batch
            if ran.error is not None:
                raise ran.error
            return ran.value
        started = self._clock()
        with self._lock:
            followers = self._take_followers(key, loop)
            self._waits.extend(started - e[2] for e in [entry, *followers])
            self._run_start = started
        items = [item, *(e[4].item for e in followers if e[4] is not None)]
        try:
            job = self._executor.submit(fn, items)
        except BaseException as exc:
            self._deliver(followers, None, exc)
            self._release()
            raise

        def done(j: Future[list[T]]) -> None:  # on the model thread
            try:
                results: list[T] | None = j.result()
                if results is None or len(results) != len(items):
                    raise RuntimeError(f"{self.name}: a batch of {len(items)} gave other results")
                self._deliver(followers, results[1:], None)
            except BaseException as exc:
                self._deliver(followers, None, exc)
            self._release()

        job.add_done_callback(done)
        results = await asyncio.wrap_future(job)
        if len(results) != len(items):
            raise RuntimeError(f"{self.name}: a batch of {len(items)} gave other results")
        return results[0]

    def _take_followers(self, key: Hashable, loop: asyncio.AbstractEventLoop) -> list[_Entry]:
        """Take the waiting jobs :func:`pick_batch` joins to this one off the
        heap (call with the lock held)."""
        if self.max_batch <= 1 or not self._heap:
            return []
        order = sorted(self._heap)  # queue order: (priority, arrival) is unique
        waiting = [
            Waiting(
                e[4].key if e[4] is not None else None,
                live=not e[3].done() and e[3].get_loop() is loop,
            )
            for e in order
        ]
        taken = [order[i] for i in pick_batch(key, waiting, self.max_batch)]
        if taken:
            gone = {e[1] for e in taken}
            self._heap = [e for e in self._heap if e[1] not in gone]
            heapq.heapify(self._heap)
        return taken

    @staticmethod
    def _deliver(
        followers: list[_Entry], results: Sequence[Any] | None, error: BaseException | None
    ) -> None:
        """Each follower's outcome, set on its own loop (any thread may call)."""
        for i, e in enumerate(followers):
            fut = e[3]
            ran = _Ran(results[i]) if results is not None else _Ran(error=error)

            def settle(fut: asyncio.Future[Any] = fut, ran: _Ran = ran) -> None:
                if not fut.done():  # a cancelled follower just drops its result
                    fut.set_result(ran)

            with contextlib.suppress(RuntimeError):  # its loop closed meanwhile
                fut.get_loop().call_soon_threadsafe(settle)

    def _next(self) -> None:
        """Wake the first live waiter (call with the lock held)."""
        while not self._running and self._heap:
            turn = heapq.heappop(self._heap)[3]
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
            waiting = [now - e[2] for e in self._heap if not e[3].done()]
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
