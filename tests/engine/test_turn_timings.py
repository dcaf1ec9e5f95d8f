"""One response's stage durations, derived once (``metrics``, ``/metrics``,
the turn record and the turn's span all read these)."""

from __future__ import annotations

from voco.engine.turn_timings import TurnTimings


def test_a_spoken_turn_reaching_audio_has_every_stage() -> None:
    t = TurnTimings(
        started_at=10.0,
        speech_end_at=9.5,
        stt_ms=300,
        first_delta_at=10.25,
        first_clause_at=10.5,
        first_audio_at=10.75,
    )
    assert t.wire_fields() == {
        "stt_ms": 300,
        "llm_ttft_ms": 250,
        "tts_ttfb_ms": 250,
        "e2e_ms": 1250,
        "engine_overhead_ms": 450,  # 1250 − (300 + 250 + 250)
    }
    assert t.observed() == {**t.wire_fields(), "first_audio_ms": 750}


def test_a_turn_cut_while_thinking_reports_only_what_it_reached() -> None:
    t = TurnTimings(started_at=10.0, speech_end_at=9.5, stt_ms=120)
    assert t.wire_fields() == {"stt_ms": 120}
    assert t.llm_ttft_ms is None and t.first_audio_ms is None and t.e2e_ms is None


def test_end_to_end_needs_a_tts_first_byte() -> None:
    # audio without a clause reading (an engine sentence) has first audio, no e2e
    t = TurnTimings(started_at=10.0, speech_end_at=9.0, first_audio_at=10.5)
    assert t.wire_fields() == {}
    assert t.observed() == {"first_audio_ms": 500}


def test_overhead_never_goes_negative() -> None:
    t = TurnTimings(
        started_at=10.0,
        speech_end_at=10.0,
        stt_ms=900,  # measured by the listener, can exceed the readings' span
        first_delta_at=10.1,
        first_clause_at=10.2,
        first_audio_at=10.3,
    )
    assert t.wire_fields()["engine_overhead_ms"] == 0
