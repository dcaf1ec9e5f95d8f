"""``/metrics``: the engine's Prometheus metrics (``prometheus-client``).

Why its own registry per app: tests run several engines in one process, and
each must count only its own sessions. With ``voco serve --workers N`` the
supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` before any worker starts, so every
worker writes its values to files there and whichever worker answers a scrape
aggregates all of them (prometheus-client's multiprocess mode): one scrape of
the shared port sees the whole engine, not a random worker. Gauges aggregate as
documented per metric (sessions and capacity are summed over live workers; loop
lag and busy fraction take the worst worker).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# seconds: 5 ms … 10 s, dense where the latency budgets are (≤ 0.6 s first audio)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.5, 2.5, 5, 10)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.016, 0.025, 0.032, 0.05, 0.1, 0.25, 0.5, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

# metrics message field → stage label (docs/protocol.md §7)
STAGES = {
    "stt_ms": "stt",
    "llm_ttft_ms": "llm_ttft",
    "tts_ttfb_ms": "tts_ttfb",
    "first_audio_ms": "first_audio",
    "e2e_ms": "e2e",
}


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class EngineMetrics:
    """The metric families of one engine process; updated by the server, the
    capacity sampler and each finished turn."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.sessions = Gauge(
            "voco_sessions", "Sessions admitted and open", registry=r, multiprocess_mode="livesum"
        )
        self.capacity = Gauge(
            "voco_capacity_sessions",
            "Sessions this engine can hold by measured headroom (-1: not bounded yet)",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.admitted = Counter("voco_admissions", "Sessions admitted", registry=r)
        self.refused = Counter(
            "voco_admissions_refused",
            "session.start refused with 4503 at_capacity, by reason",
            ["reason"],
            registry=r,
        )
        self.loop_lag = Histogram(
            "voco_event_loop_lag_seconds",
            "How late the capacity ticker fired (event-loop lag)",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.loop_busy = Gauge(
            "voco_event_loop_busy_ratio",
            "Event-loop thread CPU time over wall time, last tick",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.queue_depth = Gauge(
            "voco_inference_queue_depth",
            "Embedded model jobs waiting",
            ["queue"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.queue_busy = Gauge(
            "voco_inference_queue_busy_ratio",
            "Fraction of wall time the embedded model's thread worked, last tick",
            ["queue"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.queue_wait = Histogram(
            "voco_inference_queue_wait_seconds",
            "Time a job waited for the embedded model",
            ["queue"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "voco_stage_latency_seconds",
            "Per-turn latency by stage (vad step, stt, llm_ttft, tts_ttfb, first_audio, e2e)",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.vad_batch = Histogram(
            "voco_vad_batch_size",
            "Mean streams per batched VAD step, per ticker interval",
            buckets=BATCH_BUCKETS,
            registry=r,
        )

    def observe_turn(self, fields: Mapping[str, int]) -> None:
        """One answered turn's ``metrics`` fields (milliseconds) into histograms."""
        for key, stage in STAGES.items():
            if (ms := fields.get(key)) is not None:
                self.stage.labels(stage).observe(ms / 1000)

    def exposition(self) -> tuple[bytes, str]:
        """The scrape body and its content type (all workers in multiprocess mode)."""
        if multiprocess_mode():
            registry = CollectorRegistry()
            collect: Any = multiprocess.MultiProcessCollector  # untyped in the library
            collect(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    """The supervisor's call when a worker dies: drop its live gauges."""
    if multiprocess_mode():
        mark_dead: Any = multiprocess.mark_process_dead  # untyped in the library
        mark_dead(pid)
