"""The VAD's timing hook (engine/capacity.py): every model call is counted in
``/metrics``, the batched steps and the gate's one-stream warm-ups alike."""

from __future__ import annotations

from voco.audio.pcm import FRAME_SAMPLES
from voco.audio.vad import BatchedVAD, VadStream
from voco.engine.capacity import instrument_vad
from voco.engine.metrics import EngineMetrics


def _count(metrics: EngineMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    value = metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


def test_steps_and_warm_ups_are_timed_and_sized(silero) -> None:
    metrics = EngineMetrics()
    vad = BatchedVAD(silero)
    assert instrument_vad(vad, metrics)
    frame = bytes(2 * FRAME_SAMPLES)
    streams = [VadStream(), VadStream(), VadStream()]
    vad._model.step(streams, [frame] * 3)  # one batched step of three streams
    vad.warm(streams[0], [frame] * 4)  # one sequence call for one stream
    stage = {"stage": "vad"}
    assert _count(metrics, "voco_stage_latency_seconds_count", stage) == 2
    assert _count(metrics, "voco_vad_batch_size_count") == 2
    assert _count(metrics, "voco_vad_batch_size_sum") == 3 + 1
