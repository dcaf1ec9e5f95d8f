import numpy as np


async def test_synthesizes_pcm_at_its_rate(piper):
    chunks = [c async for c in piper.synthesize("Hello, I am Voco.")]
    pcm = np.frombuffer(b"".join(chunks), dtype="<i2")
    assert piper.sample_rate == 22050
    assert 0.5 < len(pcm) / piper.sample_rate < 3.0
    assert np.abs(pcm).max() > 3000  # actual speech, not silence


async def test_spoken_reply_is_understood_by_the_recogniser(piper, whisper):
    import soxr

    pcm = b"".join([c async for c in piper.synthesize("The tests passed.")])
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    text = await whisper.transcribe(soxr.resample(x, piper.sample_rate, 16000))
    assert "test" in text.lower() and "pass" in text.lower()
