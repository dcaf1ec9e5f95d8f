"""Silero VAD on onnxruntime, batched across streams.

Why batched: every active session produces one 32 ms frame per tick. Running the
model once per session costs a Python→ORT round trip each; running it once per
tick over a (B, 576) batch serves hundreds of sessions per core. The model is
stateful (LSTM state (2, B, 128) plus a 64-sample context per stream), so each
stream keeps its own slice, and batching gives bit-identical results to running
the streams one by one (tested).

Why the frames stay PCM16 ``bytes`` until the step: the int16 → float32 scaling
is written straight into the batch array (one NumPy call, no per-frame float
copy), and each stream's state and context are updated in place.

Why not ``import silero_vad``: the package imports torch. We only need its
bundled ONNX file, located with :func:`importlib.util.find_spec`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from voco.audio.gate import GateConfig
from voco.audio.pcm import FRAME_SAMPLES, SAMPLE_RATE

log = logging.getLogger("voco.vad")

CONTEXT_SAMPLES = 64
STATE_SHAPE = (2, 128)
_PCM_SCALE = np.float32(1.0 / 32768.0)  # exact (a power of two): same as dividing

F32 = npt.NDArray[np.float32]
Frame = F32 | bytes  # float samples in [-1, 1), or PCM16 little-endian


def bundled_model_path(name: str = "silero_vad.onnx") -> Path:
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or spec.origin is None:
        raise RuntimeError("the 'silero-vad' package is not installed (it ships the VAD model)")
    path = Path(spec.origin).parent / "data" / name
    if not path.is_file():
        raise RuntimeError(f"{name} not found at {path}")
    return path


SEQUENCE_MODEL = "silero_vad_16k_sequence.onnx"
"""The same weights exported for one stream over a sequence of frames (input
``(T, 576)``, state as ``h``/``c``): bit-identical probabilities and state to
``T`` single steps (tested), in one call."""


class VadStream:
    """Per-stream recurrent state: 64 samples of context and the LSTM state."""

    __slots__ = ("context", "state")

    def __init__(self) -> None:
        self.context: F32 = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self.state: F32 = np.zeros(STATE_SHAPE, dtype=np.float32)

    def reset(self) -> None:
        self.context[:] = 0.0
        self.state[:] = 0.0


class SileroVAD:
    """The ONNX model plus a synchronous batched step.

    One instance is shared by every session of a process; it holds no per-stream
    state itself.
    """

    def __init__(self, model_path: Path | None = None, *, threads: int = 1) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3

        def load(path: Path) -> ort.InferenceSession:
            return ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )

        self._session = load(model_path or bundled_model_path())
        # the sequence export exists only for the bundled weights: a model of
        # one's own runs its sequences as single steps
        self._sequence = None if model_path else load(bundled_model_path(SEQUENCE_MODEL))
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def step(self, streams: Sequence[VadStream], frames: Sequence[Frame]) -> F32:
        """Run one 512-sample frame for each stream in a single model call.

        A frame is float samples or PCM16 bytes (scaled into the batch here).
        Returns the speech probability per stream and advances each stream's
        state and context in place.
        """
        n = len(streams)
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        x = np.empty((n, CONTEXT_SAMPLES + FRAME_SAMPLES), dtype=np.float32)
        state = np.empty((2, n, 128), dtype=np.float32)
        for i, (s, f) in enumerate(zip(streams, frames, strict=True)):
            _put(x[i, CONTEXT_SAMPLES:], f)
            x[i, :CONTEXT_SAMPLES] = s.context
            state[:, i, :] = s.state
        out, new_state = self._session.run(None, {"input": x, "state": state, "sr": self._sr})
        for i, s in enumerate(streams):
            s.state[...] = new_state[:, i, :]
            s.context[...] = x[i, -CONTEXT_SAMPLES:]
        return np.asarray(out, dtype=np.float32).reshape(n)

    def run(self, stream: VadStream, frames: Sequence[Frame]) -> F32:
        """Run ``frames`` of one stream in order; the probability of each.

        The same as one :meth:`step` per frame, in one model call: a gate
        opening warms a stream with the frames it skipped, and four
        batch-of-one steps cost ~2.5× one sequence call (~500 vs ~200 µs)."""
        if self._sequence is None or len(frames) < 2:
            return np.array([self.step([stream], [f])[0] for f in frames], dtype=np.float32)
        t = len(frames)
        x = np.empty((t, CONTEXT_SAMPLES + FRAME_SAMPLES), dtype=np.float32)
        for i, f in enumerate(frames):
            _put(x[i, CONTEXT_SAMPLES:], f)
        x[0, :CONTEXT_SAMPLES] = stream.context
        # each frame's context is the tail of the one before it
        x[1:, :CONTEXT_SAMPLES] = x[:-1, -CONTEXT_SAMPLES:]
        h, c = stream.state[0].reshape(1, 1, 128), stream.state[1].reshape(1, 1, 128)
        probs, hn, cn = self._sequence.run(None, {"input": x, "h": h, "c": c})
        stream.state[0] = hn.reshape(128)
        stream.state[1] = cn.reshape(128)
        stream.context[...] = x[-1, -CONTEXT_SAMPLES:]
        return np.asarray(probs, dtype=np.float32).reshape(t)


def _put(row: F32, f: Frame) -> None:
    """One frame into its row of a model input: PCM16 scaled in place, floats
    copied; a frame of any other size is refused."""
    if isinstance(f, bytes):
        if len(f) != 2 * FRAME_SAMPLES:
            raise ValueError(f"VAD frame must have {2 * FRAME_SAMPLES} bytes, got {len(f)}")
        np.multiply(np.frombuffer(f, dtype="<i2"), _PCM_SCALE, out=row)
    elif f.shape != (FRAME_SAMPLES,):
        raise ValueError(f"VAD frame must have {FRAME_SAMPLES} samples, got {f.shape}")
    else:
        row[:] = f


Scored = Callable[[float, BaseException | None], None]
"""Called once per submitted frame: its probability, or the model's failure."""
_Item = tuple[VadStream, Frame, Scored]
INLINE_MAX = 64  # a step this small runs on the loop: cheaper than the thread hop
WINDOW_S = 0.008  # under load, steps at most this often (bigger batches, ≤ 8 ms wait)


