"""The asyncio side of a speculative reply (bookkeeping: :mod:`voco.engine.speculative`).

:class:`Prefetch` runs the first model call and the synthesis of its first
clause into buffers that reach no client. :class:`PrimedLLM` and
:class:`PrimedTTS` are what the confirmed turn's response uses instead of the
runtime's providers: they replay those buffers (live, if the speculation is
still producing) for the one call that asks exactly the same thing, and pass
every other call through. So the graph run after confirmation is the ordinary
one — its checkpoint, its record, its usage — only faster.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

from voco.agent.router import extract_features, route_model
from voco.common.clauses import ClauseSplitter
from voco.engine.speculative import Speculation
from voco.engine.spoken_text import speakable
from voco.providers.base import (
    LLM,
    TTS,
    ChatMessage,
    Finished,
    LLMEvent,
    TextDelta,
    ToolSpec,
)

T = TypeVar("T")


class Tail(Generic[T]):
    """An append-only buffer that readers follow live until it is closed."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self.closed = False
        self.error: BaseException | None = None
        self._changed = asyncio.Event()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def add(self, item: T) -> None:
        self.items.append(item)
        self._wake()

    def close(self, error: BaseException | None = None) -> None:
        if not self.closed:
            self.closed, self.error = True, error
            self._wake()

    async def follow(self) -> AsyncIterator[T]:
        i = 0
        while True:
            while i < len(self.items):
                yield self.items[i]
                i += 1
            if self.closed:
                if self.error is not None:
                    raise self.error
                return
            await self._changed.wait()


class Prefetch:
    """One speculative reply being prepared (a task of its own, cancellable)."""

    def __init__(
        self,
        spec: Speculation,
        llm: LLM,
        tts: TTS,
        *,
        system: str,
        tools: list[ToolSpec],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.events: Tail[LLMEvent] = Tail()
        self.pcm: Tail[bytes] = Tail()
        self._llm, self._tts = llm, tts
        self._system, self._tools = system, tools
        self._clock = clock
        self.started_at = clock()  # engine/turn_timeline.py reads these two
        self.first_pcm_at: float | None = None
        self.task = asyncio.ensure_future(self._run())

    def cancel(self) -> None:
        """Stop the vendors' work (the user went on, or the reply is over)."""
        self.spec.discard()
        if not self.task.done():
            self.task.cancel()

    async def _run(self) -> None:
        splitter = ClauseSplitter()  # cuts exactly where the Speaker's will
        synth: asyncio.Task[None] | None = None
        try:
            try:
                stream = self._llm.stream(
                    system=self._system,
                    messages=self.spec.messages,
                    tools=self._tools,
                    tier=self.spec.tier,
                )
                async with contextlib.aclosing(stream):  # type: ignore[type-var]
                    async for ev in stream:
                        self.events.add(ev)
                        if isinstance(ev, TextDelta) and synth is None:
                            first = splitter.feed(ev.text)
                            if first:
                                synth = self._synthesize(first[0])
                        if isinstance(ev, Finished):
                            break
                self.events.close()
            except Exception as exc:  # replayed as the same failure, where it is followed
                self.events.close(exc)
            if synth is not None:
                await synth
            else:
                self.pcm.close()
        finally:  # cancelled: only ever unfollowed (discarded, or its response ended)
            self.events.close(asyncio.CancelledError())
            self.pcm.close(asyncio.CancelledError())
            if synth is not None and not synth.done():
                synth.cancel()

    def _synthesize(self, clause: str) -> asyncio.Task[None]:
        self.spec.clause = spoken = speakable(clause)

        async def run() -> None:
            try:
                async for chunk in self._tts.synthesize(spoken):
                    if self.first_pcm_at is None:
                        self.first_pcm_at = self._clock()
                    self.pcm.add(chunk)
                self.pcm.close()
            except Exception as exc:
                self.pcm.close(exc)

        return asyncio.ensure_future(run())


class PrefetchSlot:
    """A session's one speculative reply at a time (the newest pause wins)."""

    def __init__(
        self,
        llm: LLM,
        tts: TTS,
        *,
        system: str,
        tools: list[ToolSpec],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._llm, self._tts = llm, tts
        self._system, self._tools = system, tools
        self._clock = clock
        self.current: Prefetch | None = None
        self._for: object | None = None  # the pause being prepared for

    async def prepare(self, text: str, history: Callable[[], Awaitable[list[ChatMessage]]]) -> None:
        """Start the reply to ``text`` after ``history`` (the stored conversation),
        unless the turn was confirmed or went on while that was being read."""
        self.drop()
        self._for = pause = object()
        msgs = [*await history(), ChatMessage("user", text)]
        if self._for is not pause:
            return
        tier = route_model(extract_features(msgs, bool(self._tools))).tier  # as the graph will
        spec = Speculation(text, msgs, tier)
        self.current = Prefetch(
            spec, self._llm, self._tts, system=self._system, tools=self._tools, clock=self._clock
        )

    def drop(self) -> None:
        pre, self.current, self._for = self.current, None, None
        if pre is not None:
            pre.cancel()

    def take(self, text: str) -> Prefetch | None:
        """The turn was confirmed as ``text``: the prefetch if it answers it."""
        pre, self.current, self._for = self.current, None, None
        if pre is not None and pre.spec.take(text):
            return pre
        if pre is not None:
            pre.cancel()
        return None


class PrimedLLM(LLM):
    """The runtime's model, except for the one call the speculation made."""

    def __init__(self, inner: LLM, prefetch: Prefetch) -> None:
        self._inner, self._pre = inner, prefetch
        self.name = inner.name
        self.capabilities = inner.capabilities

    def model_id(self, tier: str) -> str:
        return self._inner.model_id(tier)

    def stream(
        self, *, system: str, messages: list[ChatMessage], tools: list[ToolSpec], tier: str
    ) -> AsyncIterator[LLMEvent]:
        if self._pre.spec.serves_llm(messages, tier):
            return self._pre.events.follow()
        return self._inner.stream(system=system, messages=messages, tools=tools, tier=tier)


class PrimedTTS(TTS):
    """The runtime's voice, except for the clause the speculation synthesized."""

    def __init__(self, inner: TTS, prefetch: Prefetch) -> None:
        self._inner, self._pre = inner, prefetch
        self.name = inner.name
        self.capabilities = inner.capabilities
        self.sample_rate = inner.sample_rate

    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        if self._pre.spec.serves_tts(text):
            return self._pre.pcm.follow()
        return self._inner.synthesize(text)
