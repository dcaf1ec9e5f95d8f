import asyncio

import numpy as np
import pytest

from tests.speech import espeak_speech, frames, piper_speech, silence
from voco.audio.pcm import pcm16_to_float
from voco.audio.turns import SpeechStarted, TurnDetector
from voco.audio.vad import BatchedVAD, VadStream


def probs_for(silero, pcm):
    s = VadStream()
    return [float(silero.step([s], [pcm16_to_float(f)])[0]) for f in frames(pcm)]


def test_speech_scores_high_and_silence_low(silero):
    speech = probs_for(silero, piper_speech("Please list the files in the source folder."))
    quiet = probs_for(silero, silence(1000))
    assert max(quiet) < 0.2
    assert np.mean(np.array(speech) > 0.5) > 0.5


def test_batched_step_equals_one_by_one(silero):
    clips = [
        piper_speech("Run the tests."),
        espeak_speech("Open the readme."),
        silence(1200),
        np.concatenate([silence(400), espeak_speech("git status")]),
    ]
    n = min(len(frames(c)) for c in clips)
    alone = [probs_for(silero, c)[:n] for c in clips]
    streams = [VadStream() for _ in clips]
    per_clip_frames = [frames(c) for c in clips]
    batched = [[] for _ in clips]
    for i in range(n):
        p = silero.step(streams, [pcm16_to_float(fr[i]) for fr in per_clip_frames])
        for k in range(len(clips)):
            batched[k].append(float(p[k]))
    np.testing.assert_allclose(np.array(batched), np.array(alone), atol=1e-5)


@pytest.mark.parametrize("split", [1, 2, 5, 17])
def test_a_sequence_run_equals_its_single_steps(silero, split):
    """The gate's warm-up runs a stream's skipped frames in one call of the
    sequence export: the probabilities, the LSTM state and the context after
    it are those of one step per frame (PCM bytes and floats alike)."""
    pcm = np.concatenate([silence(300), espeak_speech("list the files please")])
    fr = frames(pcm)[:34]
    one, seq = VadStream(), VadStream()
    want = [float(silero.step([one], [f])[0]) for f in fr]
    got: list[float] = []
    for i in range(0, len(fr), split):
        part = fr[i : i + split]
        as_floats = i % 2 == 1  # both frame kinds, mixed across calls
        got += [
            float(p)
            for p in silero.run(seq, [pcm16_to_float(f) for f in part] if as_floats else part)
        ]
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(seq.state, one.state, atol=1e-6)
    np.testing.assert_array_equal(seq.context, one.context)
    assert max(want) > 0.9  # the premise: speech, so the state really moved


def test_a_sequence_run_refuses_a_frame_of_the_wrong_size(silero):
    with pytest.raises(ValueError, match="1024 bytes"):
        silero.run(VadStream(), [bytes(1024), bytes(1000)])


def test_onset_detected_near_true_onset(silero):
    lead_ms = 640
    pcm = np.concatenate([silence(lead_ms), espeak_speech("Stop right there")])
    true_onset = lead_ms + int(np.argmax(np.abs(espeak_speech("Stop right there")) > 1000)) // 16
    d = TurnDetector()
    started = next(ev for p in probs_for(silero, pcm) if isinstance(ev := d.push(p), SpeechStarted))
    # a leading fricative ("st") scores low for a frame or three
    assert -32 <= started.onset_ms - true_onset <= 128
    assert started.confirmed_ms == started.onset_ms + 64


async def test_batched_vad_coalesces_concurrent_streams(silero):
    vad = BatchedVAD(silero)
    try:
        clips = [frames(espeak_speech(t)) for t in ("one two three", "four five six")] * 8
        streams = [VadStream() for _ in clips]
        n = min(len(c) for c in clips)

        async def run(k):
            return [
                await vad.probability(streams[k], pcm16_to_float(clips[k][i])) for i in range(n)
            ]

        results = await asyncio.gather(*(run(k) for k in range(len(clips))))
        assert vad.frames == n * len(clips)
        assert vad.steps < vad.frames  # frames shared steps
        ref = probs_for(silero, np.frombuffer(b"".join(clips[0][:n]), dtype="<i2"))
        np.testing.assert_allclose(results[0], ref, atol=1e-5)
        np.testing.assert_allclose(results[2], ref, atol=1e-5)
    finally:
        vad.close()


def test_rejects_wrong_frame_size(silero):
    with pytest.raises(ValueError):
        silero.step([VadStream()], [np.zeros(100, dtype=np.float32)])


def test_pcm16_bytes_give_the_same_probabilities_as_floats(silero):
    clip = frames(espeak_speech("Open the readme."))
    a, b = VadStream(), VadStream()
    for f in clip:
        from_float = silero.step([a], [pcm16_to_float(f)])
        from_bytes = silero.step([b], [f])
        np.testing.assert_array_equal(from_bytes, from_float)
    np.testing.assert_array_equal(a.state, b.state)
    np.testing.assert_array_equal(a.context, b.context)


def test_step_updates_each_streams_state_in_place(silero):
    s = VadStream()
    state, context = s.state, s.context
    silero.step([s], [frames(espeak_speech("one"))[3]])
    assert s.state is state and s.context is context  # no per-frame allocation
    assert np.any(state != 0.0) and np.any(context != 0.0)


@pytest.mark.parametrize("inline_max", [0, 1024])  # every step on the thread / on the loop
async def test_inline_and_threaded_steps_agree(silero, inline_max):
    vad = BatchedVAD(silero, inline_max=inline_max, window_s=0.0)
    try:
        clips = [frames(espeak_speech(t)) for t in ("one two three", "four five six")] * 3
        streams = [VadStream() for _ in clips]
        n = min(len(c) for c in clips)

        async def run(k):
            return [await vad.probability(streams[k], clips[k][i]) for i in range(n)]

        results = await asyncio.gather(*(run(k) for k in range(len(clips))))
        ref = probs_for(silero, np.frombuffer(b"".join(clips[1][:n]), dtype="<i2"))
        np.testing.assert_allclose(results[1], ref, atol=1e-5)
        np.testing.assert_allclose(results[3], ref, atol=1e-5)
        assert vad.frames == n * len(clips)
    finally:
        vad.close()


def test_rejects_pcm_bytes_of_the_wrong_size(silero):
    with pytest.raises(ValueError):
        silero.step([VadStream()], [bytes(100)])
