"""A cut never makes the reader wait, and its record never races another run
(issue 15 §4 and §1): the cancelled response may be slow to stop — the reader
still answers pings meanwhile — and the interrupted reply's record is a
read-modify-write of the thread's state, taken under the thread's run lock so
another session's run on the same thread cannot overwrite it.

Event-based throughout: barriers in the fakes, no clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.memory import InMemorySaver

from tests.engine.test_store_off_reader import recv_until
from tests.fakes import LONG_REPLY, ScriptedLLM
from voco.local.engine_client import EngineClient
from voco.protocol import messages as m
from voco.providers.base import ChatMessage, LLMEvent, ToolSpec
from voco.store.tenancy import MemoryTenantStore

pytestmark = pytest.mark.timeout(120)


class SlowToStopLLM(ScriptedLLM):
    """Says its first sentence, then waits mid-reply; cancelled, it *ignores*
    the cancellation until ``release`` (a provider closing its HTTP stream)."""

    def __init__(self) -> None:
        super().__init__()
        self.stopping = asyncio.Event()  # the cancel reached it
        self.release = asyncio.Event()

    async def stream(
        self, *, system: str, messages: list[ChatMessage], tools: list[ToolSpec], tier: str
    ) -> AsyncIterator[LLMEvent]:
        inner = super().stream(system=system, messages=messages, tools=tools, tier=tier)
        first = "Here is the first sentence of a reply that will be cut. "
        self._script = lambda msgs: [first]
        try:
            async for ev in inner:
                if not hasattr(ev, "text"):
                    break  # Finished: hold the reply open instead
                yield ev
            await asyncio.Event().wait()  # more words, some day
        except asyncio.CancelledError:
            self.stopping.set()
            while not self.release.is_set():
                try:
                    await self.release.wait()
                except asyncio.CancelledError:
                    continue  # ignored, on purpose
            raise


async def test_pings_are_answered_while_the_cut_response_is_slow_to_stop(
    engine_factory: Any,
) -> None:
    llm = SlowToStopLLM()
    async with engine_factory(llm) as eng:
        c = await EngineClient.connect(eng.url, m.SessionStart(token=eng.token()))
        thread = c.ready.thread_id
        await c.send(m.TextInput(text="tell me something"))
        start = await recv_until(c, lambda x: isinstance(x, m.AudioStart))
        await c.send(m.Interrupt())
        await asyncio.wait_for(llm.stopping.wait(), 60)  # cancelled, and not stopping
        for i in range(3):  # the reader is free: it answers
            await c.send(m.Ping(id=f"p{i}"))
            assert await recv_until(c, lambda x: isinstance(x, m.Pong)) == m.Pong(id=f"p{i}")
        assert not llm.release.is_set()  # all of that while the task was still stuck
        llm.release.set()
        await c.send(m.AudioPlayed(response_id=start.response_id, played_ms=0))
        await c.send(m.ThreadHistoryRequest())  # answered after the session's writes
        await recv_until(c, lambda x: isinstance(x, m.ThreadHistory))
        state = await eng.runtime.graph.aget_state({"configurable": {"thread_id": thread}})
        await c.close()
    said = state.values["messages"]
    cut = [x for x in said if x["role"] == "assistant"]
    assert len(cut) == 1 and cut[0]["interrupted"] and cut[0]["content"] == ""


# --------------------------------------------------- two sessions, one thread


class GatedLLM(ScriptedLLM):
    """LONG_REPLY, except that a turn saying "second tab" waits for ``gate``
    (its run holds the thread's run lock all that time)."""

    def __init__(self) -> None:
        super().__init__(
            lambda msgs: ["Second answer." if "tab" in msgs[-1].content else LONG_REPLY]
        )
        self.waiting = asyncio.Event()
        self.gate = asyncio.Event()

    async def stream(
        self, *, system: str, messages: list[ChatMessage], tools: list[ToolSpec], tier: str
    ) -> AsyncIterator[LLMEvent]:
        if messages[-1].content == "second tab":
            self.waiting.set()
            await self.gate.wait()
        async for ev in super().stream(system=system, messages=messages, tools=tools, tier=tier):
            yield ev


class UpdateSignallingSaver(InMemorySaver):
    """The in-memory checkpointer; ``updated`` is set when a state update (not
    a run's step) is stored — the cut record landing."""

    def __init__(self) -> None:
        super().__init__()
        self.updated = asyncio.Event()

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        out = await super().aput(config, checkpoint, metadata, new_versions)
        if metadata.get("source") == "update":
            self.updated.set()
        return out


async def test_the_cut_record_waits_for_the_other_sessions_run(engine_factory: Any) -> None:
    llm, saver, tenants = GatedLLM(), UpdateSignallingSaver(), MemoryTenantStore()
    async with engine_factory(llm, checkpointer=saver, tenants=tenants) as eng:
        token = eng.token()
        a = await EngineClient.connect(eng.url, m.SessionStart(token=token))
        thread = a.ready.thread_id
        await a.send(m.TextInput(text="tell me everything"))
        seen: set[type] = set()  # agent.done (A's run is stored) and audio.start
        await recv_until(a, lambda x: seen.add(type(x)) or {m.AgentDone, m.AudioStart} <= seen)
        b = await EngineClient.connect(eng.url, m.SessionStart(token=token, thread_id=thread))
        await b.send(m.TextInput(text="second tab"))
        await asyncio.wait_for(llm.waiting.wait(), 60)  # B's run is mid-way, lock held
        await a.send(m.Interrupt())  # A's cut record: read, modify, write the thread
        await recv_until(a, lambda x: isinstance(x, m.AgentDone) and x.interrupted)
        # either the record went in under B's feet, or it queued behind B's run
        racing = [asyncio.ensure_future(e.wait()) for e in (saver.updated, tenants.queue.waited)]
        await asyncio.wait(racing, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        for f in racing:
            f.cancel()
        llm.gate.set()  # B's run goes on and stores its turn
        await recv_until(b, lambda x: isinstance(x, m.AgentDone))
        await a.send(m.ThreadHistoryRequest())  # answered after A's writes
        await recv_until(a, lambda x: isinstance(x, m.ThreadHistory))
        state = await eng.runtime.graph.aget_state({"configurable": {"thread_id": thread}})
        await a.close()
        await b.close()
    said = state.values["messages"]
    users = [i for i, x in enumerate(said) if x["role"] == "user"]
    assert [said[i]["content"] for i in users] == ["tell me everything", "second tab"]
    first, second = said[users[0] + 1 : users[1]], said[users[1] + 1 :]
    assert [x["content"] for x in second] == ["Second answer."]  # B's turn kept…
    assert any(x.get("interrupted") for x in first)  # …and A's cut too:
    assert all(x["content"] != LONG_REPLY for x in first)  # not the unheard full reply
