"""The asyncio side of a speculative reply (bookkeeping: :mod:`voco.engine.speculative`).

:class:`Prefetch` runs the first model call and the synthesis of its first
clause into buffers that reach no client — and, when that model call asks only
for read-only tools (:func:`~voco.engine.speculative.may_run_speculatively`),
runs them marked ``speculative`` and makes the next model call too, up to
``MAX_STEPS``. :class:`PrimedLLM`, :class:`PrimedTTS` and :class:`PrimedPort`
are what the confirmed turn's response uses instead of the runtime's providers
and MCP port: they replay those buffers (live, if the speculation is still
producing) for the calls that ask exactly the same thing, and pass every other
call through. So the graph run after confirmation is the ordinary one — its
checkpoint, its record (a served tool call is recorded as the turn's: it ran
for it), its usage — only faster.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

from voco.agent.context import McpOutcome, McpPort
from voco.agent.router import extract_features, route_model
from voco.agent.tools import tool_result_content
from voco.common.clauses import ClauseSplitter
from voco.engine.speculative import Speculation, may_run_speculatively
from voco.engine.spoken_text import speakable
from voco.providers.base import (
    LLM,
    TTS,
    ChatMessage,
    Finished,
    LLMEvent,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    ToolSpec,
)

T = TypeVar("T")
# a speculative tool call: (call id, action, payload) → its outcome, marked speculative
SpecTool = Callable[[str, str, dict[str, Any]], Awaitable[McpOutcome]]
MAX_STEPS = 3  # model calls one speculation may make (read-only tool steps between)
REFUSED = "needs_confirmed_turn"  # the runtime's answer to a call that would need approval


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
        tool_call: SpecTool | None = None,
    ) -> None:
        self.spec = spec
        self.events: Tail[LLMEvent] = Tail()
        self.later: list[Tail[LLMEvent]] = []  # the model calls after read-only tool steps
        self.outcomes: dict[str, asyncio.Future[McpOutcome]] = {}  # by tool call id
        self.pcm: Tail[bytes] = Tail()
        self._llm, self._tts = llm, tts
        self._system, self._tools = system, tools
        self._clock = clock
        self._tool_call = tool_call
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
            messages, events = self.spec.messages, self.events
            for step in range(MAX_STEPS):
                calls: list[ToolCall] = []
                spoke = False
                try:
                    stream = self._llm.stream(
                        system=self._system,
                        messages=messages,
                        tools=self._tools,
                        tier=self.spec.tier,
                    )
                    async with contextlib.aclosing(stream):  # type: ignore[type-var]
                        async for ev in stream:
                            events.add(ev)
                            if isinstance(ev, TextDelta) and ev.text:
                                spoke = True
                                first = splitter.feed(ev.text) if synth is None else []
                                if first:
                                    synth = self._synthesize(first[0])
                            elif isinstance(ev, ToolCallEvent):
                                calls.append(ev.call)
                            if isinstance(ev, Finished):
                                break
                    events.close()
                except Exception as exc:  # replayed as the same failure, where it is followed
                    events.close(exc)
                    break
                if synth is None and spoke and not calls:  # the whole reply, uncut:
                    rest = splitter.flush()  # the Speaker's finish() flushes the same
                    synth = self._synthesize(rest[0]) if rest else None
                if spoke or step == MAX_STEPS - 1 or not self._may_run(calls):
                    break  # words to say (or tools that must wait): the turn's to finish
                more = await self._run_tools(messages, calls)
                if more is None:
                    break
                messages, events = more
            if synth is not None:
                await synth
            else:
                self.pcm.close()
        finally:  # cancelled: only ever unfollowed (discarded, or its response ended)
            for tail in (self.events, *self.later):
                tail.close(asyncio.CancelledError())
            self.pcm.close(asyncio.CancelledError())
            if synth is not None and not synth.done():
                synth.cancel()
            for fut in self.outcomes.values():
                if not fut.done():
                    fut.cancel()

    def _may_run(self, calls: list[ToolCall]) -> bool:
        return self._tool_call is not None and may_run_speculatively(calls)

    async def _run_tools(
        self, messages: list[ChatMessage], calls: list[ToolCall]
    ) -> tuple[list[ChatMessage], Tail[LLMEvent]] | None:
        """One step of read-only tool calls, all at once as the graph's jobs node
        runs them; then the next model call's conversation (exactly what the
        graph's will be: it is served only if it asks the same) and its buffer
        — or None if the runtime refused one (it needs approval: the confirmed
        turn asks). The outcomes are published only once the next call is in
        place, so a confirmed turn that waited for them finds it."""
        assert self._tool_call is not None
        loop = asyncio.get_running_loop()
        for c in calls:
            self.spec.tools[c.id] = (c.name, c.arguments)
            self.outcomes[c.id] = loop.create_future()

        outcomes = await asyncio.gather(
            *(self._tool_call(c.id, c.name, c.arguments) for c in calls)
        )
        refused = any(o.code == REFUSED for o in outcomes)
        more = None if refused else self._next_step(messages, calls, outcomes)
        for c, o in zip(calls, outcomes, strict=True):
            self.outcomes[c.id].set_result(o)
        return more

    def _next_step(
        self, messages: list[ChatMessage], calls: list[ToolCall], outcomes: list[McpOutcome]
    ) -> tuple[list[ChatMessage], Tail[LLMEvent]]:
        reply = ChatMessage("assistant", "", tool_calls=tuple(calls))
        results = [
            ChatMessage(
                "tool",
                tool_result_content(o.status, o.result, o.error, o.code),
                tool_call_id=c.id,
                is_error=o.status != "success",
            )
            for c, o in zip(calls, outcomes, strict=True)
        ]
        # through the checkpoint's form, as the graph's next call will read them
        added = [ChatMessage.from_dict(x.to_dict()) for x in (reply, *results)]
        self.spec.later.append(nxt := [*messages, *added])
        events: Tail[LLMEvent] = Tail()
        self.later.append(events)
        return nxt, events

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
        tool_call: SpecTool | None = None,
    ) -> None:
        self._llm, self._tts = llm, tts
        self._system, self._tools = system, tools
        self._clock = clock
        self._tool_call = tool_call  # None: no tool runs speculatively
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
            spec,
            self._llm,
            self._tts,
            system=self._system,
            tools=self._tools,
            clock=self._clock,
            tool_call=self._tool_call,
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
        if (i := self._pre.spec.serves_later(messages, tier)) is not None:
            return self._pre.later[i].follow()
        return self._inner.stream(system=system, messages=messages, tools=tools, tier=tier)


class PrimedPort(McpPort):
    """The session's MCP port, except for the read-only calls the speculation
    already ran for exactly this turn: their outcome (awaited if still on its
    way) instead of running them twice. A call the runtime refused
    speculatively (it needs approval) is sent for real now."""

    def __init__(self, inner: McpPort, prefetch: Prefetch) -> None:
        self._inner, self._pre = inner, prefetch

    async def call(self, call_id: str, action: str, payload: dict[str, Any]) -> McpOutcome:
        fut = self._pre.outcomes.get(call_id)
        if fut is not None and self._pre.spec.serves_tool(call_id, action, payload):
            try:
                outcome: McpOutcome | None = await asyncio.shield(fut)
            except asyncio.CancelledError:
                if not fut.cancelled():  # this response was cancelled, not the speculation
                    raise
                outcome = None  # the speculation stopped before its answer: run it now
            if outcome is not None and outcome.code != REFUSED:
                return outcome
        return await self._inner.call(call_id, action, payload)


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
