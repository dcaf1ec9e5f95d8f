"""The energy gate in front of Silero: what it skips, and that turns stay where they were.

The fixture test runs real speech (espeak-ng and Piper) in digital silence and
in noise through the model twice, with and without the gate, and compares the
turn detector's onsets and ends.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

from tests.speech import espeak_speech, frames, piper_speech
from voco.audio.gate import SILENT_DB, EnergyGate, GateConfig, frame_db
from voco.audio.pcm import FRAME_MS, FRAME_SAMPLES
from voco.audio.turns import SpeechEnded, SpeechStarted, TurnDetector
from voco.audio.vad import SileroVAD, VadStream


def tone(dbfs: float) -> bytes:
    """A full 512-sample sine frame at ``dbfs`` RMS."""
    amp = 32768 * 10 ** (dbfs / 20) * np.sqrt(2)
    x = amp * np.sin(2 * np.pi * 440 * np.arange(FRAME_SAMPLES) / 16_000)
    return np.round(x).astype("<i2").tobytes()


ZERO = bytes(2 * FRAME_SAMPLES)


def test_frame_db_measures_rms_level():
    assert frame_db(ZERO) == SILENT_DB
    assert frame_db(tone(-20)) == pytest.approx(-20, abs=0.1)
    assert frame_db(tone(-60)) == pytest.approx(-60, abs=0.3)


def test_silence_is_skipped_after_the_hangover_only():
    cfg = GateConfig(hangover_frames=3, warmup_frames=2)
    g = EnergyGate(cfg)
    got = [g.admit(ZERO, in_speech=False) for _ in range(6)]
    assert [len(x) for x in got] == [1, 1, 1, 0, 0, 0]
    assert (g.scored, g.skipped) == (3, 3)


def test_the_hangover_runs_from_the_last_loud_frame_not_from_the_end_of_the_turn():
    """The quiet frames that end a turn are scored because the detector is in
    speech; they are already part of the hangover. Counting it again from the
    turn's end scored ~16 more room frames per utterance (~17 % of the
    model's work in bench_load) for nothing: the room is below the gate."""
    g = EnergyGate(GateConfig(hangover_frames=4, warmup_frames=0))
    for _ in range(40):  # a quiet room teaches the floor
        g.admit(tone(-80), in_speech=False)
    assert len(g.admit(tone(-20), in_speech=True)) == 1  # the last word
    # the end of the turn: room level, still in speech for 6 frames
    assert all(len(g.admit(tone(-80), in_speech=True)) == 1 for _ in range(6))
    before = g.scored
    after = [len(g.admit(tone(-80), in_speech=False)) for _ in range(6)]
    assert after == [0] * 6, after  # the last loud frame's hangover ran out in the turn
    assert g.scored == before


def test_a_loud_frame_after_the_turn_keeps_its_own_hangover():
    g = EnergyGate(GateConfig(hangover_frames=3, warmup_frames=0))
    for _ in range(40):
        g.admit(tone(-80), in_speech=False)
    assert len(g.admit(tone(-20), in_speech=False)) == 1  # a knock, not a turn
    got = [len(g.admit(tone(-80), in_speech=False)) for _ in range(5)]
    assert got == [1, 1, 1, 0, 0]


def test_opening_replays_the_last_skipped_frames_first():
    g = EnergyGate(GateConfig(hangover_frames=0, warmup_frames=2))
    quiet = [np.full(FRAME_SAMPLES, k, "<i2").tobytes() for k in (1, 2, 3)]
    for q in quiet:
        assert g.admit(q, in_speech=False) == []
    loud = tone(-20)
    assert g.admit(loud, in_speech=False) == [quiet[1], quiet[2], loud]
    assert g.admit(loud, in_speech=False) == [loud]  # open: nothing to replay


def test_in_speech_every_frame_is_scored():
    g = EnergyGate(GateConfig(hangover_frames=0))
    assert all(g.admit(ZERO, in_speech=True) == [ZERO] for _ in range(50))
    assert g.skipped == 0


