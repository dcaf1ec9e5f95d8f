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
    Waiting,
    job_priority,
    pick_batch,
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


# ---------------------------------------------------------------- batching


@pytest.mark.parametrize(
    ("key", "waiting", "max_batch", "picked"),
    [
        ("a", [Waiting("a", True), Waiting("a", True)], 4, [0, 1]),
        ("a", [Waiting("a", True)] * 5, 4, [0, 1, 2]),  # the leader is the fourth
        ("a", [Waiting("b", True), Waiting("a", True), Waiting(None, True)], 4, [1]),
        ("a", [Waiting("a", False), Waiting("a", True)], 4, [1]),  # cancelled or other loop
        ("a", [Waiting("a", True)], 1, []),  # batching off
        (None, [Waiting(None, True)], 4, []),  # an unbatchable job runs alone
        ("a", [], 4, []),  # alone: nobody is waited for
    ],
)
def test_the_batching_policy(key, waiting, max_batch, picked) -> None:
    assert pick_batch(key, waiting, max_batch) == picked


class BatchModel:
    """A batch function that records each call's items (the "model pass")."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, items: list[str]) -> list[str]:
        self.calls.append(list(items))
        return [x.upper() for x in items]


async def test_jobs_waiting_together_run_as_one_batch(executor, gate) -> None:
    q = InferenceQueue("batch-test", executor, max_batch=3)
    model = BatchModel()
    blocker = asyncio.ensure_future(q.run(gate.job))
    await until(gate.started.is_set)
    jobs = [asyncio.ensure_future(q.run_batch(model, "w1000", x)) for x in "abcd"]
    other = asyncio.ensure_future(q.run_batch(model, "w3000", "z"))  # another window
    await until(lambda: q.depth == 5)
    gate.set()
    got = await asyncio.gather(*jobs, other, blocker)
    assert got[:5] == ["A", "B", "C", "D", "Z"]  # each caller gets its own result
    assert model.calls == [["a", "b", "c"], ["d"], ["z"]]  # capped at max_batch; keys apart


async def test_a_job_alone_is_not_held_back_for_company(executor) -> None:
    q = InferenceQueue("alone-test", executor, max_batch=4)
    model = BatchModel()
    assert await q.run_batch(model, "k", "solo") == "SOLO"
    assert model.calls == [["solo"]]


async def test_a_cancelled_follower_is_left_out_and_the_rest_go_on(executor, gate) -> None:
    q = InferenceQueue("cancel-batch-test", executor, max_batch=4)
    model = BatchModel()
    blocker = asyncio.ensure_future(q.run(gate.job))
    await until(gate.started.is_set)
    a = asyncio.ensure_future(q.run_batch(model, "k", "a"))
    gone = asyncio.ensure_future(q.run_batch(model, "k", "gone"))
    c = asyncio.ensure_future(q.run_batch(model, "k", "c"))
    await until(lambda: q.depth == 3)
    gone.cancel()
    await until(lambda: q.depth == 2)
    gate.set()
    assert await asyncio.gather(a, c, blocker) == ["A", "C", None]
    assert model.calls == [["a", "c"]] and gone.cancelled()


async def test_a_failed_batch_fails_each_of_its_jobs_and_frees_the_thread(executor, gate) -> None:
    q = InferenceQueue("fail-batch-test", executor, max_batch=4)

    def broken(items: list[str]) -> list[str]:
        raise RuntimeError(f"model broke on {len(items)}")

    blocker = asyncio.ensure_future(q.run(gate.job))
    await until(gate.started.is_set)
    jobs = [asyncio.ensure_future(q.run_batch(broken, "k", x)) for x in "ab"]
    await until(lambda: q.depth == 2)
    gate.set()
    await blocker
    for j in jobs:
        with pytest.raises(RuntimeError, match="model broke on 2"):
            await j
    assert await q.run(lambda: 7) == 7


async def test_a_batch_counts_every_jobs_wait(executor, gate) -> None:
    clock = Clock()
    q = InferenceQueue("wait-batch-test", executor, max_batch=4, clock=clock)
    model = BatchModel()
    blocker = asyncio.ensure_future(q.run(gate.job))
    await until(gate.started.is_set)
    jobs = [asyncio.ensure_future(q.run_batch(model, "k", x)) for x in "ab"]
    await until(lambda: q.depth == 2)
    clock.t += 1.5
    gate.set()
    await asyncio.gather(blocker, *jobs)
    assert sorted(q.sample().waits) == [0.0, 1.5, 1.5]
