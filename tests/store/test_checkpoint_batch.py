"""A graph run's checkpoint writes are one transaction at the end of its run
lock (the lease released in it), yet a long run's state still reaches the
database while the run waits — as a second engine would see it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from tests.fakes import ScriptedLLM
from tests.store.pgtools import fresh_database
from tests.store.test_postgres_store import AnsweringPort, HangingPort, RecordingEmitter, turn
from tests.store.test_tenants import principal, start
from voco.agent.context import AgentContext
from voco.agent.graph import build_graph
from voco.providers.base import ChatMessage, ToolCall
from voco.store import open_store
from voco.store.checkpoints import make_checkpointer
from voco.store.embedded import EmbeddedPostgres

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def store(pg: EmbeddedPostgres) -> AsyncIterator[Any]:
    async with open_store(fresh_database(pg.url), max_connections=8) as s:
        yield s


async def run_only(store: Any, text: str, thread: str) -> None:
    """A graph run without the state read that ``turn`` ends with."""
    graph = build_graph(store.checkpointer)
    ctx = AgentContext(ScriptedLLM(), RecordingEmitter(), AnsweringPort(None), "system")
    await graph.ainvoke(
        {
            "messages": [{"id": "u1", **ChatMessage("user", text).to_dict()}],
            "thread_id": thread, "user_id": "alice", "project_id": "p", "domain": None,
        },
        {"configurable": {"thread_id": thread}},
        context=ctx,
    )  # fmt: skip


def rows(url: str, sql: str, *args: Any) -> int:
    with psycopg.connect(url, autocommit=True) as c:
        row = c.execute(sql, args).fetchone()
        assert row is not None
        return int(row[0])


async def test_a_run_is_written_once_at_its_end_with_the_lease_release(store: Any) -> None:
    store.checkpointer.flush_after_s = 3600.0  # only the run's end sends
    user = str(uuid.uuid4())
    grant = await start(store.tenants, principal(user))
    thread = grant.thread_id
    count = "select count(*) from engine.checkpoints where thread_id = %s"
    async with grant.run_lock():
        await run_only(store, "hello", thread)
        # nothing sent yet, and the lease is held
        assert rows(store.url, count, thread) == 0
        assert rows(store.url, "select count(*) from engine.thread_runs where thread_id = %s",
                    thread) == 1  # fmt: skip
    # the run's newest state only (its super-steps folded: store/ckpt_squash.py)
    assert rows(store.url, count, thread) == 1
    assert rows(store.url, "select count(*) from engine.thread_runs where thread_id = %s",
                thread) == 0  # fmt: skip
    # a second engine (its own saver, no batch) reads the whole conversation
    other = await make_checkpointer(store.pool, setup=False)
    tup = await other.aget_tuple({"configurable": {"thread_id": thread}})
    assert tup is not None
    texts = [m["content"] for m in tup.checkpoint["channel_values"]["messages"]]
    assert "hello" in texts
    await grant.release()


async def test_a_read_inside_the_run_sees_what_the_run_wrote(store: Any) -> None:
    store.checkpointer.flush_after_s = 3600.0
    grant = await start(store.tenants, principal(str(uuid.uuid4())))
    async with grant.run_lock():
        state = await turn(store, ScriptedLLM(), "first", thread=grant.thread_id, msg_id="u1")
        assert state.values["messages"][0]["content"] == "first"
        # the read sent the buffer: a second engine sees it too, lock still held
        other = await make_checkpointer(store.pool, setup=False)
        assert await other.aget_tuple({"configurable": {"thread_id": grant.thread_id}})
    await grant.release()


async def test_an_action_awaiting_approval_reaches_the_database_while_the_run_waits(
    store: Any,
) -> None:
    """The engine could die while the user decides: the pending action must
    already be in the checkpoint, not in the run's buffer."""
    store.checkpointer.flush_after_s = 0.0

    def script(msgs: list[ChatMessage]) -> list[str | ToolCall]:
        return [ToolCall("w1", "write_file", {"path": "a.txt", "content": "x"})]

    grant = await start(store.tenants, principal(str(uuid.uuid4())))
    port = HangingPort()
    other = await make_checkpointer(store.pool, setup=False)
    cfg = {"configurable": {"thread_id": grant.thread_id}}

    async def run() -> None:
        async with grant.run_lock():
            await turn(store, ScriptedLLM(script), "write it", thread=grant.thread_id,
                       msg_id="u1", port=port)  # fmt: skip

    task = asyncio.create_task(run())
    await asyncio.wait_for(port.started.wait(), 30)
    pending = None
    while pending is None:  # until the timed flush lands (bounded by the test timeout)
        tup = await other.aget_tuple(cfg)
        if tup is not None:
            blobs = tup.checkpoint["channel_values"]
            pending = blobs.get("pending_mcp_action")
        if pending is None:
            await asyncio.sleep(0.02)
    assert pending["id"] == "w1"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # cancelled (a barge-in): the lease went with the final flush
    assert rows(store.url, "select count(*) from engine.thread_runs where thread_id = %s",
                grant.thread_id) == 0  # fmt: skip
    await grant.release()
