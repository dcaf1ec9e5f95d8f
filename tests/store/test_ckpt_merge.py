"""A run's checkpoint writes merged into one statement leave exactly the rows
LangGraph's own statements, run one by one, would have left — duplicates,
both conflict flavours and rows already in the table included — and a run
under the thread's lock costs two round trips: claim + first read, writes +
release."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver as Saver
from psycopg.types.json import Jsonb

from tests.store.pgtools import TracedConnection, fresh_database
from tests.store.test_checkpoint_batch import run_only
from tests.store.test_tenants import principal, start
from voco.store import open_store
from voco.store.checkpoints import FirstRead
from voco.store.ckpt_merge import Op, merge, recognise
from voco.store.embedded import EmbeddedPostgres
from voco.store.leases import Leases

pytestmark = pytest.mark.timeout(120)

BLOBS, CKPTS = Saver.UPSERT_CHECKPOINT_BLOBS_SQL, Saver.UPSERT_CHECKPOINTS_SQL
W_UP, W_NEW = Saver.UPSERT_CHECKPOINT_WRITES_SQL, Saver.INSERT_CHECKPOINT_WRITES_SQL
KNOWN = recognise([BLOBS, CKPTS, W_UP, W_NEW])


@pytest.fixture
async def store(pg: EmbeddedPostgres) -> AsyncIterator[Any]:
    async with open_store(
        fresh_database(pg.url), max_connections=8, connection_class=TracedConnection
    ) as s:
        yield s


def test_the_installed_langgraph_statements_are_all_recognised() -> None:
    # an upgrade that changes them would silently lose the one-statement
    # flush (still correct: sent as recorded); this says so instead
    assert sorted(KNOWN.values()) == [
        ("checkpoint_blobs", False), ("checkpoint_writes", False),
        ("checkpoint_writes", True), ("checkpoints", True),
    ]  # fmt: skip


def test_unknown_sql_is_not_merged() -> None:
    blob: Op = (BLOBS, [("t", "", "c", "1", "json", b"x")], True)
    assert merge([blob, ("delete from x", (), False)], KNOWN) is None
    assert merge([], KNOWN) is None


def test_a_key_written_twice_keeps_first_columns_and_last_updated_ones() -> None:
    ops: list[Op] = [
        (W_NEW, [("t", "", "c1", "task", "p1", 0, "a", "json", b"1")], True),
        (W_UP, [("t", "", "c1", "task", "p2", 0, "b", "json", b"2")], True),
        (W_NEW, [("t", "", "c1", "task", "p3", 0, "c", "json", b"3")], True),
    ]
    merged = merge(ops, KNOWN)
    assert merged is not None
    sql, args = merged
    assert sql.count("insert into checkpoint_writes") == 1 and "do update" in sql
    # columns as arrays: task_path from the first write, channel/type/blob
    # from the last DO UPDATE; the later DO NOTHING changes nothing
    assert args == [["t"], [""], ["c1"], ["task"], ["p1"], [0], ["b"], ["json"], [b"2"]]


def rows_of(cur_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "thread_id"} for r in cur_rows]


async def table_rows(conn: Any, thread: str) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for table, order in (
        ("checkpoint_blobs", "channel, version"),
        ("checkpoints", "checkpoint_id"),
        ("checkpoint_writes", "checkpoint_id, task_id, idx"),
    ):
        cur = await conn.execute(
            f"select * from {table} where thread_id = %s order by {order}",
            (thread,),
        )
        out[table] = rows_of(await cur.fetchall())
    return out


def script(t: str) -> tuple[list[tuple[str, Any]], list[Op]]:
    """(rows already in the tables, then the run's ops) for thread ``t``."""
    existing = [
        (BLOBS, (t, "", "old", "1", "json", b"kept")),
        (CKPTS, (t, "", "c0", None, Jsonb({"v": 4, "n": 0}), Jsonb({"step": 0}))),
        (W_UP, (t, "", "c0", "task0", "", 0, "ch", "json", b"before")),
        (W_NEW, (t, "", "c0", "task0", "", 1, "ch", "json", b"before")),
    ]
    ops: list[Op] = [
        (BLOBS, [(t, "", "old", "1", "json", b"ignored"), (t, "", "messages", "2", "json", b"m2"),
                 (t, "", "empty", "2", "empty", None)], True),
        (CKPTS, (t, "", "c1", "c0", Jsonb({"v": 4, "n": 1}), Jsonb({"step": 1})), False),
        (W_UP, [(t, "", "c0", "task0", "", 0, "ch2", "json", b"after")], True),  # existing row
        (W_NEW, [(t, "", "c0", "task0", "", 1, "ch2", "json", b"ignored")], True),  # existing
        (W_NEW, [(t, "", "c1", "task1", "a", 0, "x", "json", b"first"),
                 (t, "", "c1", "task1", "a", 1, "y", "json", b"y")], True),
        (BLOBS, [(t, "", "messages", "3", "json", b"m3"), (t, "", "messages", "2", "json", b"no")],
         True),
        (W_UP, [(t, "", "c1", "task1", "b", 0, "x2", "json", b"second")], True),
        (CKPTS, (t, "", "c2", "c1", Jsonb({"v": 4, "n": 2}), Jsonb({"step": 2})), False),
        (CKPTS, (t, "", "c2", "zz", Jsonb({"v": 4, "n": 3}), Jsonb({"step": 3})), False),
        (CKPTS, (t, "", "c0", "zz", Jsonb({"v": 4, "n": 9}), Jsonb({"step": 9})), False),
        (W_NEW, [(t, "", "c2", "task2", "", 0, "z", "json", b"z")], True),
        (W_NEW, [(t, "", "c2", "task2", "", 0, "z", "json", b"dup")], True),
    ]  # fmt: skip
    return existing, ops


async def test_merged_writes_leave_the_rows_sequential_writes_leave(store: Any) -> None:
    one, two = f"seq-{uuid.uuid4().hex}", f"mrg-{uuid.uuid4().hex}"
    async with store.pool.connection() as conn:
        for t in (one, two):
            for sql, row in script(t)[0]:
                await conn.execute(sql, row)
        # one by one, as LangGraph runs them
        async with conn.transaction(), conn.cursor() as cur:
            for sql, params, many in script(one)[1]:
                if many:
                    await cur.executemany(sql, params)
                else:
                    await cur.execute(sql, params)
        merged = merge(script(two)[1], KNOWN)
        assert merged is not None
        await conn.execute(merged[0], merged[1], binary=True)
        expected, got = await table_rows(conn, one), await table_rows(conn, two)
    assert got == expected
    assert [r["blob"] for r in got["checkpoint_blobs"]] == [None, b"m2", b"m3", b"kept"]
    assert [(r["parent_checkpoint_id"], r["checkpoint"]["n"]) for r in got["checkpoints"]] == [
        (None, 9),
        ("c0", 1),
        ("c1", 3),
    ]


async def test_a_run_under_the_lock_is_two_round_trips(store: Any) -> None:
    store.checkpointer.flush_after_s = 3600.0  # no timed flush in the count
    grant = await start(store.tenants, principal(str(uuid.uuid4())))
    async with grant.run_lock():  # first run: the thread's first checkpoints
        await run_only(store, "hello", grant.thread_id)
    await store.tenants.leases.renew()  # no heartbeat due in the count
    trace = Path(tempfile.mkdtemp(prefix="voco-trace-"))
    TracedConnection.start(trace)
    async with grant.run_lock():
        await run_only(store, "again", grant.thread_id)
    trips, statements = TracedConnection.stop()
    trace.rmdir()
    # claim + latest checkpoint; the run's writes + lease release
    assert (trips, statements) == (2, 3)
    assert store.checkpointer.merged >= 2 and store.checkpointer.unmerged == 0
    # and the run started from the first one's state (the same user message
    # id, so "again" replaced "hello"; the first reply is still there)
    tup = await store.checkpointer.aget_tuple({"configurable": {"thread_id": grant.thread_id}})
    assert tup is not None
    messages = tup.checkpoint["channel_values"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "assistant"]
    await grant.release()


class _FailingRider:
    async def send(self, conn: Any) -> None:
        await conn.execute("select 1 / 0")

    async def take(self) -> None:
        raise AssertionError("not reached")


async def test_a_failing_rider_undoes_the_claim(store: Any) -> None:
    leases = Leases(store.pool)
    thread = uuid.uuid4().hex
    with pytest.raises(Exception, match="division by zero"):
        async with leases.thread_run(thread, rider=_FailingRider()):
            pass
    async with store.pool.connection() as conn:
        cur = await conn.execute(
            "select count(*) as n from engine.thread_runs where thread_id = %s", (thread,)
        )
        row = await cur.fetchone()
    assert row is not None and row["n"] == 0


class _Counting:
    """A rider that counts its claim attempts around the real first read."""

    def __init__(self, inner: FirstRead) -> None:
        self.inner = inner
        self.sent = 0
        self.second_attempt = asyncio.Event()

    async def send(self, conn: Any) -> None:
        self.sent += 1
        if self.sent == 2:  # the first attempt has failed (the loop is sequential)
            self.second_attempt.set()
        await self.inner.send(conn)

    async def take(self) -> None:
        await self.inner.take()


async def test_a_claim_that_waited_for_another_engine_reads_what_that_engine_wrote(
    store: Any,
) -> None:
    """The read rides on every claim attempt; only the successful one's is
    used — never a state read while the other engine still held the thread."""
    thread = uuid.uuid4().hex
    first = _Counting(FirstRead(store.checkpointer, thread))
    mine, other = Leases(store.pool), Leases(store.pool)  # two engine processes
    got = asyncio.Event()

    async def wait_for_thread() -> None:
        async with mine.thread_run(thread, rider=first):
            got.set()

    async with other.thread_run(thread):
        waiting = asyncio.create_task(wait_for_thread())
        await first.second_attempt.wait()  # it polled, and read, at least once
        assert not got.is_set()
        await run_only(store, "from the other engine", thread)  # written while held
    await waiting
    assert first.inner.taken and first.inner.latest is not None
    texts = [m["content"] for m in first.inner.latest.checkpoint["channel_values"]["messages"]]
    assert "from the other engine" in texts
