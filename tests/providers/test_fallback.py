"""Fallback chains with hand-written failing providers."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fakes import FailingLLM, ScriptedLLM
from voco.agent.command_mode import CommandModeLLM
from voco.providers.base import (
    STT,
    TTS,
    ChatMessage,
    ProviderError,
    SpeechStream,
    STTCapabilities,
    TextDelta,
    TTSCapabilities,
)
from voco.providers.fallback import FallbackLLM, FallbackSTT, FallbackTTS
from voco.providers.registry import make_llm


class ToneTTS(TTS):
    capabilities = TTSCapabilities(streaming=False)

    def __init__(self, rate: int, fail_after: int | None = None) -> None:
        self.name, self.sample_rate, self.fail_after = f"tone{rate}", rate, fail_after

    async def synthesize(self, text: str):
        for i in range(3):
            if self.fail_after is not None and i >= self.fail_after:
                raise ProviderError(self.name, "dropped")
            yield np.full(self.sample_rate // 10, 1000, dtype="<i2").tobytes()


class EchoStream(SpeechStream):
    def __init__(self, fail_at_finish: bool) -> None:
        self.audio = bytearray()
        self.fail = fail_at_finish

    async def push(self, pcm: bytes) -> None:
        self.audio += pcm

    async def finish(self) -> str:
        if self.fail:
            raise ProviderError("flaky", "socket closed")
        return f"{len(self.audio)} bytes"

    async def aclose(self) -> None:
        pass


class EchoSTT(STT):
    capabilities = STTCapabilities(streaming=True, interim_results=False)

    def __init__(self, name: str, fail_at_finish=False, fail_open=False) -> None:
        self.name, self.fail_at_finish, self.fail_open = name, fail_at_finish, fail_open

    async def open_stream(self, on_partial=None):
        if self.fail_open:
            raise ProviderError(self.name, "connect refused")
        return EchoStream(self.fail_at_finish)


async def collect(llm):
    return [
        e
        async for e in llm.stream(
            system="", messages=[ChatMessage("user", "hi")], tools=[], tier="haiku"
        )
    ]


async def test_llm_falls_back_before_any_output():
    events = await collect(FallbackLLM(FailingLLM(), ScriptedLLM()))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "You said: hi"


async def test_llm_does_not_switch_mid_answer():
    class HalfLLM(ScriptedLLM):
        async def stream(self, **kw):
            yield TextDelta("partial ")
            raise ProviderError("half", "dropped")

    with pytest.raises(ProviderError):
        await collect(FallbackLLM(HalfLLM(), ScriptedLLM()))


async def test_tts_fallback_is_resampled_to_the_primary_rate():
    tts = FallbackTTS(ToneTTS(22050, fail_after=0), ToneTTS(24000))
    assert tts.sample_rate == 22050
    pcm = b"".join([c async for c in tts.synthesize("x")])
    assert abs(len(pcm) // 2 - 3 * 2205) <= 8


async def test_tts_mid_clause_failure_is_raised():
    tts = FallbackTTS(ToneTTS(22050, fail_after=1), ToneTTS(24000))
    with pytest.raises(ProviderError):
        _ = [c async for c in tts.synthesize("x")]


async def test_stt_replays_the_utterance_into_the_fallback():
    stt = FallbackSTT(EchoSTT("flaky", fail_at_finish=True), EchoSTT("backup"))
    s = await stt.open_stream()
    for _ in range(5):
        await s.push(b"\x00" * 1024)
    assert await s.finish() == "5120 bytes"


async def test_stt_fallback_on_open():
    stt = FallbackSTT(EchoSTT("down", fail_open=True), EchoSTT("backup"))
    s = await stt.open_stream()
    await s.push(b"\x00\x00")
    assert await s.finish() == "2 bytes"


def test_registry_builds_chains_and_names_missing_keys(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ProviderError, match="ANTHROPIC_API_KEY"):
        make_llm("anthropic")
    assert make_llm("auto", offline=CommandModeLLM).name == "command-mode"
    with pytest.raises(ProviderError, match="command mode is built by the engine runtime"):
        make_llm("command")  # the providers layer cannot build the agent's LLM itself
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    chain = make_llm("auto", offline=CommandModeLLM)
    assert isinstance(chain, FallbackLLM) and chain.fallback.name == "command-mode"
    three = make_llm("anthropic, command,command", offline=CommandModeLLM)
    assert isinstance(three, FallbackLLM) and isinstance(three.fallback, FallbackLLM)
    assert three.primary.name == "anthropic" and three.fallback.fallback.name == "command-mode"
    with pytest.raises(ProviderError, match="unknown LLM"):
        make_llm("gpt-17")
