"""The admission decision, with an injected clock and hand-made measurements."""

from __future__ import annotations

import pytest

from voco.engine.admission import Admission, AdmissionConfig


def gate(**cfg: object) -> Admission:
    cfg.setdefault("measured_floor", 0)  # most cases test the measurement itself
    cfg.setdefault("settle_s", 0.0)  # … of settled sessions (the ramp rule has its own tests)
    return Admission(AdmissionConfig(**cfg))  # type: ignore[arg-type]


def with_sessions(g: Admission, n: int) -> Admission:
    for _ in range(n):
        g.admitted()
    return g


def test_admits_while_nothing_is_measured_and_nothing_is_capped() -> None:
    g = gate()
    assert g.decide(0.0).admit
    assert g.capacity(0.0) is None


def test_max_sessions_refuses_with_a_retry_after_then_admits_after_a_release() -> None:
    g = with_sessions(gate(max_sessions=2), 2)
    d = g.decide(0.0)
    assert not d.admit and d.reason == "max_sessions"
    assert d.retry_after_ms == 5000 and "capacity" in d.message
    assert g.capacity(0.0) == 2
    g.released()
    assert g.decide(0.0).admit


def test_draining_refuses_everything_with_a_short_retry() -> None:
    g = gate()
    g.begin_drain()
    d = g.decide(0.0)
    assert (d.admit, d.reason, d.retry_after_ms) == (False, "draining", 1000)
    assert not g.ready(0.0)


def test_sustained_loop_lag_refuses_and_is_forgotten_after_the_window() -> None:
    g = gate(max_loop_lag_s=0.025, loop_window_s=5.0)
    for i in range(20):
        g.observe_loop(i * 0.1, lag_s=0.040, busy=0.2)
    d = g.decide(2.0)
    assert not d.admit and d.reason == "loop_lag" and "40 ms" in d.message
    assert g.decide(7.5).admit  # every sample is older than the window now


def test_one_pause_among_many_ticks_is_not_overload() -> None:
    g = gate(max_loop_lag_s=0.025)
    for i in range(50):
        g.observe_loop(i * 0.1, lag_s=0.001, busy=0.1)
    g.observe_loop(5.0, lag_s=0.300, busy=0.1)  # a GC pause
    assert g.decide(5.0).admit


def test_busy_loop_projection_refuses_the_session_that_would_pass_the_ceiling() -> None:
    # 4 sessions keep the loop 60 % busy: 15 % each; a 5th would make 75 % > 70 %
    g = with_sessions(gate(max_loop_busy=0.70), 4)
    for i in range(10):
        g.observe_loop(i * 0.1, lag_s=0.001, busy=0.60)
    d = g.decide(1.0)
    assert not d.admit and d.reason == "loop_busy"
    assert g.capacity(1.0) == 4
    g.released()  # 3 sessions measured at the same per-session cost: a 4th fits
    for i in range(10, 60):
        g.observe_loop(i * 0.1, lag_s=0.001, busy=0.45)
    assert g.decide(6.0).admit


def test_the_idle_baseline_is_not_charged_to_sessions() -> None:
    g = gate(max_loop_busy=0.70)
    for i in range(20):
        g.observe_loop(i * 0.1, lag_s=0.0, busy=0.10)  # no session: ticker, timers …
    with_sessions(g, 4)
    for i in range(20, 70):
        g.observe_loop(i * 0.1, lag_s=0.0, busy=0.50)  # 10 % each on top of the 10 %
    assert g.capacity(7.0) == 6
    assert g.decide(7.0).admit


def test_fewer_sessions_than_the_projection_minimum_are_not_projected() -> None:
    g = with_sessions(gate(min_sessions_to_project=2), 1)
    g.observe_loop(0.0, lag_s=0.0, busy=0.65)  # one session, noisy
    assert g.decide(0.0).admit