def test_a_frame_at_speech_level_always_reaches_the_model():
    """The ceiling: in a room as loud as speech nothing is skipped."""
    g = EnergyGate(GateConfig(hangover_frames=0))
    rng = np.random.default_rng(0)
    for _ in range(200):
        noise = (rng.standard_normal(FRAME_SAMPLES) * 32768 * 10 ** (-48 / 20)).astype("<i2")
        assert g.admit(noise.tobytes(), in_speech=False)
    assert g.skipped == 0


def test_a_quiet_room_lets_a_whisper_through():
    """The floor: far below the ceiling, a frame well above the room's noise opens it."""
    g = EnergyGate(GateConfig(hangover_frames=0, warmup_frames=0))
    for _ in range(20):
        g.admit(tone(-85), in_speech=False)
    assert g.admit(tone(-85), in_speech=False) == []
    assert g.threshold_db() < -70
    assert g.admit(tone(-65), in_speech=False) == [tone(-65)]  # under the ceiling (-50)


def noise(dbfs: float, n: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, FRAME_SAMPLES)) * 32768 * 10 ** (dbfs / 20)
    return [row.astype("<i2").tobytes() for row in np.round(x)]


def test_digital_silence_does_not_blind_the_gate_to_the_room():
    """A muted moment (exact zeros: a browser's first frames, a mute button)
    is not the room's noise: it must not drag the floor under the room for
    long, or every frame of the room opens the gate afterwards (it did, for
    ~30 s: the floor fell to -120 dB and rose back at 1.5 dB/s)."""
    cfg = GateConfig(hangover_frames=4, warmup_frames=0)
    g = EnergyGate(cfg)
    for f in noise(-70, 40):
        g.admit(f, in_speech=False)
    for _ in range(5):
        g.admit(ZERO, in_speech=False)
    after = [g.admit(f, in_speech=False) for f in noise(-70, 200, seed=1)]
    assert sum(1 for x in after if x) <= cfg.floor_window_frames + cfg.hangover_frames + 2
    assert not any(after[-100:])


def test_zeros_inside_an_utterance_leave_the_room_floor_alone():
    """TTS and noise suppression put exact zeros between words; the floor is
    the room's, learned outside speech (bench_load's sessions scored ~70 % of
    their room frames through this)."""
    cfg = GateConfig(hangover_frames=4, warmup_frames=0)
    g = EnergyGate(cfg)
    for f in noise(-70, 40):
        g.admit(f, in_speech=False)
    for f in [tone(-25), ZERO, ZERO, tone(-20), ZERO] * 6:
        g.admit(f, in_speech=True)
    after = [g.admit(f, in_speech=False) for f in noise(-70, 100, seed=2)]
    # what is left of the last word's hangover (one zero frame came after it)
    left = cfg.hangover_frames - 1
    assert [len(x) for x in after[:left]] == [1] * left
    assert not any(after[left:])


def test_a_louder_room_is_learned_and_a_quieter_one_at_once():
    g = EnergyGate(GateConfig(hangover_frames=0, warmup_frames=0))
    for f in noise(-85, 60):
        g.admit(f, in_speech=False)
    assert g.threshold_db() == pytest.approx(-75, abs=1.5)
    for f in noise(-65, 60, seed=3):
        g.admit(f, in_speech=False)
    assert g.threshold_db() == pytest.approx(-55, abs=1.5)
    g.admit(noise(-85, 1, seed=4)[0], in_speech=False)
    assert g.threshold_db() == pytest.approx(-75, abs=1.5)


def test_bad_config_is_refused():
    with pytest.raises(ValueError):
        GateConfig(hangover_frames=-1)
    with pytest.raises(ValueError):
        GateConfig(margin_db=-3)


# ------------------------------------------------------------ real speech


def _turns(model: SileroVAD, fr: list[bytes], cfg: GateConfig | None):
    stream, turns = VadStream(), TurnDetector()
    gate = EnergyGate(cfg) if cfg is not None else None
    out: list[tuple[str, int]] = []
    for f in fr:
        todo = gate.admit(f, turns.in_speech) if gate is not None else [f]
        prob = 0.0
        for x in todo:  # the warm-up frames, then the frame itself
            prob = float(model.step([stream], [x])[0])
        ev = turns.push(prob)
        if isinstance(ev, SpeechStarted):
            out.append(("start", ev.onset_ms))
        elif isinstance(ev, SpeechEnded):
            out.append(("end", ev.end_ms))
    return out, gate


