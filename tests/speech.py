"""Real speech for tests, made at test time by Piper and espeak-ng.

Two different synthesizers so the recogniser is not only ever tested on the
voice the assistant itself speaks with.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from voco.audio.pcm import FRAME_SAMPLES, SAMPLE_RATE


@functools.cache
def _piper():  # type: ignore[no-untyped-def]
    from piper import PiperVoice

    from voco.providers.piper_tts import bundled_voice

    model, config = bundled_voice()
    return PiperVoice.load(str(model), config_path=str(config))


@functools.cache
def piper_speech(text: str) -> npt.NDArray[np.int16]:
    voice = _piper()
    audio = np.concatenate([c.audio_float_array for c in voice.synthesize(text)])
    x = soxr.resample(audio, voice.config.sample_rate, SAMPLE_RATE)
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


@functools.cache
def espeak_speech(text: str) -> npt.NDArray[np.int16]:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (scripts/setup.sh installs it)")
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "s.wav"
        subprocess.run([exe, "-v", "en-us", "-s", "160", "-w", str(out), text], check=True)
        x, rate = sf.read(str(out), dtype="float32")
    x = soxr.resample(x, rate, SAMPLE_RATE)
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


def silence(ms: int) -> npt.NDArray[np.int16]:
    return np.zeros(SAMPLE_RATE * ms // 1000, dtype=np.int16)


def frames(pcm: npt.NDArray[np.int16]) -> list[bytes]:
    n = -(-len(pcm) // FRAME_SAMPLES) * FRAME_SAMPLES
    padded = np.zeros(n, dtype="<i2")
    padded[: len(pcm)] = pcm
    return [padded[i : i + FRAME_SAMPLES].tobytes() for i in range(0, n, FRAME_SAMPLES)]


def write_wav(path: Path, pcm: npt.NDArray[np.int16], rate: int = SAMPLE_RATE) -> Path:
    sf.write(str(path), pcm, rate, subtype="PCM_16")
    return path


def trim(pcm: npt.NDArray[np.int16], level: int = 500) -> npt.NDArray[np.int16]:
    """Drop leading and trailing near-silence, so the speech onset is sample 0."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > level)
    return pcm[loud[0] : loud[-1] + 1] if len(loud) else pcm[:0]
