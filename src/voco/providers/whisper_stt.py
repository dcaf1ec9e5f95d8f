"""Embedded STT: faster-whisper Whisper ``base`` (default) or ``tiny.en``, int8.

Models come from PyPI wheels (:mod:`voco.providers.whisper_models`). Base is
multilingual, pinned to English; it mishears far fewer coding words than
tiny.en for about twice the CPU. That CPU is not hidden: the decode at the
first pause is what the reply waits for (bench/bench_turns.py), so its
encoder window is kept as short as accuracy allows.

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

Decoding, by default greedy and without a context line — both opt-in
(``beam_size=5``, ``context=CODING_CONTEXT``): on the tuning set of
bench/bench_stt.py beam 5 cut base's WER by about a fifth (31 → 24 %) for
~15 % more CPU, and the coding line (``CODING_CONTEXT``, no project names)
another 24 → 21 %; but the two together made the decoder stop at a
mid-sentence hesitation ("Read the first ten lines of … the config file"
came back as "…lines of": the words after the pause lost,
tests/engine/test_turn_end_e2e.py), so neither is the default until that is
solved. A full 30 s window gained little (23 %) at 4x the CPU, so the window
stays short: ``MIN_CONTEXT_S`` = 7 s (utterance + 1 s when longer). On the
tuning set (base, greedy, with vocabulary) 7 s heard as well as 10 s (WER
27.1 vs 27.6 %) for ~20 % less CPU per utterance (551 vs 645 ms); on the
held-out voices it was a little worse (33.1 vs 31.7 %, totals only), a
price taken for the latency below; 6 s lost a project name ("Open
vprenet.toml", tests/providers/test_whisper_stt.py), 4 s and 3 s lost words
(29.0, 30.5 %) and looped more often. The decode at the
first pause is what the reply waits for, so this is turn-end latency
(bench/bench_turns.py: last voiced sample to first audio p50 700/534 ms at
10 s, 475/473 ms at 7 s).

Project vocabulary: the
session passes the names the conversation has seen (files, folders, symbols);
they follow the context in Whisper's "previous text" prompt, the way
``initial_prompt``/``hotwords`` do, so the decoder prefers those spellings.
The prompt is capped in tokens and counted inside ``max_length`` (CTranslate2
counts the prompt there; the decoder's context is 448 tokens).
"""

from __future__ import annotations

import asyncio
import re
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voco.audio.pcm import SAMPLE_RATE, pcm16_to_float
from voco.providers.base import STT, PartialCallback, ProviderError, SpeechStream, STTCapabilities
from voco.providers.inference_queue import InferenceQueue
from voco.providers.whisper_models import base_model_dir, tiny_model_dir

MIN_CONTEXT_S = 7.0  # shortest encoder window, seconds (module docstring)
FULL_FRAMES = 3000  # 30 s of 10 ms mel frames: Whisper's trained window
HOP = 160  # samples per mel frame (10 ms at 16 kHz)
MAX_UTTERANCE_S = 120
DECODER_CONTEXT = 448  # Whisper's text positions: prompt + generated tokens
MAX_PROMPT_TOKENS = 128  # context + vocabulary prompt cap; leaves >300 tokens for the words
MAX_CONTEXT_TOKENS = 40
# Conditioning on a line of coding talk makes the decoder expect coding words
# ("git status", "pytest", "dot py") instead of the nearest everyday ones
# ("good status", "pie"); it names no project file, so it is no vocabulary.
CODING_CONTEXT = (
    "A developer talks to a coding assistant about files, folders, tests, git and functions."
)
NAMES_LEAD = " "
MODELS = ("base", "tiny")
# decodes waiting together that go to CTranslate2 as one batch (bench/bench_whisper_batch.py:
# 4 at once cost ~0.76x the CPU of 4 in a row, same transcripts; one alone is never held back)
MAX_BATCH = 4
Utterance = tuple[npt.NDArray[np.float32], list[int]]  # audio, vocabulary prompt tokens


