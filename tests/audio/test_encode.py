import io

import numpy as np
import pytest
import soundfile as sf

from voco.audio.encode import OutputEncoder


def tone(rate, seconds, hz=440.0):
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype("<i2")


@pytest.mark.parametrize("rate", [22050, 24000, 16000])
def test_mp3_is_decodable_24k_and_duration_tracked(rate):
    enc = OutputEncoder(rate, "mp3")
    pcm = tone(rate, 1.0)
    data = b"".join(enc.encode(pcm[i : i + 1764].tobytes()) for i in range(0, len(pcm), 1764))
    data += enc.flush()
    assert abs(enc.duration_ms - 1000) <= 5
    audio, sr = sf.read(io.BytesIO(data))
    assert sr == 24000
    assert abs(len(audio) / sr - 1.0) < 0.1
    # the tone survives: dominant frequency near 440 Hz
    spec = np.abs(np.fft.rfft(audio[2000:14000]))
    assert abs(np.argmax(spec) * sr / 12000 - 440) < 10


def test_pcm_output_is_resampled_exactly():
    enc = OutputEncoder(22050, "pcm_s16le")
    out = enc.encode(tone(22050, 0.5).tobytes()) + enc.flush()
    assert len(out) == enc.samples_out * 2
    assert abs(enc.samples_out - 12000) <= 2
