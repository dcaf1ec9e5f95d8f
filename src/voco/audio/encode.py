"""Reply audio: resample TTS output to 24 kHz and encode it for the wire.

The protocol fixes the output at 24 kHz, as ``mp3`` (default) or ``pcm_s16le``.
:class:`OutputEncoder` keeps the resampler and the MP3 encoder streaming across a
whole response, so clause boundaries leave no clicks or gaps, and it counts the
samples it has produced: that count is the response's audio timeline, used to
say how much of the reply a user has heard.
"""

from __future__ import annotations

from typing import Literal

import lameenc
import numpy as np
import numpy.typing as npt
import soxr

OUTPUT_RATE = 24_000


class OutputEncoder:
    def __init__(
        self, input_rate: int, encoding: Literal["mp3", "pcm_s16le"], *, bitrate_kbps: int = 48
    ) -> None:
        self.encoding = encoding
        self._resampler = (
            None
            if input_rate == OUTPUT_RATE
            else soxr.ResampleStream(input_rate, OUTPUT_RATE, 1, dtype="int16", quality="HQ")
        )
        self._mp3: lameenc.Encoder | None = None
        if encoding == "mp3":
            enc = lameenc.Encoder()
            enc.set_bit_rate(bitrate_kbps)
            enc.set_in_sample_rate(OUTPUT_RATE)
            enc.set_channels(1)
            enc.set_quality(7)  # fast; speech at 48 kbps does not need more
            self._mp3 = enc
        self.samples_out = 0  # 24 kHz samples produced so far

    @property
    def duration_ms(self) -> int:
        return self.samples_out * 1000 // OUTPUT_RATE

    def encode(self, pcm: bytes) -> bytes:
        """Feed TTS PCM16 at the input rate; return wire bytes (may be empty)."""
        x = np.frombuffer(pcm, dtype="<i2")
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x)
        return self._emit(x)

    def flush(self) -> bytes:
        """End of response: drain the resampler and the MP3 encoder."""
        out = b""
        if self._resampler is not None:
            out += self._emit(self._resampler.resample_chunk(np.zeros(0, np.int16), last=True))
        if self._mp3 is not None:
            out += bytes(self._mp3.flush())
        return out

    def _emit(self, x: npt.NDArray[np.int16]) -> bytes:
        self.samples_out += len(x)
        data = x.astype("<i2").tobytes()
        if self._mp3 is None:
            return data
        return bytes(self._mp3.encode(data)) if data else b""
