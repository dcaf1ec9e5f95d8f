"""Choose providers by name (``voco serve --llm/--stt/--tts``).

Embedded, offline implementations are the defaults; cloud ones are imported
only when asked for, and fail with a clear message when their key is missing.
"""

from __future__ import annotations

import os

from voco.providers.base import LLM, STT, TTS, ProviderError

STT_NAMES = ("whisper", "whisper:base", "whisper:tiny", "deepgram")
TTS_NAMES = ("piper", "cartesia")
LLM_NAMES = ("auto", "command", "anthropic", "openai")


def _need(var: str, provider: str) -> None:
    if not os.environ.get(var):
        raise ProviderError(provider, f"set {var} to use {provider}", retryable=False)


def make_stt(name: str) -> STT:
    """``name`` may be a comma-separated fallback chain, e.g. ``deepgram,whisper``."""
    if "," in name:
        from voco.providers.fallback import FallbackSTT

        first, rest = name.split(",", 1)
        return FallbackSTT(make_stt(first.strip()), make_stt(rest))
    if name in ("whisper", "whisper:base", "whisper:tiny"):
        # tiny.en stays the default: base measured no better here (bench_stt.py,
        # espeak/Piper voices) at twice the CPU, and misheard "readme" in the e2e test
        from voco.providers.whisper_stt import WhisperSTT

        return WhisperSTT(model="base" if name == "whisper:base" else "tiny")
    if name == "deepgram":
        _need("DEEPGRAM_API_KEY", "deepgram")
        from voco.providers.deepgram_stt import DeepgramSTT

        return DeepgramSTT()
    raise ProviderError("stt", f"unknown STT {name!r}; choose one of {', '.join(STT_NAMES)}")


def make_tts(name: str) -> TTS:
    if "," in name:
        from voco.providers.fallback import FallbackTTS

        first, rest = name.split(",", 1)
        return FallbackTTS(make_tts(first.strip()), make_tts(rest))
    if name == "piper":
        from voco.providers.piper_tts import PiperTTS

        return PiperTTS()
    if name == "cartesia":
        _need("CARTESIA_API_KEY", "cartesia")
        from voco.providers.cartesia_tts import CartesiaTTS

        return CartesiaTTS()
    raise ProviderError("tts", f"unknown TTS {name!r}; choose one of {', '.join(TTS_NAMES)}")


def make_llm(name: str) -> LLM:
    if "," in name:
        from voco.providers.fallback import FallbackLLM

        first, rest = name.split(",", 1)
        return FallbackLLM(make_llm(first.strip()), make_llm(rest))
    if name == "auto":  # a configured model, with the offline command mode behind it
        return make_llm("anthropic,command" if os.environ.get("ANTHROPIC_API_KEY") else "command")
    if name == "command":
        from voco.agent.command_mode import CommandModeLLM

        return CommandModeLLM()
    if name == "anthropic":
        _need("ANTHROPIC_API_KEY", "anthropic")
        from voco.providers.anthropic_llm import AnthropicLLM

        return AnthropicLLM()
    if name == "openai":
        _need("VOCO_OPENAI_BASE_URL", "openai")
        from voco.providers.openai_llm import OpenAICompatibleLLM

        return OpenAICompatibleLLM()
    raise ProviderError("llm", f"unknown LLM {name!r}; choose one of {', '.join(LLM_NAMES)}")
