"""Fallback chains: ``--llm anthropic,command`` uses the second when the first fails.

A fallback is only taken when switching cannot garble what the user already
got: for LLM and TTS, when the primary fails before yielding anything; for
STT, at any point, because the utterance's audio is kept and replayed into the
fallback stream.

A fallback must never hide a failure: an error that retrying cannot fix
(``retryable=False``: a bad API key, a rejected request) is raised as it is, so
the user hears what is wrong instead of a worse model's answer; and an LLM
fallback announces itself with a :class:`~voco.providers.base.FallbackUsed`
event (the session sends a non-fatal ``provider_fallback`` error) and reports
the fallback's model in its ``Finished``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

import numpy as np
import soxr

from voco.providers.base import (
    LLM,
    STT,
    TTS,
    ChatMessage,
    FallbackUsed,
    LLMEvent,
    PartialCallback,
    ProviderError,
    SpeechStream,
    STTCapabilities,
    ToolSpec,
)

log = logging.getLogger("voco.providers")

MAX_REPLAY_BYTES = 120 * 16000 * 2  # two minutes of 16 kHz PCM16


class FallbackLLM(LLM):
    def __init__(self, primary: LLM, fallback: LLM) -> None:
        self.primary, self.fallback = primary, fallback
        self.name = f"{primary.name}>{fallback.name}"
        self.capabilities = primary.capabilities

    def model_id(self, tier: str) -> str:
        return self.primary.model_id(tier)

    async def stream(
        self, *, system: str, messages: list[ChatMessage], tools: list[ToolSpec], tier: str
    ) -> AsyncIterator[LLMEvent]:
        started = False
        try:
            async for ev in self.primary.stream(
                system=system, messages=messages, tools=tools, tier=tier
            ):
                started = True
                yield ev
            return
        except ProviderError as exc:
            if started or not exc.retryable:
                raise
            log.warning(
                "LLM %s failed (%s); falling back to %s", self.primary.name, exc, self.fallback.name
            )
            reason = exc.message
        yield FallbackUsed(self.primary.name, self.fallback.name, reason)
        async for ev in self.fallback.stream(
            system=system, messages=messages, tools=tools, tier=tier
        ):
            yield ev

    async def aclose(self) -> None:
        await self.primary.aclose()
        await self.fallback.aclose()


class FallbackTTS(TTS):
    """Speaks at the primary's sample rate; fallback audio is resampled to it, so
    a response's encoder never sees two rates."""

    def __init__(self, primary: TTS, fallback: TTS) -> None:
        self.primary, self.fallback = primary, fallback
        self.name = f"{primary.name}>{fallback.name}"
        self.capabilities = primary.capabilities

    @property
    def sample_rate(self) -> int:  # type: ignore[override]
        return self.primary.sample_rate

    async def warmup(self) -> None:
        await self.primary.warmup()
        try:
            await self.fallback.warmup()
        except ProviderError as exc:
            log.warning("fallback TTS %s not ready: %s", self.fallback.name, exc)

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        started = False
        try:
            async for chunk in self.primary.synthesize(text):
                started = True
                yield chunk
            return
        except ProviderError as exc:
            if started or not exc.retryable:
                raise
            log.warning(
                "TTS %s failed (%s); falling back to %s", self.primary.name, exc, self.fallback.name
            )
        src, dst = self.fallback.sample_rate, self.primary.sample_rate
        rs = None if src == dst else soxr.ResampleStream(src, dst, 1, dtype="int16")
        async for chunk in self.fallback.synthesize(text):
            if rs is None:
                yield chunk
            else:
                yield rs.resample_chunk(np.frombuffer(chunk, dtype="<i2")).tobytes()
        if rs is not None:
            yield rs.resample_chunk(np.zeros(0, np.int16), last=True).tobytes()

    async def aclose(self) -> None:
        await self.primary.aclose()
        await self.fallback.aclose()


class FallbackSTT(STT):
    def __init__(self, primary: STT, fallback: STT) -> None:
        self.primary, self.fallback = primary, fallback
        self.name = f"{primary.name}>{fallback.name}"
        vocab = primary.capabilities.vocabulary or fallback.capabilities.vocabulary
        self.capabilities = STTCapabilities(
            primary.capabilities.streaming, primary.capabilities.interim_results, vocab
        )

    async def warmup(self) -> None:
        await self.primary.warmup()
        try:
            await self.fallback.warmup()
        except ProviderError as exc:
            log.warning("fallback STT %s not ready: %s", self.fallback.name, exc)

    async def open_stream(
        self, on_partial: PartialCallback | None = None, *, vocabulary: Sequence[str] = ()
    ) -> SpeechStream:
        try:
            stream = await _open(self.primary, on_partial, vocabulary)
        except ProviderError as exc:
            log.warning("STT %s failed (%s); using %s", self.primary.name, exc, self.fallback.name)
            return await _open(self.fallback, on_partial, vocabulary)
        return _ReplayStream(stream, self.fallback, on_partial, vocabulary)

    async def aclose(self) -> None:
        await self.primary.aclose()
        await self.fallback.aclose()


async def _open(
    stt: STT, on_partial: PartialCallback | None, vocabulary: Sequence[str]
) -> SpeechStream:
    """Pass the vocabulary only to a provider that says it takes one."""
    if vocabulary and stt.capabilities.vocabulary:
        return await stt.open_stream(on_partial, vocabulary=vocabulary)
    return await stt.open_stream(on_partial)


class _ReplayStream(SpeechStream):
    def __init__(
        self,
        primary: SpeechStream,
        fallback: STT,
        on_partial: PartialCallback | None,
        vocabulary: Sequence[str] = (),
    ):
        self._vocabulary = vocabulary
        self._s: SpeechStream = primary
        self._fallback: STT | None = fallback
        self._on_partial = on_partial
        self._audio = bytearray()

    async def _switch(self, exc: ProviderError) -> None:
        if self._fallback is None:
            raise exc
        log.warning("STT stream failed (%s); replaying the utterance into the fallback", exc)
        await self._s.aclose()
        self._s = await _open(self._fallback, self._on_partial, self._vocabulary)
        self._fallback = None
        await self._s.push(bytes(self._audio))

    async def push(self, pcm: bytes) -> None:
        if len(self._audio) < MAX_REPLAY_BYTES:
            self._audio += pcm
        try:
            await self._s.push(pcm)
        except ProviderError as exc:
            await self._switch(exc)

    async def preview(self) -> str | None:
        try:
            return await self._s.preview()
        except ProviderError:
            return None

    async def finish(self) -> str:
        try:
            return await self._s.finish()
        except ProviderError as exc:
            await self._switch(exc)
            return await self._s.finish()

    async def aclose(self) -> None:
        await self._s.aclose()
