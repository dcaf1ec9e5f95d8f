"""Real-time audio uplink with injectable speech.

Sends one 32 ms frame per tick on a fixed schedule — speech when there is some
queued, silence otherwise — exactly like an open microphone. It remembers
when each frame left, so stream time (``t_ms``) in the engine's events maps
back to the client's clock: that is how barge-in and end-to-end latency are
measured at the client without trusting the server's clocks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable

import numpy as np
import numpy.typing as npt

from voco.audio.pcm import FRAME_MS
from voco.local.audio_source import SILENCE, Pacer, frames_of


class RealtimeStreamer:
    def __init__(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        self._send = send
        self._queue: deque[bytes] = deque()
        self.frames_sent = 0
        self._t0: float | None = None
        self._task: asyncio.Task[None] | None = None

    def say(self, pcm: npt.NDArray[np.int16]) -> int:
        """Queue speech; returns the stream time (ms) at which it will start."""
        start = (self.frames_sent + len(self._queue)) * FRAME_MS
        self._queue.extend(frames_of(pcm))
        return start

    @property
    def busy(self) -> bool:
        return bool(self._queue)

    @property
    def t_ms(self) -> int:
        return self.frames_sent * FRAME_MS

    def capture_time(self, t_ms: int) -> float:
        """When the sample at stream time ``t_ms`` was "captured", on the local clock.

        A real microphone delivers frame ``n`` once its 32 ms are recorded, so
        frame ``n`` (sent on schedule at ``t0 + n·32 ms``) holds audio captured
        during the 32 ms before. Using the schedule, not the actual send time,
        means any delay in sending counts against latency, as it would for a
        person.
        """
        if self._t0 is None:
            raise RuntimeError("streamer not started")
        return self._t0 + (t_ms - FRAME_MS) / 1000

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        pacer = Pacer()
        self._t0 = pacer.t0
        while True:
            frame = self._queue.popleft() if self._queue else SILENCE
            # count the frame before the await, so say() never sees it in neither place
            self.frames_sent += 1
            await self._send(frame)
            await pacer.tick()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
