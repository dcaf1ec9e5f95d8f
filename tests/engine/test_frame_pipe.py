"""FramePipe: frames stepped in order through a deferred scorer and awaited steps,
no future per frame, backpressure and failure (engine/frame_pipe.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from voco.audio.vad import BatchedVAD, VadStream
from voco.engine.frame_pipe import FramePipe

Scored = Callable[[float, BaseException | None], None]


class DeferredVAD(BatchedVAD):
    """Scores when the test says so: ``answer()`` calls back the oldest frame."""

    def __init__(self) -> None:  # no model
        self.waiting: list[tuple[bytes, Scored]] = []

    def submit(self, stream: VadStream, frame: Any, scored: Scored) -> None:
        self.waiting.append((frame, scored))

    def answer(self, p: float = 0.5, exc: BaseException | None = None) -> None:
        frame, scored = self.waiting.pop(0)
        scored(p, exc)


class Steps:
    """The listener's side: frames starting with b"m" need the model; b"w"
    frames have something to await (released by the test)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, bytes, float]] = []
        self.gates: dict[bytes, asyncio.Event] = {}

    def needs_model(self, frame: bytes) -> bool:
        self.log.append(("gate", frame, 0.0))
        return frame.startswith(b"m")

    def step(self, frame: bytes, prob: float) -> Awaitable[None] | None:
        self.log.append(("step", frame, prob))
        if frame.startswith(b"w"):
            gate = self.gates.setdefault(frame, asyncio.Event())

            async def work() -> None:
                await gate.wait()
                if frame == b"w-boom":
                    raise RuntimeError("stt push failed")
                self.log.append(("done", frame, prob))

            return work()
        return None


def pipe_of(vad: BatchedVAD, steps: Steps, **kw: Any) -> tuple[FramePipe, set[Any]]:
    tasks: set[Any] = set()

    def spawn(aw: Awaitable[None]) -> None:
        t = asyncio.ensure_future(aw)
        tasks.add(t)

    return FramePipe(vad, VadStream(), steps, spawn, **kw), tasks


async def test_frames_are_gated_scored_and_stepped_one_at_a_time_in_order() -> None:
    vad, steps = DeferredVAD(), Steps()
    pipe, _ = pipe_of(vad, steps)
    pipe.feed([b"s1", b"m2", b"s3"])
    # s1 stepped at once (no model); m2 waits for its score; s3 not even gated yet
    assert steps.log == [("gate", b"s1", 0.0), ("step", b"s1", 0.0), ("gate", b"m2", 0.0)]
    pipe.feed([b"m4"])
    assert len(vad.waiting) == 1  # one frame of the stream in flight at a time
    vad.answer(0.9)
    assert steps.log[3:6] == [("step", b"m2", 0.9), ("gate", b"s3", 0.0), ("step", b"s3", 0.0)]
    assert steps.log[-1] == ("gate", b"m4", 0.0)
    vad.answer(0.1)
    assert steps.log[-1] == ("step", b"m4", 0.1)
    assert pipe.pending == 0
    await pipe.settled()  # nothing outstanding: returns at once


async def test_an_awaited_step_holds_back_the_frames_after_it() -> None:
    vad, steps = DeferredVAD(), Steps()
    pipe, _ = pipe_of(vad, steps)
    pipe.feed([b"w1", b"s2"])
    assert steps.log == [("gate", b"w1", 0.0), ("step", b"w1", 0.0)]
    settled = asyncio.ensure_future(pipe.settled())
    await asyncio.sleep(0)
    assert not settled.done()
    steps.gates[b"w1"].set()
    await settled
    assert [e[:2] for e in steps.log[2:]] == [("done", b"w1"), ("gate", b"s2"), ("step", b"s2")]


async def test_a_scorer_that_answers_inside_submit_does_not_recurse() -> None:
    class AtOnce(DeferredVAD):
        def submit(self, stream: VadStream, frame: Any, scored: Scored) -> None:
            scored(0.7, None)

    steps = Steps()
    pipe, _ = pipe_of(AtOnce(), steps)
    pipe.feed([b"m"] * 5000)  # deep enough to overflow the stack if it recursed
    assert sum(1 for kind, _, _ in steps.log if kind == "step") == 5000
    await pipe.settled()


async def test_a_backlog_stops_reading_and_an_empty_inbox_restarts_it() -> None:
    vad, steps = DeferredVAD(), Steps()
    pipe, _ = pipe_of(vad, steps, hold_after=3)
    held: list[bool] = []
    pipe.hold = held.append
    pipe.feed([b"m1", b"m2", b"m3"])
    assert held == []
    pipe.feed([b"m4"])  # 4 waiting > 3
    assert held == [True]
    pipe.feed([b"m5"])
    assert held == [True]  # said once
    for _ in range(5):
        vad.answer()
    assert held == [True, False]


async def test_a_model_failure_stops_the_pipe_and_is_reported_once() -> None:
    vad, steps = DeferredVAD(), Steps()
    pipe, _ = pipe_of(vad, steps)
    failures: list[BaseException] = []
    pipe.on_failure = failures.append
    pipe.feed([b"m1", b"s2"])
    settled = asyncio.ensure_future(pipe.settled())
    await asyncio.sleep(0)
    boom = RuntimeError("onnx")
    vad.answer(exc=boom)
    assert failures == [boom]
    with pytest.raises(RuntimeError, match="onnx"):
        await settled
    with pytest.raises(RuntimeError, match="onnx"):
        pipe.feed([b"s3"])
    assert ("step", b"s2", 0.0) not in steps.log


async def test_an_awaited_step_that_raises_fails_the_pipe() -> None:
    vad, steps = DeferredVAD(), Steps()
    pipe, _ = pipe_of(vad, steps)
    failures: list[BaseException] = []
    pipe.on_failure = failures.append
    pipe.feed([b"w-boom", b"s2"])
    steps.gates[b"w-boom"].set()
    with pytest.raises(RuntimeError, match="stt push"):
        await pipe.settled()
    assert len(failures) == 1
    assert ("step", b"s2", 0.0) not in steps.log


async def test_close_drops_what_waits_and_releases_waiters() -> None:
    vad, steps = DeferredVAD(), Steps()
    pipe, _ = pipe_of(vad, steps)
    pipe.feed([b"m1", b"s2"])
    settled = asyncio.ensure_future(pipe.settled())
    await asyncio.sleep(0)
    pipe.close()
    await settled
    vad.answer()  # a late score after close: ignored
    pipe.feed([b"s3"])
    assert [e for e in steps.log if e[0] == "step"] == []
