"""PCM framing and stream time.

The protocol lets clients send any even number of bytes per binary frame; the VAD
wants exactly 512 samples. :class:`Rechunker` is the sans-I/O piece in between and
the single owner of *stream time* (``t_ms = samples_received / 16``), so every
``t_ms`` the engine reports is derived from one counter.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
FRAME_SAMPLES = 512  # 32 ms at 16 kHz: Silero's native window
FRAME_BYTES = FRAME_SAMPLES * 2
FRAME_MS = FRAME_SAMPLES * 1000 // SAMPLE_RATE


def samples_to_ms(samples: int) -> int:
    """Stream time in ms for a sample count (protocol §1: samples / 16)."""
    return samples * 1000 // SAMPLE_RATE


class OddLengthError(ValueError):
    """A binary frame held an odd number of bytes (not whole 16-bit samples)."""


class Rechunker:
    """Turns arbitrary even-length PCM16 chunks into 512-sample frames.

    ``samples_received`` counts every sample accepted, including those still
    waiting in the partial buffer, because stream time is defined on what the
    client has sent, not on what the VAD has seen.
    """

    def __init__(self, frame_bytes: int = FRAME_BYTES) -> None:
        self._frame_bytes = frame_bytes
        self._buf = bytearray()
        self.samples_received = 0
        self.frames_emitted = 0

    def feed(self, data: bytes) -> list[bytes]:
        if len(data) % 2:
            raise OddLengthError(f"audio frame has odd length {len(data)} (PCM16 needs even)")
        self.samples_received += len(data) // 2
        fb = self._frame_bytes
        if not self._buf and len(data) == fb and type(data) is bytes:  # the usual chunk: no copy
            self.frames_emitted += 1
            return [data]
        self._buf += data
        out: list[bytes] = []
        while len(self._buf) >= fb:
            out.append(bytes(self._buf[:fb]))
            del self._buf[:fb]
        self.frames_emitted += len(out)
        return out

    @property
    def t_ms(self) -> int:
        return samples_to_ms(self.samples_received)

    def frame_end_ms(self, frame_index: int) -> int:
        """Stream time at the end of frame ``frame_index`` (0-based)."""
        return samples_to_ms((frame_index + 1) * (self._frame_bytes // 2))


def pcm16_to_float(pcm: bytes) -> npt.NDArray[np.float32]:
    # one float32 array (a float32 scalar keeps the product float32; 1/32768 is exact)
    return np.frombuffer(pcm, dtype="<i2") * np.float32(1.0 / 32768.0)


def float_to_pcm16(x: npt.NDArray[np.float32]) -> bytes:
    return (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
