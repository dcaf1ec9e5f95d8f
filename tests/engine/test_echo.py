"""Own-voice gating without sockets: the reply's echo at −20 dB through the real
Silero VAD and turn detector makes no barge-in; a person over it still does."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from tests.fakes import LONG_REPLY
from tests.speech import espeak_speech, frames, piper_speech, trim
from voco.audio.pcm import FRAME_MS, pcm16_to_float
from voco.audio.turns import SpeechStarted, TurnDetector
from voco.audio.vad import SileroVAD, VadStream
from voco.engine.echo import EchoGate

PLAY_AT_MS = 480  # mic stream time at which the reply starts playing
TTS_RATE = 22050


def reply_pcm() -> np.ndarray:
    return piper_speech(LONG_REPLY.split(". ")[0] + ". " + LONG_REPLY.split(". ")[1] + ".")


def feed_reference(gate: EchoGate, reply16: np.ndarray) -> None:
    """As the speaker does: TTS-rate PCM in 80 ms pieces on the reply's timeline."""
    x = soxr.resample(reply16.astype(np.float32) / 32768, 16000, TTS_RATE)
    ref = (np.clip(x, -1, 1) * 32767).astype("<i2")
    step = TTS_RATE * 80 // 1000
    for i in range(0, len(ref), step):
        gate.add_reference(ref[i : i + step].tobytes(), TTS_RATE, i * 1000 // TTS_RATE)


def mic_with_echo(reply16: np.ndarray, delay_ms: int, gain_db: float) -> np.ndarray:
    n = (PLAY_AT_MS + delay_ms) * 16 + len(reply16) + 16000
    mic = np.zeros(n, dtype=np.float64)
    at = (PLAY_AT_MS + delay_ms) * 16
    mic[at : at + len(reply16)] += reply16 * 10 ** (gain_db / 20)
    mic += np.random.default_rng(1).normal(0, 3, n)  # a quiet room
    return mic


def speech_starts(silero: SileroVAD, mic: np.ndarray, gate: EchoGate | None) -> list[int]:
    """The listener's barge-in trigger, frame by frame."""
    vs, td, starts = VadStream(), TurnDetector(), []
    pcm = np.clip(mic, -32768, 32767).astype(np.int16)
    for i, frame in enumerate(frames(pcm)):
        stream_ms = (i + 1) * FRAME_MS
        if gate is not None and stream_ms == PLAY_AT_MS:
            gate.play_from(stream_ms, 0)
        prob = float(silero.step([vs], [pcm16_to_float(frame)])[0])
        echo = gate.is_echo(frame, stream_ms) if gate is not None and gate.active else False
        if echo and not td.in_speech:
            prob = 0.0
        ev = td.push(prob)
        if isinstance(ev, SpeechStarted):
            starts.append(ev.onset_ms)
    return starts


@pytest.mark.parametrize(("delay_ms", "gain_db"), [(120, -20.0), (300, -20.0), (60, -14.0)])
def test_own_voice_at_minus_20_db_makes_no_barge_in(silero, delay_ms, gain_db) -> None:
    reply = reply_pcm()
    mic = mic_with_echo(reply, delay_ms, gain_db)
    assert speech_starts(silero, mic, None), "precondition: ungated, the echo is speech"
    gate = EchoGate()
    feed_reference(gate, reply)
    assert speech_starts(silero, mic, gate) == []
    assert gate.lag_blocks is not None and abs(gate.lag_blocks * 8 - delay_ms) <= 24


def test_a_person_over_the_echo_still_barges_in(silero) -> None:
    reply = reply_pcm()
    mic = mic_with_echo(reply, 150, -20.0)
    user = trim(espeak_speech("Wait, stop, run the tests instead."))
    at_ms = PLAY_AT_MS + 2500
    mic[at_ms * 16 : at_ms * 16 + len(user)] += user * 0.7
    gate = EchoGate()
    feed_reference(gate, reply)
    starts = speech_starts(silero, mic, gate)
    assert starts and at_ms - 32 <= starts[0] <= at_ms + 160, starts


def test_headphones_no_echo_a_person_at_the_replys_level_barges_in(silero) -> None:
    reply = reply_pcm()
    mic = mic_with_echo(reply, 150, -90.0)  # nothing comes back
    user = trim(piper_speech("Wait a moment, please."))  # the reply's own voice and level
    at_ms = PLAY_AT_MS + 1500
    mic[at_ms * 16 : at_ms * 16 + len(user)] += user
    gate = EchoGate()
    feed_reference(gate, reply)
    starts = speech_starts(silero, mic, gate)
    assert starts and at_ms - 32 <= starts[0] <= at_ms + 160, starts


def test_gate_is_idle_without_a_reply() -> None:
    gate = EchoGate()
    assert not gate.active
    gate.play_from(0, 0)
    gate.stop(0)
    gate.is_echo(bytes(1024), 32 * 40)
    assert not gate.active  # past the echo tail of nothing


def test_an_underrun_re_anchors_the_reference_where_the_client_plays() -> None:
    gate = EchoGate()
    gate.play_from(1000, 0, now=10.0)
    gate.piece_sent(1050, 80, now=10.05)  # ahead of playback (the client buffers)
    gate.piece_sent(1900, 800, now=10.8)  # due at 10.8: on time
    assert [(s.stream_block, s.timeline_block) for s in gate._segments] == [(125, 0)]
    gate.piece_sent(3500, 880, now=12.5)  # due at 10.88: the client ran dry
    segs = [(s.stream_block, s.timeline_block, s.until) for s in gate._segments]
    assert segs == [(125, 0, 3500 // 8), (3500 // 8, 880 // 8, None)]
    gate.piece_sent(3580, 960, now=12.52)  # on time again from the new anchor
    assert len(gate._segments) == 2
    gate.stop(3600)
    gate.piece_sent(3700, 1040, now=20.0)  # halted: nothing plays, nothing to anchor
    assert len(gate._segments) == 2


def test_a_room_only_window_trusts_no_delay_and_a_quiet_user_gets_through() -> None:
    """Speakers, then headphones mid-reply: once a second of mic is the room
    alone, no delay is trusted (it would time nothing) and the blind bound has
    fallen to the room, so speech 20 dB under the reply is not taken for echo."""
    reply = reply_pcm()
    gate = EchoGate()
    feed_reference(gate, reply)
    mic = mic_with_echo(reply, 150, -20.0)
    switch_ms = PLAY_AT_MS + 78 * FRAME_MS  # the echo stops here; the reply goes on
    quiet = np.random.default_rng(2).normal(0, 3, len(mic) - switch_ms * 16)
    mic[switch_ms * 16 :] = quiet
    pcm = np.clip(mic, -32768, 32767).astype(np.int16)
    fr = frames(pcm)
    learned = None
    for i, frame in enumerate(fr[: (switch_ms + 1500) // FRAME_MS]):
        stream_ms = (i + 1) * FRAME_MS
        if stream_ms == PLAY_AT_MS:
            gate.play_from(stream_ms, 0)
        if gate.active:
            gate.is_echo(frame, stream_ms)
        if stream_ms == switch_ms:
            learned = (gate.lag_blocks, gate.ncc)
    assert learned is not None and learned[0] is not None and learned[1] >= 0.5, learned
    assert gate.ncc == 0.0  # a room-only window correlates with nothing
    user = trim(espeak_speech("wait")) * 10 ** (-20 / 20)
    frame = np.clip(user[1600:2112], -32768, 32767).astype("<i2").tobytes()
    assert not gate.is_echo(frame, switch_ms + 1500 + FRAME_MS)


def test_exact_zeros_in_the_room_do_not_count_as_a_signal() -> None:
    """A mute or a TTS's word gaps put blocks of exact zeros in the mic: they
    are under any room, not 40 dB of dynamics, and time no delay either."""
    gate = EchoGate()
    reply = reply_pcm()
    feed_reference(gate, reply)
    gate.play_from(0, 0)
    rng = np.random.default_rng(4)
    for i in range(100):
        x = rng.normal(0, 3, 512)
        if i % 7 == 0:
            x[:256] = 0.0  # two blocks of digital silence now and then
        gate.is_echo(np.round(x).astype("<i2").tobytes(), (i + 1) * FRAME_MS)
    assert gate.ncc == 0.0
