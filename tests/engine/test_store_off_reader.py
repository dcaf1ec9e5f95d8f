"""The reader answers pings whatever the store does (issue 15 §4): a cut
reply's record is a graph round trip, and while the checkpointer hangs the
session still answers; the record lands, once, when the store comes back."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.memory import InMemorySaver

from tests.fakes import LONG_REPLY, ScriptedLLM
from voco.local.engine_client import EngineClient
from voco.protocol import messages as m

pytestmark = pytest.mark.timeout(90)


class StallingSaver(InMemorySaver):
    """The in-memory checkpointer, except that while ``stall()`` is in force
    every async call waits (a stalled database) until ``resume()``."""

    def __init__(self) -> None:
        super().__init__()
        self._open = asyncio.Event()
        self._open.set()
        self.stalled_calls = 0
        self.entered = asyncio.Event()  # a call is waiting on the stall

    def stall(self) -> None:
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    async def _wait(self) -> None:
        if not self._open.is_set():
            self.stalled_calls += 1
            self.entered.set()
            await self._open.wait()

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        await self._wait()
        return await super().aget_tuple(config)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        await self._wait()
        return await super().aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._wait()
        await super().aput_writes(config, writes, task_id, task_path)


async def recv_until(c: EngineClient, pred: Any) -> Any:
    async def loop() -> Any:
        while True:
            r = await c.recv()
            if r.message is not None and pred(r.message):
                return r.message

    return await asyncio.wait_for(loop(), 60)


async def test_pings_are_answered_while_the_store_hangs(engine_factory: Any) -> None:
    saver = StallingSaver()
    async with engine_factory(ScriptedLLM(lambda msgs: [LONG_REPLY]), checkpointer=saver) as eng:
        c = await EngineClient.connect(eng.url, m.SessionStart(token=eng.token()))
        thread = c.ready.thread_id
        await c.send(m.TextInput(text="tell me everything"))
        seen: set[type] = set()  # agent.done (the run has stored it) and audio.start
        await recv_until(c, lambda x: seen.add(type(x)) or {m.AgentDone, m.AudioStart} <= seen)
        saver.stall()
        await c.send(m.Interrupt())  # its record is a graph round trip: it hangs
        halt = await recv_until(c, lambda x: isinstance(x, m.HaltAudio))
        await recv_until(c, lambda x: isinstance(x, m.AgentDone) and x.interrupted)
        await c.send(m.AudioPlayed(response_id=halt.response_id, played_ms=0))
        await asyncio.wait_for(saver.entered.wait(), 30)  # the store is stuck on it…
        for i in range(3):  # …and the session still answers
            await c.send(m.Ping(id=f"p{i}"))
            assert await recv_until(c, lambda x: isinstance(x, m.Pong)) == m.Pong(id=f"p{i}")
        saver.resume()
        await c.send(m.ThreadHistoryRequest())  # answered after the session's writes
        await recv_until(c, lambda x: isinstance(x, m.ThreadHistory))
        state = await eng.runtime.graph.aget_state({"configurable": {"thread_id": thread}})
        await c.close()
    said = state.values["messages"]
    cut = [x for x in said if x["role"] == "assistant" and x["interrupted"]]
    assert len(cut) == 1 and cut[0]["content"] == ""  # once, with the client's report
    assert said[-1] is cut[0] or said[-1] == cut[0]
