"""A flush's intermediate checkpoints are folded into its newest one: pure
rules on LangGraph's own statements first, then real runs on Postgres that
must read back exactly what the full history reads back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver as Saver
from psycopg.types.json import Jsonb

from tests.fakes import ScriptedLLM
from tests.store.pgtools import fresh_database
from tests.store.test_postgres_store import turn
from tests.store.test_tenants import principal, start
from voco.agent.context import McpOutcome, McpPort
from voco.agent.graph import build_graph
from voco.providers.base import ChatMessage, ToolCall
from voco.store import open_store
from voco.store.ckpt_merge import Op, recognise
from voco.store.ckpt_squash import squash
from voco.store.embedded import EmbeddedPostgres

pytestmark = pytest.mark.timeout(120)

BLOBS, CKPTS = Saver.UPSERT_CHECKPOINT_BLOBS_SQL, Saver.UPSERT_CHECKPOINTS_SQL
W_NEW = Saver.INSERT_CHECKPOINT_WRITES_SQL
KNOWN = recognise([BLOBS, CKPTS, Saver.UPSERT_CHECKPOINT_WRITES_SQL, W_NEW])


def ckpt(cid: str, parent: str | None, versions: dict[str, str], **meta: Any) -> Op:
    body = Jsonb({"v": 4, "id": cid, "channel_versions": versions, "channel_values": {}})
    return (CKPTS, ("t", "", cid, parent, body, Jsonb({"step": 1, **meta})), False)


def blob(channel: str, version: str) -> Op:
    return (BLOBS, [("t", "", channel, version, "msgpack", f"{channel}@{version}".encode())], True)


def write(cid: str, task: str) -> Op:
    return (W_NEW, [("t", "", cid, task, "", 0, "messages", "msgpack", b"w")], True)


def run_of_three() -> list[Op]:
    """A run from c0 (already stored): c1 → c2 → c3, as LangGraph records it."""
    return [
        blob("messages", "2"), ckpt("c1", "c0", {"messages": "2", "step": "1"}),
        write("c1", "a"), write("c0", "before"),
        blob("messages", "3"), blob("jobs", "3"),
        ckpt("c2", "c1", {"messages": "3", "jobs": "3", "step": "2"}),
        write("c2", "b"),
        blob("messages", "4"), ckpt("c3", "c2", {"messages": "4", "jobs": "3", "step": "3"}),
        write("c3", "pending"),
    ]  # fmt: skip


def flat(ops: list[Op]) -> list[tuple[Any, ...]]:
    return [tuple(r) for _, p, many in ops for r in (p if many else [p])]


def test_only_the_newest_checkpoint_stays_and_joins_the_chain_before_the_flush() -> None:
    out = flat(squash(run_of_three(), KNOWN))
    ckpts = [r for r in out if len(r) == 6 and isinstance(r[4], Jsonb)]
    assert [(r[2], r[3]) for r in ckpts] == [("c3", "c0")]


def test_blobs_the_newest_names_stay_even_when_an_earlier_step_wrote_them() -> None:
    out = flat(squash(run_of_three(), KNOWN))
    blobs = sorted((r[2], r[3]) for r in out if len(r) == 6 and isinstance(r[5], bytes))
    # messages@2 and @3 were superseded; jobs@3 was written at c2 and is current
    assert blobs == [("jobs", "3"), ("messages", "4")]


def test_pending_writes_of_dropped_checkpoints_go_and_the_others_stay() -> None:
    out = flat(squash(run_of_three(), KNOWN))
    writes = sorted((r[2], r[3]) for r in out if len(r) == 9)
    assert writes == [("c0", "before"), ("c3", "pending")]


def test_a_blob_no_dropped_checkpoint_names_is_never_guessed_unused() -> None:
    ops = [*run_of_three(), blob("other", "9")]
    out = flat(squash(ops, KNOWN))
    assert ("t", "", "other", "9", "msgpack", b"other@9") in out


def test_one_checkpoint_is_left_exactly_as_recorded() -> None:
    ops = [blob("messages", "2"), ckpt("c1", "c0", {"messages": "2"}), write("c1", "a")]
    assert squash(ops, KNOWN) == ops


@pytest.mark.parametrize(
    "ops",
    [
        # a fork: c2 does not descend from c1
        [ckpt("c1", "c0", {}), ckpt("c2", "c0", {})],
        # delta channels rebuild state from every ancestor's writes
        [ckpt("c1", "c0", {}), ckpt("c2", "c1", {}, counters_since_delta_snapshot={"m": [1, 1]})],
        # SQL this module does not know
        [ckpt("c1", "c0", {}), ckpt("c2", "c1", {}), ("delete from checkpoints", (), False)],
        # a checkpoint body that is not LangGraph's
        [ckpt("c1", "c0", {}), (CKPTS, ("t", "", "c2", "c1", "{}", "{}"), False)],
    ],
    ids=["fork", "delta-channel", "unknown-sql", "not-jsonb"],
)
def test_what_cannot_be_proved_safe_is_left_unchanged(ops: list[Op]) -> None:
    assert squash(ops, KNOWN) == ops


# ------------------------------------------------------------ real runs


class GatedPort(McpPort):
    """Answers once the test opens the gate (the user deciding)."""

    def __init__(self) -> None:
        self.started, self.gate = asyncio.Event(), asyncio.Event()

    async def call(self, call_id: str, action: str, payload: dict[str, Any]) -> McpOutcome:
        self.started.set()
        await self.gate.wait()
        return McpOutcome("success", result="ok")


@pytest.fixture
async def stores(pg: EmbeddedPostgres) -> AsyncIterator[tuple[Any, Any]]:
    """Two stores on their own databases: squashing, and full history."""
    async with (
        open_store(fresh_database(pg.url), max_connections=4) as squashed,
        open_store(fresh_database(pg.url), max_connections=4) as full,
    ):
        full.checkpointer.squash = False
        yield squashed, full


def script(msgs: list[ChatMessage]) -> list[str | ToolCall]:
    """A tool call on the first model call of a turn, then a spoken reply:
    a run of several super-steps (model, tools, model)."""
    if msgs[-1].role == "user":
        return [ToolCall(f"r{len(msgs)}", "read_file", {"path": "a.txt"})]
    return [f"done after {len(msgs)} messages."]


def count(url: str, table: str, thread: str) -> int:
    with psycopg.connect(url, autocommit=True) as c:
        row = c.execute(f"select count(*) from engine.{table} where thread_id = %s", (thread,))
        got = row.fetchone()
        assert got is not None
        return int(got[0])


async def test_a_squashed_thread_reads_back_what_the_full_history_reads(
    stores: tuple[Any, Any],
) -> None:
    states = []
    for store in stores:
        grant = await start(store.tenants, principal(str(uuid.uuid4())))
        for i in range(4):
            async with grant.run_lock():
                state = await turn(store, ScriptedLLM(script), f"read it {i}",
                                   thread=grant.thread_id, msg_id=f"u{i}")  # fmt: skip
        states.append((state.values, grant.thread_id))
        await grant.release()
    (squashed, t_sq), (full, t_full) = states

    def comparable(values: dict[str, Any]) -> dict[str, Any]:
        # assistant message ids and the thread id are random per run
        out = {k: v for k, v in values.items() if k != "thread_id"}
        out["messages"] = [{k: v for k, v in m.items() if k != "id"} for m in out["messages"]]
        return out

    assert len(squashed["messages"]) == 16
    assert comparable(squashed) == comparable(full)
    # one checkpoint per run instead of one per super-step
    assert count(stores[0].url, "checkpoints", t_sq) == 4
    assert count(stores[1].url, "checkpoints", t_full) > 4 * 3
    # and the history is one linked chain back to the first run
    history = [h async for h in build_graph(stores[0].checkpointer).aget_state_history(
        {"configurable": {"thread_id": t_sq}})]  # fmt: skip
    ids = [h.config["configurable"]["checkpoint_id"] for h in history]
    parents = [h.parent_config["configurable"]["checkpoint_id"] if h.parent_config else None
               for h in history]  # fmt: skip
    assert parents == [*ids[1:], None]


async def test_a_timed_flush_and_the_run_end_each_keep_their_newest_state(
    stores: tuple[Any, Any],
) -> None:
    """An action awaiting approval is flushed while the run waits (its own
    newest state), and the run's end continues the chain from it."""
    store = stores[0]
    store.checkpointer.flush_after_s = 0.0
    grant = await start(store.tenants, principal(str(uuid.uuid4())))

    def write_it(msgs: list[ChatMessage]) -> list[str | ToolCall]:
        if msgs[-1].role == "user":
            return [ToolCall("w1", "write_file", {"path": "a.txt", "content": "x"})]
        return ["written."]

    port = GatedPort()
    async with grant.run_lock():
        llm = ScriptedLLM(write_it)
        task = asyncio.create_task(
            turn(store, llm, "write it", thread=grant.thread_id, msg_id="u1", port=port)
        )
        await asyncio.wait_for(port.started.wait(), 30)
        while count(store.url, "checkpoints", grant.thread_id) == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # the timed flush lands (bounded by the test timeout)
        port.gate.set()
        state = await task
    assert state.values["messages"][-1]["content"] == "written."
    history = [h async for h in build_graph(store.checkpointer).aget_state_history(
        {"configurable": {"thread_id": grant.thread_id}})]  # fmt: skip
    assert len(history) >= 2  # the waiting state, then the run's end
    parents = [h.parent_config["configurable"]["checkpoint_id"] if h.parent_config else None
               for h in history]  # fmt: skip
    assert parents == [*(h.config["configurable"]["checkpoint_id"] for h in history[1:]), None]
    await grant.release()