def test_inference_queue_wait_refuses_naming_the_queue() -> None:
    g = with_sessions(gate(max_queue_wait_s=0.3, queue_floor=2), 2)
    g.observe_queue("stt", 0.0, wait_s=0.9, busy=0.5)
    d = g.decide(0.0)
    assert not d.admit and d.reason == "queue_wait" and "stt queue" in d.message
    assert g.decide(31.0).admit  # the queue window (30 s) has passed


def test_inference_busy_projection_uses_the_longer_queue_window() -> None:
    g = with_sessions(gate(max_queue_busy=0.8), 8)
    for i in range(20):  # one sample a second: 80 % busy with 8 sessions → 10 % each
        g.observe_queue("tts", float(i), wait_s=0.05, busy=0.8)
    d = g.decide(20.0)
    assert not d.admit and d.reason == "queue_busy"
    assert g.capacity(20.0) == 8


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="max sessions"):
        AdmissionConfig(max_sessions=0)
    with pytest.raises(ValueError, match="max loop busy"):
        AdmissionConfig(max_loop_busy=1.5)


def test_below_the_floor_measurement_never_refuses() -> None:
    g = with_sessions(gate(measured_floor=3), 2)
    for i in range(20):
        g.observe_loop(i * 0.1, lag_s=0.200, busy=0.9)  # a loaded, shared machine
    assert g.decide(2.0).admit
    g.admitted()
    assert g.decide(2.0).reason == "loop_lag"


def test_admission_off_ignores_measurement_but_keeps_the_cap_and_the_drain() -> None:
    g = with_sessions(gate(measured=False, max_sessions=3, max_loop_lag_s=0.025), 2)
    for i in range(20):
        g.observe_loop(i * 0.1, lag_s=0.500, busy=0.99)
    assert g.decide(2.0).admit  # a lagging loop does not refuse
    assert g.capacity(2.0) == 3  # only the configured cap bounds it
    g.admitted()
    assert g.decide(2.0).reason == "max_sessions"
    g.released()
    g.begin_drain()
    assert g.decide(2.0).reason == "draining"


def test_the_loop_and_the_models_together_cannot_pass_the_process_cpu_ceiling() -> None:
    # 8 sessions: the loop 40 % busy and the STT queue 50 % — each under its own
    # ceiling — but on one core the process used 90 % of it: 11.25 % per session,
    # so the 9th would project 101 %, over the 85 % ceiling
    g = with_sessions(gate(max_cpu_busy=0.85), 8)
    for i in range(20):
        g.observe_loop(i * 0.1, lag_s=0.001, busy=0.40)
        g.observe_queue("stt", i * 0.1, wait_s=0.05, busy=0.50)
        g.observe_cpu(i * 0.1, busy=0.90)
    d = g.decide(2.0)
    assert not d.admit and d.reason == "cpu_busy" and "CPU" in d.message
    assert g.capacity(2.0) == 7
    g.released()
    g.released()  # 6 sessions at the same cost: 67.5 % projected for a 7th
    assert g.decide(2.0).admit


def test_the_process_cpu_has_no_lag_of_its_own() -> None:
    g = with_sessions(gate(max_queue_wait_s=0.001), 2)
    g.observe_cpu(0.0, busy=0.0)  # never refuses as a "queue wait"
    assert g.decide(0.0).admit


# ------------------------------------------------------------------ settling


