"""The shared inference queue: priority order, the bound, cancellation, measurement.

A real one-thread executor; a job blocks on a ``threading.Event`` so the test
decides when the model thread is free (no sleeps, no timing).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from voco.providers.base import ProviderError
from voco.providers.inference_queue import (
    FIRST,
    LATER,
    InferenceQueue,
    job_priority,
    process_queues,
)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


async def until(cond: object) -> None:
    while not cond():  # type: ignore[operator]  # noqa: ASYNC110 (state on another thread)
        await asyncio.sleep(0.001)


@pytest.fixture
def executor():
    ex = ThreadPoolExecutor(max_workers=1)
    yield ex
    ex.shutdown(wait=True)


class Gate:
    """A job that holds the model thread until the test opens the gate."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.open = threading.Event()

    def job(self) -> None:
        self.started.set()
        self.open.wait()

    def set(self) -> None:
        self.open.set()


@pytest.fixture
def gate(executor) -> object:
    g = Gate()
    yield g
    g.set()  # a failed test must not leave the thread blocked (teardown waits for it)


async def test_first_clauses_run_before_later_ones_queued_earlier(executor, gate) -> None:
    q = InferenceQueue("tts-test", executor)
    order = []
    blocker = asyncio.ensure_future(q.run(gate.job))
    await until(gate.started.is_set)

    async def job(name: str, priority: int) -> None:
        with job_priority(priority):
            await q.run(order.append, name)

    later_a = asyncio.ensure_future(job("later-a", LATER))
    later_b = asyncio.ensure_future(job("later-b", LATER))
    await until(lambda: q.depth == 2)
    first = asyncio.ensure_future(job("first", FIRST))
    await until(lambda: q.depth == 3)
    gate.set()
    await asyncio.gather(blocker, later_a, later_b, first)
    assert order == ["first", "later-a", "later-b"]


async def test_a_full_queue_refuses_with_a_clear_error(executor, gate) -> None:
    q = InferenceQueue("stt-test", executor, max_depth=1)
    blocker = asyncio.ensure_future(q.run(gate.job))
    await until(gate.started.is_set)
    waiting = asyncio.ensure_future(q.run(lambda: "ok"))
    await until(lambda: q.depth == 1)
    with pytest.raises(ProviderError, match="queue is full"):
        await q.run(lambda: "refused")
    gate.set()
    assert await waiting == "ok"
    await blocker


async def test_a_cancelled_waiter_leaves_the_queue_and_the_rest_go_on(executor, gate) -> None:
    q = InferenceQueue("x-test", executor)
    ran = []
    blocker = asyncio.ensure_future(q.run(gate.job))
    await until(gate.started.is_set)
    gone = asyncio.ensure_future(q.run(ran.append, "gone"))
    kept = asyncio.ensure_future(q.run(ran.append, "kept"))
    await until(lambda: q.depth == 2)
    gone.cancel()
    await until(lambda: q.depth == 1)
    gate.set()
    await asyncio.gather(blocker, kept)
    assert ran == ["kept"]
    assert gone.cancelled()


async def test_job_errors_reach_the_caller_and_free_the_thread(executor) -> None:
    q = InferenceQueue("err-test", executor)

    def boom() -> None:
        raise RuntimeError("model broke")

    with pytest.raises(RuntimeError, match="model broke"):
        await q.run(boom)
    assert await q.run(lambda: 7) == 7


async def test_sample_reports_waits_depth_and_busy_fraction(executor, gate) -> None:
    clock = Clock()
    q = InferenceQueue("m-test", executor, clock=clock)
    assert q in process_queues()
    blocker = asyncio.ensure_future(q.run(gate.job))
    await until(gate.started.is_set)
    waiter = asyncio.ensure_future(q.run(lambda: None))
    await until(lambda: q.depth == 1)
    clock.t += 2.0  # the blocker has run 2 s, the waiter waited 2 s
    s = q.sample()
    assert (s.depth, s.busy, s.max_wait_s) == (1, 1.0, 2.0)
    assert s.waits == (0.0,)  # the blocker started at once
    gate.set()
    await asyncio.gather(blocker, waiter)
    clock.t += 2.0
    s = q.sample()
    assert s.depth == 0 and s.waits == (2.0,)
    assert s.busy == 0.0  # no clock time passed while the jobs ran after the first sample


def test_one_queue_serves_successive_event_loops(executor, gate) -> None:
    """A job still running when its loop closes must not block the next loop
    (the session-scoped models of the tests serve one loop per test)."""
    q = InferenceQueue("loops-test", executor)
    left: list[asyncio.Future[None]] = []

    async def leave_a_job_running() -> None:
        left.append(asyncio.ensure_future(q.run(gate.job)))  # still running at loop close
        await until(gate.started.is_set)

    asyncio.run(leave_a_job_running())  # closes its loop with the job on the thread
    gate.set()
    assert asyncio.run(q.run(lambda: 5)) == 5
