import itertools

import pytest

from voco.audio.turns import SpeechEnded, SpeechPaused, SpeechStarted, TurnConfig, TurnDetector


def run(probs, cfg=None):
    d = TurnDetector(cfg or TurnConfig())
    return [(i, ev) for i, p in enumerate(probs) if (ev := d.push(p)) is not None]


def test_two_consecutive_frames_confirm_speech_at_end_of_second():
    events = run([0.1, 0.9, 0.9, 0.9])
    assert events == [(2, SpeechStarted(onset_ms=32, confirmed_ms=96, onset_frame=1))]


def test_single_frame_blip_is_not_speech():
    assert run([0.1, 0.9, 0.1, 0.9, 0.2, 0.95, 0.1]) == []


def test_threshold_is_inclusive():
    assert run([0.5, 0.5])[0][1].confirmed_ms == 64


def test_end_after_silence_with_hysteresis():
    cfg = TurnConfig(end_silence_ms=96)  # 3 frames
    probs = [0.9, 0.9, 0.4, 0.4, 0.2, 0.2, 0.2, 0.9]
    events = run(probs, cfg)
    # 0.4 is above neg_threshold (0.35): still speech; silence starts at frame 4
    assert events[1] == (6, SpeechEnded(end_ms=128, decided_ms=224))
    assert len(events) == 2  # frame 7 alone does not restart


def test_speech_restarts_after_end():
    cfg = TurnConfig(end_silence_ms=64)
    events = run([0.9, 0.9, 0.0, 0.0, 0.9, 0.9], cfg)
    kinds = [type(e).__name__ for _, e in events]
    assert kinds == ["SpeechStarted", "SpeechEnded", "SpeechStarted"]
    assert events[2][1].onset_ms == 4 * 32


def test_custom_start_frames():
    events = run([0.9, 0.9, 0.9], TurnConfig(start_frames=3))
    assert events == [(2, SpeechStarted(0, 96, 0))]


@pytest.mark.parametrize(
    "kw", [{"threshold": 0.3, "neg_threshold": 0.5}, {"start_frames": 0}, {"end_silence_ms": 10}]
)
def test_bad_config_rejected(kw):
    with pytest.raises(ValueError):
        TurnConfig(**kw)


def test_pause_then_resume_then_end():
    from voco.audio.turns import SpeechPaused, SpeechResumed

    cfg = TurnConfig(end_silence_ms=160, pause_ms=64)  # 5 and 2 frames
    probs = [0.9, 0.9, 0.1, 0.1, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1]
    events = [e for _, e in run(probs, cfg)]
    assert events == [
        SpeechStarted(0, 64, 0),
        SpeechPaused(end_ms=64),
        SpeechResumed(t_ms=128),
        SpeechPaused(end_ms=160),
        SpeechEnded(end_ms=160, decided_ms=320),
    ]


def test_end_after_shortens_or_lengthens_the_current_pause() -> None:
    d = TurnDetector(TurnConfig(end_silence_ms=320, pause_ms=64))
    for _ in range(3):
        d.push(0.9)
    assert d.push(0.0) is None
    assert isinstance(d.push(0.0), SpeechPaused)  # 64 ms of silence
    assert d.end_after(1000) is None  # patient: 320 ms no longer ends it
    for _ in range(20):
        assert d.push(0.0) is None
    ev = d.end_after(160)  # already 22 silent frames: ends at the last one pushed
    assert isinstance(ev, SpeechEnded)
    assert ev.end_ms == 3 * 32 and ev.decided_ms == 25 * 32
    assert not d.in_speech and d.end_after(160) is None


def test_end_after_is_reset_when_speech_comes_back() -> None:
    d = TurnDetector(TurnConfig(end_silence_ms=96, pause_ms=64))
    d.push(0.9), d.push(0.9)
    d.push(0.0), d.push(0.0)
    d.end_after(1000)
    d.push(0.0)
    assert d.push(0.9) is not None  # resumed
    events = [d.push(0.0) for _ in range(3)]
    assert isinstance(events[-1], SpeechEnded)  # back to the configured 96 ms


def _pauses(d: TurnDetector, probs: list[float]) -> list[tuple[int, object]]:
    """(frame index, event) of every pause, resume and end ``probs`` cause."""
    out = []
    for i, p in enumerate(probs):
        ev = d.push(p)
        if ev is not None and not isinstance(ev, SpeechStarted):
            out.append((i, ev))
    return out


def test_early_pause_at_the_first_silent_frame_after_enough_speech() -> None:
    from voco.audio.turns import SpeechPaused

    d = TurnDetector(TurnConfig(pause_ms=128, early_pause_ms=32, early_min_speech_ms=320))
    events = _pauses(d, [0.9] * 12 + [0.0] * 3)  # 384 ms of speech, then silence
    assert events == [(12, SpeechPaused(end_ms=384))]  # the very first silent frame


def test_short_speech_waits_the_full_pause() -> None:
    from voco.audio.turns import SpeechPaused

    d = TurnDetector(TurnConfig(pause_ms=128, early_pause_ms=32, early_min_speech_ms=320))
    events = _pauses(d, [0.9] * 4 + [0.0] * 5)  # 128 ms of speech: too little for early
    assert events == [(7, SpeechPaused(end_ms=128))]  # after 4 silent frames, as before


def test_a_flickering_pause_does_not_fire_per_frame() -> None:
    """Dip, one voiced frame, dip, ...: an early pause needs 320 ms of stream
    since the previous one, so 40 dips in 2.5 s give at most one per 320 ms."""
    from voco.audio.turns import SpeechPaused

    d = TurnDetector(
        TurnConfig(end_silence_ms=1000, pause_ms=128, early_pause_ms=32, early_min_speech_ms=320)
    )
    probs = [0.9] * 12 + [0.0, 0.9] * 40
    paused = [i for i, e in _pauses(d, probs) if isinstance(e, SpeechPaused)]
    assert paused[0] == 12
    assert len(paused) <= 1 + (80 * 32) // 320
    assert all(b - a >= 10 for a, b in itertools.pairwise(paused))


def test_new_speech_after_a_pause_earns_another_early_pause() -> None:
    from voco.audio.turns import SpeechPaused

    d = TurnDetector(
        TurnConfig(end_silence_ms=1000, pause_ms=128, early_pause_ms=32, early_min_speech_ms=320)
    )
    probs = [0.9] * 12 + [0.0] * 2 + [0.9] * 10 + [0.0]
    paused = [(i, e) for i, e in _pauses(d, probs) if isinstance(e, SpeechPaused)]
    assert paused == [(12, SpeechPaused(end_ms=384)), (24, SpeechPaused(end_ms=24 * 32))]


def test_early_pause_config_is_checked() -> None:
    with pytest.raises(ValueError):
        TurnConfig(pause_ms=64, early_pause_ms=96)
