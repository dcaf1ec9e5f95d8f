"""Where the local runtime's microphone audio comes from.

One tiny interface — an async iterator of 512-sample PCM16 frames at 16 kHz —
so a WAV file, the sound card and (later) the browser are interchangeable.
Sources pace themselves in real time when asked, because the engine's VAD and
barge-in logic reason in stream time and a file blasted at full speed would
not sound like a person.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from voco.audio.pcm import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE


def load_wav_16k(path: Path) -> npt.NDArray[np.int16]:
    """Any WAV/FLAC/OGG file → mono int16 at 16 kHz."""
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    mono: npt.NDArray[np.float32] = np.asarray(data, dtype=np.float32).mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = np.asarray(soxr.resample(mono, rate, SAMPLE_RATE), dtype=np.float32)
    out: npt.NDArray[np.int16] = (np.clip(mono, -1, 1) * 32767).astype(np.int16)
    return out


def frames_of(pcm: npt.NDArray[np.int16]) -> list[bytes]:
    n = -(-len(pcm) // FRAME_SAMPLES) * FRAME_SAMPLES
    padded = np.zeros(n, dtype="<i2")
    padded[: len(pcm)] = pcm
    return [padded[i : i + FRAME_SAMPLES].tobytes() for i in range(0, n, FRAME_SAMPLES)]


SILENCE = bytes(FRAME_SAMPLES * 2)


class AudioSource(abc.ABC):
    @abc.abstractmethod
    def frames(self) -> AsyncIterator[bytes]:
        """Yield 512-sample PCM16 frames until the source ends."""


class Pacer:
    """Real-time pacing on a fixed schedule (no drift from sleep jitter)."""

    def __init__(self, frame_ms: float = FRAME_MS) -> None:
        self.t0 = time.monotonic()
        self._n = 0
        self._frame_s = frame_ms / 1000

    async def tick(self) -> None:
        self._n += 1
        delay = self.t0 + self._n * self._frame_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class WavSource(AudioSource):
    """A file, then (optionally) endless silence — like a microphone that keeps
    listening after the user stopped talking."""

    def __init__(self, path: Path, *, realtime: bool = True, trailing_silence: bool = True):
        self.pcm = load_wav_16k(path)
        self._realtime = realtime
        self._trailing = trailing_silence

    async def frames(self) -> AsyncIterator[bytes]:
        pacer = Pacer()
        for f in frames_of(self.pcm):
            yield f
            if self._realtime:
                await pacer.tick()
        while self._trailing:
            yield SILENCE
            await pacer.tick()


NO_AUDIO_DEVICES = (
    "needs the optional audio extra (sounddevice + PortAudio): "
    "`uv sync --extra audio` or `pip install 'voco[audio]'`"
)


def require_sounddevice() -> Any:
    """The ``sounddevice`` module, or a RuntimeError that says how to get it."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:  # OSError: PortAudio library missing
        raise RuntimeError(f"{NO_AUDIO_DEVICES} ({exc})") from None
    return sd


class MicrophoneSource(AudioSource):
    """The default input device via ``sounddevice`` (PortAudio)."""

    def __init__(self) -> None:
        self._sd = require_sounddevice()  # fail at construction, before connecting

    async def frames(self) -> AsyncIterator[bytes]:
        sd = self._sd
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=200)

        def callback(indata: bytes, frames: int, t: object, status: object) -> None:
            if not queue.full():  # a stalled consumer drops frames, never blocks PortAudio
                loop.call_soon_threadsafe(queue.put_nowait, bytes(indata))

        with sd.RawInputStream(
            samplerate=SAMPLE_RATE,
            blocksize=FRAME_SAMPLES,
            channels=1,
            dtype="int16",
            callback=callback,
        ):
            while True:
                yield await queue.get()


class SpeakerPlayer:
    """Plays 24 kHz PCM16 reply audio on the default output device.

    ``__call__`` blocks until the device has taken the chunk, so it is called
    from a worker thread; ``close`` waits for the tail to play out.
    """

    RATE = 24000

    def __init__(self) -> None:
        sd = require_sounddevice()
        self._stream = sd.RawOutputStream(samplerate=self.RATE, channels=1, dtype="int16")
        self._stream.start()

    def __call__(self, pcm: bytes) -> None:
        self._stream.write(pcm)

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()