def bundled_model_dir(model: str = "base") -> Path:
    if model == "tiny":
        return tiny_model_dir()
    if model == "base":
        return base_model_dir()
    raise ProviderError("whisper", f"unknown model {model!r}; choose one of {', '.join(MODELS)}")


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
    words come twice in a row, or 1–2 words three times — or twice and then
    cut short by the token limit ("Go on! Go on! Go": a capped decode's
    third pass; a speaker's own "go on, go on" rarely ends that way, and
    cut to "go on" it means the same).
    """
    spans = [(m.end(), m.group().lower()) for m in re.finditer(r"\w+", text)]
    words = [w for _, w in spans]
    for i in range(len(words)):
        for n in range(1, 13):
            reps = 3 if n < 3 else 2
            if i + 2 * n > len(words):
                break
            first = words[i : i + n]
            rest = words[i + 2 * n :]
            if n < 3 and 0 < len(rest) < n and first[: len(rest)] == rest:
                reps = 2  # the third pass, cut off at the end of the text
            if i + reps * n > len(words):
                continue
            if all(words[i + k * n : i + (k + 1) * n] == first for k in range(1, reps)):
                end = spans[i + n - 1][0]
                tail = text[end] if end < len(text) and text[end] in ".?!" else ""
                return text[:end] + tail
    return text


class WhisperSTT(STT):
    name = "whisper"
    capabilities = STTCapabilities(streaming=False, interim_results=False, vocabulary=True)

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        model: str = "base",
        cpu_threads: int = 0,
        min_context_s: float = MIN_CONTEXT_S,
        compute_type: str = "int8",
        beam_size: int = 1,
        max_batch: int = MAX_BATCH,
        context: str = "",
        max_tokens: int | None = None,
    ) -> None:
        if model not in MODELS:
            raise ProviderError(
                "whisper", f"unknown model {model!r}; choose one of {', '.join(MODELS)}"
            )
        self.model = model
        self._model_dir = model_dir
        self._beam = beam_size
        self.context = context
        # tokens a decode may produce at most (None: as many as the audio may
        # need); a short window's decode that loops runs to this limit
        self._max_tokens = max_tokens
        self._context_ids: list[int] = []
        self._cpu_threads = cpu_threads
        self._min_frames = int(min_context_s * 100)
        self._compute_type = compute_type
        self._model: Any = None
        self._tokenizer: Any = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper")
        # every session's decodes share the thread: bounded, measured, prioritised
        self._queue = InferenceQueue("stt", self._executor, max_batch=max_batch)
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
            str(self._model_dir or bundled_model_dir(self.model)),
            device="cpu",
            compute_type=self._compute_type,
            cpu_threads=self._cpu_threads,
        )
        multilingual = bool(model.model.is_multilingual)
        self._tokenizer = Tokenizer(
            model.hf_tokenizer,
            multilingual=multilingual,
            task="transcribe",
            language="en" if multilingual else None,
        )
        self._model = model
        self.set_context(self.context)
        self._decode(np.zeros(SAMPLE_RATE, dtype=np.float32))  # first call allocates

    def set_context(self, context: str) -> None:
        """The domain sentence every decode is conditioned on (no project names)."""
        self.context = context
        if self._tokenizer is not None:
            ids = self._tokenizer.encode(" " + context.strip()) if context.strip() else []
            self._context_ids = ids[:MAX_CONTEXT_TOKENS]

    async def open_stream(
        self, on_partial: PartialCallback | None = None, *, vocabulary: Sequence[str] = ()
    ) -> SpeechStream:
        await self.warmup()
        return _BufferedStream(self, self.prompt_tokens(vocabulary))

    def prompt_tokens(self, vocabulary: Sequence[str]) -> list[int]:
        """The decoder's previous-text prompt: the coding context, then the
        vocabulary best names first, capped at ``MAX_PROMPT_TOKENS`` in all.

        Written like a line of a transcript ("... Files: README.md, main.py,
        parse_config.") because Whisper imitates the style of the text it is
        conditioned on; an empty vocabulary gives the context alone.
        """
        if self._tokenizer is None:
            return []
        tok = self._tokenizer
        ids: list[int] = []
        budget = MAX_PROMPT_TOKENS - len(self._context_ids)
        for name in dict.fromkeys(v.strip() for v in vocabulary if v.strip()):
            piece = tok.encode((", " if ids else NAMES_LEAD) + name)
            if len(ids) + len(piece) + 1 > budget:
                break
            ids.extend(piece)
        return [*self._context_ids, *ids, *tok.encode(".")] if ids else list(self._context_ids)

    async def transcribe(self, audio: npt.NDArray[np.float32], prompt: Sequence[int] = ()) -> str:
        await self.warmup()
        try:
            key = self.batch_key(len(audio), prompt)
            if key is None or self._queue.max_batch <= 1:
                return await self._queue.run(self._decode, audio, list(prompt))
            # decodes of other sessions waiting with the same key join this one
            return await self._queue.run_batch(self._decode_batch, key, (audio, list(prompt)))
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(self.name, f"transcription failed: {exc}") from exc

    def window(self, n_samples: int) -> int | None:
        """The encoder window (mel frames) a decode of ``n_samples`` uses, or
        None for long dictation (the library's own 30 s windowing). Decodes with
        the same window may share one batched encoder/decoder pass: each item's
        input is then exactly what its single decode sees."""
        if n_samples > 30 * SAMPLE_RATE:
            return None
        return min(FULL_FRAMES, max(self._min_frames, n_samples // HOP + 100))

    def batch_key(self, n_samples: int, prompt: Sequence[int]) -> tuple[int, int] | None:
        """Decodes of one key may run as one batch: the same encoder window, and
        the same vocabulary prompt length (CTranslate2 needs the start-of-transcript
        token at one position across a batch; padding a prompt would change
        what the decoder is conditioned on). None: never batched."""
        frames = self.window(n_samples)
        return None if frames is None else (frames, len(prompt[-MAX_PROMPT_TOKENS:]))

    def _decode(self, audio: npt.NDArray[np.float32], prompt: list[int] | None = None) -> str:
        prompt = prompt or []
        frames = self.window(len(audio))
        if frames is None:  # long dictation: the library's windowing
            words = self._tokenizer.decode(prompt).strip() if prompt else None
            segments, _ = self._model.transcribe(
                audio, beam_size=self._beam, language="en", initial_prompt=words
            )
            return " ".join(s.text.strip() for s in segments).strip()
        return self._decode_batch([(audio, prompt)])[0]

    def _decode_batch(
        self, items: Sequence[tuple[npt.NDArray[np.float32], list[int]]]
    ) -> list[str]:
        """Decode utterances of one :meth:`window` in one CTranslate2 call
        (batched encoder and decoder); a degenerate result is re-decoded
        alone over the full 30 s window, as a single decode would be."""
        keys = {self.batch_key(len(a), p) for a, p in items}
        frames = self.window(len(items[0][0]))
        if frames is None or len(keys) != 1:
            raise ValueError(f"one batch needs one batch key, got {sorted(map(str, keys))}")
        feats = [self._model.feature_extractor(a, padding=0) for a, _ in items]
        texts = self._generate(feats, frames, [(len(a), p) for a, p in items])
        out: list[str] = []
        for (audio, prompt), f, text in zip(items, feats, texts, strict=True):
            text = collapse_loops(text)
            if frames < FULL_FRAMES and looks_degenerate(text):
                self.fallbacks += 1
                text = collapse_loops(self._generate([f], FULL_FRAMES, [(len(audio), prompt)])[0])
            out.append(text.strip())
        return out

    def _generate(
        self,
        feats: Sequence[npt.NDArray[np.float32]],
        frames: int,
        jobs: Sequence[tuple[int, list[int]]],
    ) -> list[str]:
        """One encoder + decoder pass over ``feats`` padded to ``frames``;
        ``jobs``: each item's (sample count, vocabulary prompt)."""
        import ctranslate2

        x = np.zeros((len(feats), feats[0].shape[0], frames), dtype=np.float32)
        for i, f in enumerate(feats):
            k = min(frames, f.shape[1])
            x[i, :, :k] = f[:, :k]
        enc = self._model.model.encode(ctranslate2.StorageView.from_array(x), to_cpu=False)
        tok = self._tokenizer
        prompts: list[list[int]] = []
        max_len = 0
        for n_samples, previous in jobs:
            prev = [tok.sot_prev, *previous[-MAX_PROMPT_TOKENS:]] if previous else []
            prompt = [*prev, *tok.sot_sequence, tok.no_timestamps]
            budget = int(n_samples / SAMPLE_RATE * 12) + 24  # tokens the words may need
            if self._max_tokens is not None:
                budget = min(budget, self._max_tokens)
            # counts the prompt; the batch's longest need bounds it (greedy items stop at EOT)
            max_len = max(max_len, min(DECODER_CONTEXT - 8, len(prompt) + budget))
            prompts.append(prompt)
        res = self._model.model.generate(
            enc, prompts, beam_size=self._beam, max_length=max_len, suppress_blank=True
        )
        return [str(tok.decode([t for t in r.sequences_ids[0] if t < tok.eot])) for r in res]

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class _BufferedStream(SpeechStream):
    def __init__(self, stt: WhisperSTT, prompt: list[int]) -> None:
        self._stt = stt
        self._prompt = prompt
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
        return await self._stt.transcribe(audio, self._prompt)

    async def aclose(self) -> None:
        self._closed = True
        self._chunks.clear()