class BatchedVAD:
    """Async front end: coalesces frames from all sessions into batched steps.

    A frame submitted while no step is running is processed at the next turn
    of the loop (no added latency at low load); frames that arrive while a step
    runs, or within ``window_s`` of the previous step's start, are gathered into
    the next one, so under load there are a few model calls per 32 ms tick for
    every active stream, not one per socket read. A small step (≤
    ``inline_max`` frames) runs on the loop itself: the thread hop (submit,
    wake-up, future chaining) costs more than the model call. A bigger one runs
    on one dedicated thread (the model releases the GIL) so the event loop
    keeps reading sockets meanwhile.

    Why :meth:`submit` takes a callback rather than returning a future: at
    hundreds of sessions, a future per frame and the wake-up of the task
    awaiting it were a large part of the engine's per-frame cost (issue 11
    §1). The listener runs its per-frame work synchronously in the callback;
    :meth:`probability` (a future) stays for callers that want to await.

    ``gate``: the energy gate its callers put in front of it
    (:mod:`voco.audio.gate`); ``None`` scores every frame.
    """

    gate: GateConfig | None = None

    def __init__(
        self,
        model: SileroVAD,
        *,
        gate: GateConfig | None = GateConfig(),  # noqa: B008 - frozen, shared safely
        max_batch: int = 1024,
        inline_max: int = INLINE_MAX,
        window_s: float = WINDOW_S,
    ) -> None:
        self._model = model
        self.gate = gate
        self._max_batch = max_batch
        self._inline_max = inline_max
        self._window_s = window_s
        self._last_step = -1e9
        self._pending: list[_Item] = []
        self._runner: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vad")
        self.steps = 0
        self.frames = 0

    def submit(self, stream: VadStream, frame: Frame, scored: Scored) -> None:
        """Queue ``frame`` of ``stream`` for the next batched step; ``scored``
        is called from the step (on the event loop) with its probability.
        Frames of one stream are scored in the order submitted."""
        self._pending.append((stream, frame, scored))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._drain())

    async def probability(self, stream: VadStream, frame: Frame) -> float:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()

        def scored(p: float, exc: BaseException | None) -> None:
            if fut.done():
                return
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(p)

        self.submit(stream, frame, scored)
        return await fut

    def warm(self, stream: VadStream, frames: Sequence[Frame]) -> None:
        """Advance ``stream`` through ``frames`` now, scores discarded: the
        frames the gate skipped just before it opened, so the frame that opened
        it is scored in context. Synchronous, on the caller's thread: the
        stream has no frame in flight (its listener scores one frame at a
        time), and a gate opens rarely (an onset, a noise), so one sequence
        call costs less than a trip through the queue would add to the onset."""
        if frames:
            self._model.run(stream, frames)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            wait = self._last_step + self._window_s - loop.time()
            if wait > 0 and len(self._pending) < self._max_batch:
                await asyncio.sleep(wait)
            self._last_step = loop.time()
            batch, self._pending = (
                self._pending[: self._max_batch],
                self._pending[self._max_batch :],
            )
            # A stream may appear twice if its session outran the model; its
            # frames must then run in order, in separate steps.
            seen: set[int] = set()
            now: list[_Item] = []
            later: list[_Item] = []
            for item in batch:
                (later if id(item[0]) in seen else now).append(item)
                seen.add(id(item[0]))
            self._pending = later + self._pending
            streams, frames = [s for s, _, _ in now], [f for _, f, _ in now]
            try:
                if len(now) <= self._inline_max:
                    out = self._model.step(streams, frames)
                else:
                    out = await loop.run_in_executor(
                        self._executor, self._model.step, streams, frames
                    )
            except Exception as exc:  # model failure: every waiter learns of it
                for _, _, scored in now:
                    _deliver(scored, 0.0, exc)
                continue
            self.steps += 1
            self.frames += len(now)
            # Python floats in one call (a fake model may hand back a list)
            probs: list[float] = out.tolist() if isinstance(out, np.ndarray) else list(out)
            for (_, _, scored), p in zip(now, probs, strict=True):
                _deliver(scored, p, None)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _deliver(scored: Scored, p: float, exc: BaseException | None) -> None:
    """One caller's bug must not cost the other streams of the batch their scores."""
    try:
        scored(p, exc)
    except Exception:
        log.exception("a VAD result callback failed")