def test_a_ramp_is_refused_while_the_new_sessions_have_not_shown_their_cost() -> None:
    # 8 settled sessions cost little so far; 3 admitted in the last 10 s have not
    # spoken yet (one utterance per ~8 s): the loop reads as if there were room
    # for many more, but 50 % growth per settle period is all it may take on trust
    g = gate(settle_s=10.0, settle_burst=4, settle_growth=0.5)
    for _ in range(8):
        g.admitted(now=0.0)
    for i in range(3):
        g.admitted(now=20.0 + i)
    for i in range(200, 240):
        g.observe_loop(i * 0.1, lag_s=0.001, busy=0.10)
    assert g.decide(24.0).admit  # 3 unsettled < max(4, 0.5 × 8)
    g.admitted(now=24.0)
    d = g.decide(24.5)
    assert not d.admit and d.reason == "settling" and "settling" in d.message
    # retry once the oldest new one (admitted at 20 s) has settled, at 30 s
    assert d.retry_after_ms == 5500
    assert (g.capacity(24.5) or 0) > 13  # settling is a rate, not a capacity
    # … so readiness stays up: a balancer keeps sending the reconnects of a
    # drained engine here instead of finding no engine at all (HTTP 503)
    assert g.ready(24.5) and g.decide(24.5, rate=False).admit
    assert g.decide(30.0).admit  # the one from 20 s is settled now


def test_settling_waits_at_least_one_sample_and_a_burst_is_always_allowed() -> None:
    g = gate(settle_s=10.0, settle_burst=4, settle_growth=0.5)
    for _ in range(3):
        g.admitted(now=0.0)  # nothing settled: the burst alone
    assert g.decide(0.0).admit
    g.admitted(now=0.0)
    d = g.decide(0.1)
    assert (d.admit, d.reason, d.retry_after_ms) == (False, "settling", 9900)


def test_an_admission_without_a_time_takes_the_last_decision_s() -> None:
    # the server calls decide(now) then admitted(): the admission is stamped then
    g = gate(settle_s=10.0, settle_burst=1, settle_growth=0.0)
    assert g.decide(5.0).admit
    g.admitted()
    assert g.decide(14.9).reason == "settling"
    assert g.decide(15.0).admit


def test_sessions_leaving_never_leave_more_unsettled_than_sessions() -> None:
    g = gate(settle_s=10.0, settle_burst=2, settle_growth=0.0)
    g.admitted(now=0.0)
    g.admitted(now=0.0)
    assert g.decide(1.0).reason == "settling"
    g.released()
    g.released()
    assert g.decide(1.0).admit


def test_below_the_floor_and_with_admission_off_nothing_settles() -> None:
    g = gate(settle_s=10.0, settle_burst=1, settle_growth=0.0, measured_floor=3)
    for _ in range(2):
        g.admitted(now=0.0)
    assert g.decide(0.0).admit
    g.admitted(now=0.0)
    assert g.decide(0.0).reason == "settling"
    off = gate(settle_s=10.0, settle_burst=1, settle_growth=0.0, measured=False)
    for _ in range(5):
        off.admitted(now=0.0)
    assert off.decide(0.0).admit


def test_bad_settling_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="settle"):
        AdmissionConfig(settle_s=-1.0)
    with pytest.raises(ValueError, match="settle"):
        AdmissionConfig(settle_burst=0)


def test_a_saturated_model_refuses_below_the_floor_that_shields_the_loop() -> None:
    # the embedded stack on one core: 3 sessions already keep Whisper's queue
    # waiting ~2 s (measured on this machine: 8 sessions, both queues 100 % busy)
    # while the loop idles — the floor (for a shared machine's lag) must not hide it
    g = with_sessions(gate(measured_floor=8, queue_floor=2), 3)
    for i in range(20):
        g.observe_loop(i * 0.1, lag_s=0.200, busy=0.05)  # others' load: shielded
        g.observe_queue("stt", i * 0.1, wait_s=1.7, busy=1.0)
    d = g.decide(2.0)
    assert not d.admit and d.reason == "queue_wait" and "stt queue" in d.message
    one = with_sessions(gate(measured_floor=8, queue_floor=2), 1)
    one.observe_queue("stt", 0.0, wait_s=1.7, busy=1.0)
    assert one.decide(0.0).admit  # one session alone is always admitted


def test_the_queue_floor_is_validated() -> None:
    with pytest.raises(ValueError, match="queue floor"):
        AdmissionConfig(queue_floor=0)
