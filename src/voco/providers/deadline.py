"""Deadlines on a model call: time to first event and total time.

Why: the SDKs' timeouts are per read and retried, so a server that accepts
and never answers costs ~90 s of silence, and one that keeps sending SSE
``ping`` events (which the SDK swallows) never times out at all. This wrapper
bounds what the user can wait for, whatever the vendor does; the expiry is a
retryable :class:`ProviderError`, so a :class:`~voco.providers.fallback.FallbackLLM`
around it takes over when the primary has not said anything yet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from voco.providers.base import LLM, ChatMessage, LLMEvent, ProviderError, ToolSpec
from voco.providers.fallback import FallbackLLM


class DeadlineLLM(LLM):
    def __init__(self, inner: LLM, *, first_token_s: float, total_s: float) -> None:
        if first_token_s <= 0 or total_s <= 0:
            raise ValueError("deadlines must be positive")
        self.inner = inner
        self.first_token_s = first_token_s
        self.total_s = total_s
        self.name = inner.name
        self.capabilities = inner.capabilities

    def model_id(self, tier: str) -> str:
        return self.inner.model_id(tier)

    async def stream(
        self, *, system: str, messages: list[ChatMessage], tools: list[ToolSpec], tier: str
    ) -> AsyncIterator[LLMEvent]:
        loop = asyncio.get_running_loop()
        end = loop.time() + self.total_s
        first = True
        events = self.inner.stream(system=system, messages=messages, tools=tools, tier=tier)
        try:
            while True:
                left = end - loop.time()
                wait = min(left, self.first_token_s) if first else left
                try:
                    async with asyncio.timeout(max(0.0, wait)):
                        ev = await anext(events)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    if first and wait < left:
                        raise ProviderError(
                            self.name, f"no reply within {self.first_token_s:g} s"
                        ) from None
                    raise ProviderError(
                        self.name, f"reply took longer than {self.total_s:g} s"
                    ) from None
                first = False
                yield ev
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def aclose(self) -> None:
        await self.inner.aclose()


def with_deadlines(llm: LLM, *, first_token_s: float, total_s: float) -> LLM:
    """Bound every link of a fallback chain on its own, so a primary that hangs
    fails in time for the fallback to answer."""
    if isinstance(llm, DeadlineLLM):
        return llm
    if isinstance(llm, FallbackLLM):
        return FallbackLLM(
            with_deadlines(llm.primary, first_token_s=first_token_s, total_s=total_s),
            with_deadlines(llm.fallback, first_token_s=first_token_s, total_s=total_s),
        )
    return DeadlineLLM(llm, first_token_s=first_token_s, total_s=total_s)
