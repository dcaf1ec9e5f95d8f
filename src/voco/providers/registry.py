"""Choose providers by name (``voco serve --llm/--stt/--tts``).

Embedded, offline implementations are the defaults; cloud ones are imported
only when asked for, and fail with a clear message when their key is missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from voco.providers.base import LLM, STT, TTS, ProviderError

STT_NAMES = ("whisper", "whisper:base", "whisper:tiny", "deepgram")
TTS_NAMES = ("piper", "cartesia")
LLM_NAMES = ("auto", "command", "anthropic", "openai")

P = TypeVar("P")


def _need(var: str, provider: str) -> None:
    if not os.environ.get(var):
        raise ProviderError(provider, f"set {var} to use {provider}", retryable=False)


def _chain(name: str, make_one: Callable[[str], P], fallback: Callable[[P, P], P]) -> P:
    """``a,b,c`` → ``fallback(a, fallback(b, c))``: one reading of a chain for all kinds."""
    first, _, rest = name.partition(",")
    if not rest:
        return make_one(first.strip())
    return fallback(make_one(first.strip()), _chain(rest, make_one, fallback))


def make_stt(name: str) -> STT:
    """``name`` may be a comma-separated fallback chain, e.g. ``deepgram,whisper``."""
    from voco.providers.fallback import FallbackSTT

    return _chain(name, _one_stt, FallbackSTT)


def make_tts(name: str) -> TTS:
    from voco.providers.fallback import FallbackTTS

    return _chain(name, _one_tts, FallbackTTS)


def make_llm(name: str, *, offline: Callable[[], LLM] | None = None) -> LLM:
    """``offline`` builds the ``command`` LLM: it lives in :mod:`voco.agent`, a layer
    above this one, so the caller that may import it (the engine runtime) hands it in."""
    from voco.providers.fallback import FallbackLLM

    if name == "auto":  # a configured model, with the offline command mode behind it
        name = "anthropic,command" if os.environ.get("ANTHROPIC_API_KEY") else "command"
    return _chain(name, lambda one: _one_llm(one, offline), FallbackLLM)


def _one_stt(name: str) -> STT:
    if name in ("whisper", "whisper:base", "whisper:tiny"):
        # base is the default: on the held-out corpus (bench_stt.py, 4 voices never
        # tuned on) it makes a fifth fewer errors than tiny.en, and tiny.en hears
        # a Piper "readme" as "Remi"/"Readney" on some syntheses; tiny stays selectable
        from voco.providers.whisper_stt import WhisperSTT

        return WhisperSTT(model="tiny" if name == "whisper:tiny" else "base")
    if name == "deepgram":
        _need("DEEPGRAM_API_KEY", "deepgram")
        from voco.providers.deepgram_stt import DeepgramSTT

        return DeepgramSTT()
    raise ProviderError("stt", f"unknown STT {name!r}; choose one of {', '.join(STT_NAMES)}")


def _one_tts(name: str) -> TTS:
    if name == "piper":
        from voco.providers.piper_tts import PiperTTS

        return PiperTTS()
    if name == "cartesia":
        _need("CARTESIA_API_KEY", "cartesia")
        from voco.providers.cartesia_tts import CartesiaTTS

        return CartesiaTTS()
    raise ProviderError("tts", f"unknown TTS {name!r}; choose one of {', '.join(TTS_NAMES)}")


def _one_llm(name: str, offline: Callable[[], LLM] | None) -> LLM:
    if name == "command":
        if offline is None:
            raise ProviderError(
                "llm",
                "command mode is built by the engine runtime (pass offline=)",
                retryable=False,
            )
        return offline()
    if name == "anthropic":
        _need("ANTHROPIC_API_KEY", "anthropic")
        from voco.providers.anthropic_llm import AnthropicLLM

        return AnthropicLLM()
    if name == "openai":
        _need("VOCO_OPENAI_BASE_URL", "openai")
        from voco.providers.openai_llm import OpenAICompatibleLLM

        return OpenAICompatibleLLM()
    raise ProviderError("llm", f"unknown LLM {name!r}; choose one of {', '.join(LLM_NAMES)}")