def _conversation(speech: np.ndarray, noise_dbfs: float | None, gain: float, seed: int):
    """2 s of room, then the utterance three times with 1, 2 and 3 s of room after each."""
    rng = np.random.default_rng(seed)

    def room(n: int) -> np.ndarray:
        if noise_dbfs is None:
            return np.zeros(n)
        return rng.standard_normal(n) * 32768 * 10 ** (noise_dbfs / 20)

    s = speech.astype(np.float64) * gain
    parts = [room(32_000)]
    for gap_s in (1, 2, 3):
        parts += [s + room(len(s)), room(16_000 * gap_s)]
    return frames(np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16))


def test_real_speech_turns_land_on_the_same_frames(silero):
    clips = [
        espeak_speech("stop right there please"),
        piper_speech("Fine, show me the tests."),
        espeak_speech("list the files"),
        piper_speech("no, stop"),
    ]
    cfg = GateConfig()
    moved: collections.Counter[tuple[str, int]] = collections.Counter()
    skipped = total = 0
    for k, clip in enumerate(clips):
        for noise in (None, -90.0, -70.0, -60.0):
            for gain in (1.0, 0.1):  # normal and quiet (-20 dB) speech
                fr = _conversation(clip, noise, gain, seed=k)
                ref, _ = _turns(silero, fr, None)
                got, gate = _turns(silero, fr, cfg)
                assert gate is not None
                skipped, total = skipped + gate.skipped, total + len(fr)
                assert [kind for kind, _ in got] == [kind for kind, _ in ref], (k, noise, gain)
                assert len(ref) == 6  # three utterances heard, each started and ended
                for (kind, a), (_, b) in zip(ref, got, strict=True):
                    moved[kind, (b - a) // FRAME_MS] += 1
    starts = {d: n for (kind, d), n in moved.items() if kind == "start"}
    ends = {d: n for (kind, d), n in moved.items() if kind == "end"}
    assert starts.get(0, 0) >= 0.85 * sum(starts.values()), moved
    assert ends.get(0, 0) >= 0.85 * sum(ends.values()), moved
    assert all(-2 <= d <= 1 for d in starts), moved  # never more than 32 ms later
    assert all(-1 <= d <= 1 for d in ends), moved
    assert skipped > 0.4 * total  # and it does skip: most of this audio is room


def test_speech_with_exact_zeros_in_a_room_leaves_the_room_skipped(silero):
    """espeak-ng's words have exact zeros between them; pasted (not mixed)
    into a -70 dB room, as bench_load sends them. The turns stay where the
    ungated model puts them, and the room after each utterance is skipped
    once the hangover passes (before: ~30 s of room scored after each)."""
    clip = espeak_speech("read the first ten lines of the config file")
    assert (clip == 0).sum() > 1_000  # the premise: zeros inside the words
    rng = np.random.default_rng(5)

    def room(n: int) -> np.ndarray:
        return np.round(rng.standard_normal(n) * 32768 * 10 ** (-70 / 20))

    parts = [room(32_000)]
    for _ in range(3):
        parts += [clip.astype(np.float64), room(16_000 * 4)]
    fr = frames(np.concatenate(parts).astype(np.int16))
    ref, _ = _turns(silero, fr, None)
    got, gate = _turns(silero, fr, GateConfig())
    assert gate is not None
    assert [k for k, _ in got] == [k for k, _ in ref] and len(ref) == 6
    assert all(abs(a - b) <= FRAME_MS for (_, a), (_, b) in zip(ref, got, strict=True))
    speech_frames = 3 * len(clip) // FRAME_SAMPLES
    # each utterance may keep the model busy through its end of turn and the
    # hangover (~1.5 s at most); the rest of the 14 s of room is skipped
    assert gate.skipped >= len(fr) - speech_frames - 3 * 48, (gate.skipped, len(fr))
