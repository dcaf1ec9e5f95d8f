"""The asyncio side of admission: a cheap ticker that measures headroom.

Every ``interval_s`` it wakes up and records how late it woke (event-loop lag),
the event-loop thread's CPU time over wall time since the previous tick (busy
fraction: ``time.thread_time`` read from the loop thread), the whole process's
CPU time per core it may use (``time.process_time`` over wall time, over the
CPU affinity's size: the loop and the models' threads share those cores), and
a sample of every embedded inference queue of the process. Those go to the pure
:class:`~voco.engine.admission.Admission` (which decides) and to
:class:`~voco.engine.metrics.EngineMetrics` (which publishes). Cost: one
coroutine wake-up and a few arithmetic operations per tick (10 per second).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from voco.engine.admission import Admission
from voco.engine.metrics import EngineMetrics, multiprocess_mode
from voco.providers.inference_queue import process_queues

log = logging.getLogger("voco.capacity")

TICK_S = 0.1


class CapacitySampler:
    def __init__(
        self, admission: Admission, metrics: EngineMetrics, interval_s: float = TICK_S
    ) -> None:
        self.admission = admission
        self.metrics = metrics
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="capacity")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        wall, cpu, proc = time.monotonic(), time.thread_time(), time.process_time()
        while True:
            await asyncio.sleep(self.interval_s)
            now, now_cpu, now_proc = time.monotonic(), time.thread_time(), time.process_time()
            span = max(1e-6, now - wall)
            lag = max(0.0, now - wall - self.interval_s)
            busy = (now_cpu - cpu) / span
            proc_busy = (now_proc - proc) / span / cores()
            wall, cpu, proc = now, now_cpu, now_proc
            try:
                self.tick(now, lag, busy, proc_busy)
            except Exception:  # a measurement bug must not stop the engine
                log.exception("capacity sampling failed")

    def tick(self, now: float, lag_s: float, busy: float, proc_busy: float | None = None) -> None:
        """One sample (also called directly by tests with made-up readings)."""
        gate, mt = self.admission, self.metrics
        gate.observe_loop(now, lag_s, busy)
        if proc_busy is not None:
            gate.observe_cpu(now, proc_busy)
        mt.loop_lag.observe(lag_s)
        mt.loop_busy.set(busy)
        for q in process_queues():
            s = q.sample()
            gate.observe_queue(q.name, now, s.max_wait_s, s.busy)
            mt.queue_depth.labels(q.name).set(s.depth)
            mt.queue_busy.labels(q.name).set(s.busy)
            for w in s.waits:
                mt.queue_wait.labels(q.name).observe(w)
        cap = gate.capacity(now)
        mt.capacity.set(-1 if cap is None else cap)
        mt.sessions.set(gate.sessions)


def cores() -> int:
    """Cores this process may count on: its CPU affinity (``taskset -c 0`` → 1),
    or one under ``--workers`` (the workers share the cores, one each by default)."""
    if multiprocess_mode():
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


class _TimedVadModel:
    """Wraps the VAD model of a :class:`~voco.audio.vad.BatchedVAD` to time each
    batched step and record its batch size (runs on the VAD thread;
    prometheus-client is thread-safe)."""

    def __init__(self, model: Any, metrics: EngineMetrics) -> None:
        self._model = model
        self._metrics = metrics

    def step(self, streams: Sequence[Any], frames: Sequence[Any]) -> Any:
        return self._timed(len(streams), self._model.step, streams, frames)

    def run(self, stream: Any, frames: Sequence[Any]) -> Any:
        """One stream's frames in one call (the gate's warm-up): one stream."""
        return self._timed(1, self._model.run, stream, frames)

    def _timed(self, streams: int, call: Any, *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return call(*args)
        finally:
            self._metrics.stage.labels("vad").observe(time.perf_counter() - t0)
            self._metrics.vad_batch.observe(streams)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def instrument_vad(vad: Any, metrics: EngineMetrics) -> bool:
    """Time the batched VAD's steps; ``False`` if its shape is not the known one."""
    model = getattr(vad, "_model", None)
    if model is None or not callable(getattr(model, "step", None)):
        log.warning("VAD metrics off: the batched VAD has no model with step()")
        return False
    if not isinstance(model, _TimedVadModel):
        vad._model = _TimedVadModel(model, metrics)
    return True
