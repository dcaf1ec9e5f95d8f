import numpy as np
import pytest

from voco.audio.pcm import FRAME_BYTES, OddLengthError, Rechunker, pcm16_to_float, samples_to_ms


def test_rechunks_any_even_sizes_into_whole_frames_in_order():
    data = bytes(range(256)) * 40  # 10240 bytes = 10 frames
    r = Rechunker()
    out: list[bytes] = []
    i = 0
    for size in [2, 300, 1024, 2000, 98, 5000, 4096]:
        out += r.feed(data[i : i + size])
        i += size
    assert b"".join(out) == data[: len(out) * FRAME_BYTES]
    assert all(len(f) == FRAME_BYTES for f in out)
    assert r.samples_received == min(i, len(data)) // 2


def test_odd_length_is_rejected_and_state_is_untouched():
    r = Rechunker()
    r.feed(b"\x00" * 100)
    with pytest.raises(OddLengthError):
        r.feed(b"\x00" * 3)
    assert r.samples_received == 50
    assert r.feed(b"\x00" * (FRAME_BYTES - 100)) == [b"\x00" * FRAME_BYTES]


def test_stream_time_is_samples_over_16():
    r = Rechunker()
    r.feed(b"\x00" * 32000)  # 16000 samples
    assert r.t_ms == 1000
    assert samples_to_ms(512) == 32
    assert r.frame_end_ms(0) == 32 and r.frame_end_ms(30) == 992


def test_a_whole_frame_chunk_passes_through_and_a_mutable_one_is_copied():
    r = Rechunker()
    chunk = bytes(range(256)) * 4  # exactly one frame
    out = r.feed(chunk)
    assert out == [chunk] and out[0] is chunk  # immutable: no copy needed
    assert r.frames_emitted == 1 and r.samples_received == FRAME_BYTES // 2
    mutable = bytearray(chunk)
    out = r.feed(mutable)
    mutable[0] ^= 0xFF  # the caller reuses its buffer: the frame must not change
    assert out == [chunk] and type(out[0]) is bytes
    assert r.frames_emitted == 2


def test_pcm16_to_float_is_float32_and_scaled_by_32768():
    pcm = np.array([-32768, -1, 0, 1, 32767], dtype="<i2")
    x = pcm16_to_float(pcm.tobytes())
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, pcm.astype(np.float32) / 32768.0)
