"""Admission control: refuse the next session before it would break the others.

Why a separate, pure module: the decision is arithmetic over measurements
(event-loop lag and busy fraction sampled by a ticker, inference queue wait and
busy fraction, the admitted count), and it must be testable with an injected
clock and hand-made samples, without a server or a loaded machine. The asyncio
side (:mod:`voco.engine.capacity`) only samples and calls in.

The model: each resource r (the event loop, each inference queue) has a busy
fraction ``busy_r`` over a sliding window, measured while ``n`` sessions were
admitted. Its per-session cost is ``(busy_r - idle_r) / n``; admitting one more
session projects ``idle_r + cost_r * (n + 1)``. A session is admitted only if
that projection stays under the resource's ceiling (below 1.0, i.e. with
headroom, so the admitted sessions stay real time) **and** the observed lag or
queue wait is already within bounds (the machine may be shared: a loop that
gets less CPU than it asks for shows as lag, not as busy time). The same
numbers give the capacity estimate published in ``/metrics`` and readiness.

One more resource is the process itself (``cpu``: CPU time of every thread
over wall time, per core it may run on). The loop and the embedded models'
threads share those cores: measured apart, each can look under its ceiling
while together they need more than the cores have (Whisper and Piper on the
core an engine is pinned to). It has no lag of its own; it only projects.

Below ``measured_floor`` sessions the loop and the process are never measured
against (their lag with so few is a neighbour's load or a model loading), but
the inference queues are, from ``queue_floor``: measured here, the embedded
stack on one core had both model threads 100 % busy and Whisper jobs waiting
~1.7 s at 8 sessions while the loop was 6 % busy.

Why a ramp is admitted gradually (``settle_s``): a new session shows its cost
only once it speaks — one utterance per several seconds, its reply after that —
so right after a burst of admissions the measurements still describe the load
*without* them, and projecting from them admits far too many (the bench's ramp
of 4 sessions a second was admitted to 44 sessions where ~16 keep ping p99 under
50 ms, then every session lagged by seconds). Sessions admitted less than
``settle_s`` ago are *unsettled*; at most ``max(settle_burst, settle_growth ×
settled)`` of them at a time (slow start: ~50 % growth per settle period); the
next is refused 4503 with ``retry_after`` = until the oldest one settles. It is a
rate, not a capacity: ``capacity()`` ignores it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

LOOP = "loop"
CPU = "cpu"  # the whole process: loop + VAD + embedded inference threads, per core


@dataclass(frozen=True)
class AdmissionConfig:
    """Ceilings. The defaults keep ping p99 well under 50 ms on the loop and an
    inference wait that still lets first audio land within ~0.6 s."""

    max_sessions: int | None = None  # --max-sessions: a hard cap on top of measurement
    measured: bool = True  # --admission off: only max_sessions and draining refuse
    max_loop_lag_s: float = 0.025  # high-quantile loop lag above which we refuse
    max_loop_busy: float = 0.70  # projected event-loop busy fraction ceiling
    max_queue_wait_s: float = 0.30  # high-quantile inference wait above which we refuse
    max_queue_busy: float = 0.80  # projected inference busy fraction ceiling
    max_cpu_busy: float = 0.85  # projected whole-process CPU per available core
    loop_window_s: float = 5.0  # loop samples older than this are forgotten
    queue_window_s: float = 30.0  # inference is bursty (one utterance per ~8 s)
    min_sessions_to_project: int = 2  # fewer: cost per session is too noisy to project
    # below this many sessions, measurement never refuses (lag with so few is
    # someone else's load on a shared machine, or a model loading, not ours)
    measured_floor: int = 8
    # … and an embedded model's queue from this many. It is this process's own
    # work, so measuring it earlier is tempting (the embedded stack on one core
    # saturated Whisper and Piper below 8 sessions), but from 2 sessions a host
    # loaded by anything else made /health/ready flap and HAProxy answer 503 with
    # no engine left (tests/deploy/test_haproxy.py on CI); until the queues'
    # wait is projected from their service time, it stays at the measured floor
    queue_floor: int = 8
    retry_after_s: float = 5.0  # what a refused client is told to wait
    drain_retry_after_s: float = 1.0  # draining: reconnect (elsewhere) soon
    lag_quantile: float = 0.95
    # the ramp: sessions younger than settle_s have not shown their cost yet
    settle_s: float = 10.0  # > one utterance cycle (~8 s) and its reply; 0: off
    settle_burst: int = 4  # unsettled sessions always allowed
    settle_growth: float = 0.5  # … or this fraction of the settled ones

    def __post_init__(self) -> None:
        if self.max_sessions is not None and self.max_sessions < 1:
            raise ValueError("max sessions must be at least 1")
        for name in ("max_loop_busy", "max_queue_busy", "max_cpu_busy"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name.replace('_', ' ')} must be in (0, 1]")
        if self.queue_floor < 1:
            raise ValueError("queue floor must be at least 1")
        if self.settle_s < 0 or self.settle_burst < 1 or self.settle_growth < 0:
            raise ValueError("settle time, burst and growth must be ≥ 0, ≥ 1 and ≥ 0")


@dataclass(frozen=True)
class Decision:
    """``admit`` or a refusal with its metric ``reason`` and what to tell the client."""

    admit: bool
    # draining | max_sessions | loop_lag | loop_busy | queue_wait | queue_busy | cpu_busy
    # | settling
    reason: str = ""
    message: str = ""
    retry_after_ms: int = 0


ADMIT = Decision(admit=True)


@dataclass
class _Sample:
    t: float
    sessions: int
    busy: float  # fraction of wall time this resource was busy since the last sample
    lag_s: float  # loop lag, or the inference queue's longest wait in the interval


@dataclass
class _Resource:
    window_s: float
    samples: deque[_Sample] = field(default_factory=deque)
    idle_busy: float = 0.0  # busy fraction with no session (the ticker's own cost …)
    _idle_seen: bool = False

    def add(self, s: _Sample) -> None:
        self.samples.append(s)
        if s.sessions == 0:  # learn the no-session baseline (EWMA from the first one)
            self.idle_busy = s.busy if not self._idle_seen else 0.8 * self.idle_busy + 0.2 * s.busy
            self._idle_seen = True

    def trim(self, now: float) -> None:
        while self.samples and self.samples[0].t < now - self.window_s:
            self.samples.popleft()

    def lag(self, q: float) -> float:
        if not self.samples:
            return 0.0
        lags = sorted(s.lag_s for s in self.samples)
        return lags[min(len(lags) - 1, math.floor(q * len(lags)))]

    def cost_per_session(self) -> float | None:
        """Busy fraction one session adds (a ratio estimator over the window:
        extra busy time over session-samples), or ``None`` with nothing measured."""
        weight = sum(s.sessions for s in self.samples)
        if weight == 0:
            return None
        extra = sum(max(0.0, s.busy - self.idle_busy) for s in self.samples if s.sessions)
        return extra / weight


class Admission:
    """Counts admitted sessions and decides on the next one. Clock-injected:
    every call takes ``now`` (monotonic seconds) instead of reading a clock."""

    def __init__(self, config: AdmissionConfig | None = None) -> None:
        self.config = config or AdmissionConfig()
        self.sessions = 0
        self.draining = False
        self._res: dict[str, _Resource] = {LOOP: _Resource(self.config.loop_window_s)}
        self._young: deque[float] = deque()  # admission times of unsettled sessions
        self._last_now = -math.inf  # the latest time seen (decide or a sample)

    # ------------------------------------------------------------ measurements

    def observe_loop(self, now: float, lag_s: float, busy: float) -> None:
        """One ticker sample: how late the tick fired, and the loop thread's
        CPU time over wall time since the previous tick."""
        self._observe(LOOP, now, lag_s, busy)

    def observe_queue(self, name: str, now: float, wait_s: float, busy: float) -> None:
        """One sample of an inference queue: its longest wait since the previous
        sample (including jobs still waiting) and its busy fraction."""
        self._observe(name, now, wait_s, busy)

    def observe_cpu(self, now: float, busy: float) -> None:
        """One sample of the whole process: CPU seconds of all its threads over
        wall seconds, divided by the cores it may run on."""
        self._observe(CPU, now, 0.0, busy)

    def _observe(self, name: str, now: float, lag_s: float, busy: float) -> None:
        # the process's CPU follows the inference bursts: the queues' longer window
        window = self.config.loop_window_s if name == LOOP else self.config.queue_window_s
        self._last_now = max(self._last_now, now)
        res = self._res.setdefault(name, _Resource(window))
        res.add(_Sample(now, self.sessions, min(1.0, max(0.0, busy)), max(0.0, lag_s)))
        res.trim(now)

    # ------------------------------------------------------------- sessions

    def admitted(self, now: float | None = None) -> None:
        """One more session; admitted at ``now``, or (the server's way: it
        calls :meth:`decide` just before) at the time of the last decision."""
        self.sessions += 1
        if self.config.settle_s > 0:
            self._young.append(self._last_now if now is None else now)

    def released(self) -> None:
        self.sessions = max(0, self.sessions - 1)
        while len(self._young) > self.sessions:  # which one left is unknown:
            self._young.popleft()  # keep the youngest (the cautious guess)

    def begin_drain(self) -> None:
        self.draining = True

    # ------------------------------------------------------------- decisions

    def decide(self, now: float, *, rate: bool = True) -> Decision:
        """May one more session start now? ``rate=False``: by capacity alone,
        not the ramp's settling (readiness: a burst of reconnects moving here
        from a drained engine must not take this one out of the balancer too)."""
        cfg = self.config
        self._last_now = max(self._last_now, now)
        if self.draining:
            return self._refuse(
                "draining", "this engine is shutting down; reconnect", cfg.drain_retry_after_s
            )
        if cfg.max_sessions is not None and self.sessions >= cfg.max_sessions:
            return self._refuse(
                "max_sessions",
                f"this engine is at capacity ({cfg.max_sessions} sessions); retry later",
            )
        if not cfg.measured:
            return ADMIT
        below_floor = self.sessions < cfg.measured_floor
        for name, res in self._res.items():
            res.trim(now)
            loop = name == LOOP
            if self.sessions < (cfg.measured_floor if name in (LOOP, CPU) else cfg.queue_floor):
                continue
            lag = res.lag(cfg.lag_quantile)
            limit = cfg.max_loop_lag_s if loop else cfg.max_queue_wait_s
            if name != CPU and lag > limit:
                what = "the event loop lags" if loop else f"the {name} queue waits"
                return self._refuse(
                    "loop_lag" if loop else "queue_wait",
                    f"this engine is at capacity ({what} {lag * 1000:.0f} ms); retry later",
                )
            if self.sessions + 1 > self._capacity_of(name, res) + 1e-9:
                what = {LOOP: "event loop", CPU: "its CPU"}.get(name, name)
                return self._refuse(
                    {LOOP: "loop_busy", CPU: "cpu_busy"}.get(name, "queue_busy"),
                    f"this engine is at capacity ({self.sessions} sessions, "
                    f"{what} near saturation); retry later",
                )
        return ADMIT if below_floor or not rate else self._settling(now)

    def _settling(self, now: float) -> Decision:
        cfg = self.config
        while self._young and self._young[0] <= now - cfg.settle_s:
            self._young.popleft()
        young = len(self._young)
        if not young or young < max(cfg.settle_burst, cfg.settle_growth * (self.sessions - young)):
            return ADMIT
        return self._refuse(
            "settling",
            f"this engine is at capacity for now ({young} new sessions still settling); "
            "retry later",
            self._young[0] + cfg.settle_s - now,
        )

    def capacity(self, now: float) -> int | None:
        """Sessions this process can hold by measurement (and ``--max-sessions``);
        ``None`` while nothing bounds it yet."""
        bounds = [self._capacity_of(n, r) for n, r in self._res.items() if self.config.measured]
        if self.config.max_sessions is not None:
            bounds.append(self.config.max_sessions)
        finite = [b for b in bounds if b != math.inf]
        return math.floor(min(finite) + 1e-9) if finite else None  # 7.999… is 8

    def ready(self, now: float) -> bool:
        """Readiness: a balancer should send new sessions here."""
        return self.decide(now, rate=False).admit

    def _capacity_of(self, name: str, res: _Resource) -> float:
        if self.sessions < self.config.min_sessions_to_project:
            return math.inf
        cost = res.cost_per_session()
        if not cost:
            return math.inf
        cfg = self.config
        ceiling = {LOOP: cfg.max_loop_busy, CPU: cfg.max_cpu_busy}.get(name, cfg.max_queue_busy)
        return max(0.0, ceiling - res.idle_busy) / cost

    def _refuse(self, reason: str, message: str, after_s: float | None = None) -> Decision:
        after = self.config.retry_after_s if after_s is None else after_s
        return Decision(False, reason, message, round(after * 1000))
