"""Hand-written fakes that subclass our provider interfaces (never mocks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from voco.providers.base import (
    LLM,
    ChatMessage,
    Finished,
    LLMCapabilities,
    LLMEvent,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    ToolSpec,
)
from voco.store.tenancy import SessionGrant, TurnRecord


class ScriptedLLM(LLM):
    """Replies from a script: a function of the conversation → list of steps.

    A step is a string (streamed word by word, ``delay_s`` apart) or a
    ``ToolCall``. ``calls`` records every conversation it was shown.
    """

    name = "scripted"
    capabilities = LLMCapabilities(tool_calling=True, streaming=True)

    def __init__(
        self,
        script: Callable[[list[ChatMessage]], list[str | ToolCall]] | None = None,
        *,
        delay_s: float = 0.0,
        first_delay_s: float = 0.0,
        fail: Exception | None = None,
    ) -> None:
        self._first_delay = first_delay_s
        self._script = script or (lambda msgs: [f"You said: {msgs[-1].content}"])
        self._delay = delay_s
        self._fail = fail
        self.calls: list[list[ChatMessage]] = []
        self.cancelled = 0

    def model_id(self, tier: str) -> str:
        return f"scripted-{tier}"

    async def stream(
        self, *, system: str, messages: list[ChatMessage], tools: list[ToolSpec], tier: str
    ) -> AsyncIterator[LLMEvent]:
        self.calls.append(list(messages))
        if self._fail is not None:
            raise self._fail
        steps = self._script(messages)
        try:
            if self._first_delay:
                await asyncio.sleep(self._first_delay)
            used_tools = False
            for step in steps:
                if isinstance(step, ToolCall):
                    used_tools = True
                    yield ToolCallEvent(step)
                    continue
                words = step.split(" ")
                for i, w in enumerate(words):
                    if self._delay:
                        await asyncio.sleep(self._delay)
                    yield TextDelta(w + (" " if i < len(words) - 1 else ""))
            steps = []  # all said: closing the stream from here on is not a cut
            yield Finished("tool_use" if used_tools else "end_turn", self.model_id(tier))
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        except GeneratorExit:  # closed by its consumer before the end: abandoned too
            if steps:
                self.cancelled += 1
            raise


class FailingLLM(ScriptedLLM):
    def __init__(self) -> None:
        super().__init__(fail=ProviderError("scripted", "connection refused"))


LONG_REPLY = (
    "Here is a long answer so that there is plenty of audio to interrupt. "
    "The project has a source folder with the engine, the local runtime and the tests. "
    "The engine listens to your voice, transcribes it, thinks about it, and talks back. "
    "The local runtime runs every action in a sandbox and asks before anything risky. "
    "There is much more to say about the design, the protocol and the benchmarks."
)


class SignallingGrant(SessionGrant):
    """A real session grant that sets an event when a turn is recorded and/or
    when the session is released (sync points for protocol tests)."""

    def __init__(
        self,
        inner: SessionGrant,
        *,
        recorded: asyncio.Event | None = None,
        released: asyncio.Event | None = None,
    ) -> None:
        super().__init__(
            thread_id=inner.thread_id, user_id=inner.user_id, org_id=inner.org_id,
            notice=inner.notice,
        )  # fmt: skip
        self._inner, self._recorded, self._released = inner, recorded, released

    def run_lock(self) -> Any:
        return self._inner.run_lock()

    def record_turn(self, record: TurnRecord) -> None:
        self._inner.record_turn(record)
        if self._recorded is not None:
            self._recorded.set()

    async def release(self) -> None:
        await self._inner.release()
        if self._released is not None:
            self._released.set()
