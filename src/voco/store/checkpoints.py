"""LangGraph's Postgres checkpointer on Voco's pool: no global lock, and the
writes of one graph run batched into one transaction.

The graph's whole ``VocoState`` (messages, pending MCP action, job queue) is
checkpointed after every super-step, so a session that reconnects with its
``thread_id`` — to this engine or to one started later — continues where the
conversation stopped, including an action that was awaiting approval.

``AsyncPostgresSaver`` serialises every operation behind one ``asyncio.Lock``
(it was written for a single shared connection), which made 40 simultaneous
turns take 4.3 s on Postgres against 0.5 s in memory. On a *pool* that lock
protects nothing: each operation checks out its own connection. So
:class:`PooledPostgresSaver` takes a connection per operation and no lock,
and counts operations in flight (``max_in_flight``) so tests can see the
database really served them concurrently.

Batching: a text turn is ~10 checkpoint operations (1 read, 5 ``aput``, 4
``aput_writes``), each its own transaction of 3–4 round trips — most of the
per-turn database cost. Inside :meth:`PooledPostgresSaver.batch` (held by the
thread's run lock around one graph run) writes for that thread are *recorded*
(LangGraph's own SQL and parameters, serialised at call time, so the buffer is
a snapshot) and sent at the end of the run as one statement
(:mod:`voco.store.ckpt_merge`: one multi-row upsert per table, ~25 statements
become one) with the run-lease release in it: one round trip, one
transaction. Before that, the flush's intermediate checkpoints are folded
into its newest (:mod:`voco.store.ckpt_squash`): they were never durable on
their own, and nothing reads them again — ~21 rows a turn become ~3. A run that
lasts longer than ``flush_after_s`` (a model call, a tool awaiting approval)
has what it has so far flushed then, so an engine crash while the user decides
still leaves the pending action in the checkpoint. A read of a batched thread
(``aget_tuple``/``alist``) first sends what is buffered, so a reader never
sees an older state than the run has produced.

The run's first read — LangGraph loading the thread's latest checkpoint —
travels with the lease claim (:class:`FirstRead`, sent in the claim's round
trip): once the claim succeeds nobody else may write the thread, so what was
read then is what the run would read a moment later. It is handed out once,
and forgotten at the first write or the end of the batch.

The tables live in the ``engine`` schema (the pool's ``search_path``), out of
reach of the API roles; see ``supabase/migrations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncCursor
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row

from voco.store.ckpt_merge import Op, Statement, merge, recognise
from voco.store.ckpt_squash import squash
from voco.store.db import Conn, Pool

# LangGraph's own condition for "the thread's latest checkpoint" (aget_tuple)
_LATEST = " WHERE thread_id = %s AND checkpoint_ns = %s ORDER BY checkpoint_id DESC LIMIT 1"

log = logging.getLogger("voco.store")


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("checkpoint flush failed", exc_info=task.exception())


class _Batch:
    """The statements recorded for one thread during one run."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.timer: asyncio.TimerHandle | None = None


class _Recorder:
    """Stands in for a cursor inside a batched write: what LangGraph would
    execute is appended to the batch instead."""

    def __init__(self, batch: _Batch) -> None:
        self._batch = batch

    async def execute(self, query: str, params: Sequence[Any] = (), **_: Any) -> None:
        self._batch.ops.append((query, params, False))

    async def executemany(self, query: str, params: Sequence[Sequence[Any]], **_: Any) -> None:
        self._batch.ops.append((query, list(params), True))


_recording: contextvars.ContextVar[_Batch | None] = contextvars.ContextVar(
    "voco_ckpt_recording", default=None
)


class PooledPostgresSaver(AsyncPostgresSaver):
    def __init__(self, pool: Pool, *, flush_after_s: float = 0.5) -> None:
        super().__init__(pool)
        self._pool = pool
        self.flush_after_s = flush_after_s
        # write only each flush's newest checkpoint (store/ckpt_squash.py);
        # off only to compare against LangGraph's full history in tests/bench
        self.squash = True
        self.in_flight = 0
        self.max_in_flight = 0
        self.db_s = 0.0  # wall time spent inside operations (bench instrumentation)
        self._batches: dict[str, _Batch] = {}
        self._known = recognise(
            [self.UPSERT_CHECKPOINT_BLOBS_SQL, self.UPSERT_CHECKPOINTS_SQL,
             self.UPSERT_CHECKPOINT_WRITES_SQL, self.INSERT_CHECKPOINT_WRITES_SQL]
        )  # fmt: skip
        self.merged = self.unmerged = 0  # flushes sent as one statement / as recorded
        # per batched thread: its latest checkpoint as read with the lease claim
        self._first: dict[str, CheckpointTuple | None] = {}
        # per thread: the last flush sent, so flushes (and reads) keep order
        self._flushing: dict[str, asyncio.Task[None]] = {}

    # ------------------------------------------------------------ batching

    @asynccontextmanager
    async def batch(
        self,
        thread_id: str,
        *,
        finally_sql: Statement | None = None,
        first: FirstRead | None = None,
    ) -> AsyncIterator[None]:
        """Record ``thread_id``'s checkpoint writes until exit, then send them
        in one transaction together with ``finally_sql`` (the run lease's
        release). ``first``: the read sent with the lease claim, served to
        the run's first read. Exits even when cancelled (a barge-in): the
        flush is shielded, and later reads of the thread wait for it."""
        if thread_id in self._batches:  # nested: the outer batch sends
            yield
            return
        self._batches[thread_id] = _Batch()
        if first is not None and first.taken:
            self._first[thread_id] = first.latest
        try:
            yield
        finally:
            self._first.pop(thread_id, None)
            batch = self._batches.pop(thread_id)
            if batch.timer is not None:
                batch.timer.cancel()
            await asyncio.shield(self._send(thread_id, batch.ops, finally_sql))

    def _flush_soon(self, thread_id: str, batch: _Batch) -> None:
        if batch.timer is None and self.flush_after_s >= 0:
            batch.timer = asyncio.get_running_loop().call_later(
                self.flush_after_s, self._flush_now, thread_id, batch
            )

    def _flush_now(self, thread_id: str, batch: _Batch) -> None:
        batch.timer = None
        if self._batches.get(thread_id) is batch and batch.ops:
            ops, batch.ops = batch.ops, []
            # remembered in _flushing; the batch's exit and reads wait on it
            self._send(thread_id, ops).add_done_callback(_log_failure)

    def _send(
        self, thread_id: str, ops: list[Op], release: Statement | None = None
    ) -> asyncio.Task[None]:
        prev = self._flushing.get(thread_id)

        async def run() -> None:
            if prev is not None:
                with contextlib.suppress(BaseException):
                    await prev
            if ops or release:
                await self._write(ops, release)

        task = asyncio.ensure_future(run())
        self._flushing[thread_id] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._flushing.get(thread_id) is t:
                del self._flushing[thread_id]

        task.add_done_callback(done)
        return task

    async def _write(self, ops: list[Op], release: Statement | None = None) -> None:
        """One round trip: the ops merged into one statement (autocommit: its
        own transaction), else — SQL this saver does not know — as recorded,
        in one pipelined transaction."""
        t0 = time.perf_counter()
        if self.squash:
            ops = squash(ops, self._known)
        merged = merge(ops, self._known, release)
        if merged is None:
            ops = [*ops, (release[0], release[1], False)] if release else ops
        async with self._pool.connection() as conn:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if merged is not None:
                    self.merged += 1
                    # in a pipeline: its first use on a connection (prepare)
                    # goes in the same round trip instead of one of its own
                    async with conn.pipeline():
                        await conn.execute(merged[0], merged[1], binary=True)
                    return
                self.unmerged += 1
                try:
                    async with conn.pipeline(), conn.cursor(binary=True) as cur:
                        await cur.execute("begin")
                        for query, params, many in ops:
                            if many:
                                await cur.executemany(query, params)
                            else:
                                await cur.execute(query, params)
                        await cur.execute("commit")
                except BaseException:
                    if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                        await conn.execute("rollback")
                    raise
            finally:
                self.in_flight -= 1
                self.db_s += time.perf_counter() - t0

    async def _settled(self, thread_id: str) -> None:
        """Send what is buffered for ``thread_id`` and wait for every flush."""
        batch = self._batches.get(thread_id)
        if batch is not None and batch.ops:
            ops, batch.ops = batch.ops, []
            self._send(thread_id, ops)
        task = self._flushing.get(thread_id)
        if task is not None:
            await asyncio.shield(task)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        self._first.pop(config["configurable"]["thread_id"], None)
        batch = self._batches.get(config["configurable"]["thread_id"])
        if batch is None:
            return await super().aput(config, checkpoint, metadata, new_versions)
        token = _recording.set(batch)
        try:
            out = await super().aput(config, checkpoint, metadata, new_versions)
        finally:
            _recording.reset(token)
        self._flush_soon(config["configurable"]["thread_id"], batch)
        return out

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._first.pop(config["configurable"]["thread_id"], None)
        batch = self._batches.get(config["configurable"]["thread_id"])
        if batch is None:
            await super().aput_writes(config, writes, task_id, task_path)
            return
        token = _recording.set(batch)
        try:
            await super().aput_writes(config, writes, task_id, task_path)
        finally:
            _recording.reset(token)
        self._flush_soon(config["configurable"]["thread_id"], batch)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id = config["configurable"]["thread_id"]
        if (
            thread_id in self._first
            and not get_checkpoint_id(config)
            and not config["configurable"].get("checkpoint_ns")
        ):
            return self._first.pop(thread_id)
        await self._settled(thread_id)
        return await super().aget_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        if config is not None and "thread_id" in config.get("configurable", {}):
            await self._settled(config["configurable"]["thread_id"])
        async for item in super().alist(config, filter=filter, before=before, limit=limit):
            yield item

    async def adelete_thread(self, thread_id: str) -> None:
        self._first.pop(thread_id, None)
        await self._settled(thread_id)
        await super().adelete_thread(thread_id)

    # -------------------------------------------------------------- cursors

    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[AsyncCursor[DictRow]]:
        batch = _recording.get()
        if batch is not None and pipeline:  # a write of a batched thread
            yield _Recorder(batch)  # type: ignore[misc]
            return
        t0 = time.perf_counter()
        async with self._pool.connection() as conn:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if pipeline:
                    # several statements of one put: one round trip, atomically
                    async with (
                        conn.transaction(),
                        conn.pipeline(),
                        conn.cursor(binary=True, row_factory=dict_row) as cur,
                    ):
                        yield cur
                else:
                    async with conn.cursor(binary=True, row_factory=dict_row) as cur:
                        yield cur
            finally:
                self.in_flight -= 1
        self.db_s += time.perf_counter() - t0


class FirstRead:
    """A run's first checkpoint read, riding on its lease claim
    (:meth:`voco.store.leases.Leases.thread_run`): :meth:`send` queues
    LangGraph's "latest checkpoint" query in the claim's pipeline, and
    :meth:`take`, called only once the claim succeeded, loads the row. Both
    statements are answered in one round trip, and form one implicit
    transaction: if the read fails, the claim is undone with it."""

    def __init__(self, saver: PooledPostgresSaver, thread_id: str) -> None:
        self._saver = saver
        self._thread_id = thread_id
        self._cur: AsyncCursor[DictRow] | None = None
        self.taken = False
        self.latest: CheckpointTuple | None = None

    async def send(self, conn: Conn) -> None:
        self._cur = conn.cursor(binary=True, row_factory=dict_row)
        await self._cur.execute(
            self._saver.SELECT_SQL + _LATEST, (self._thread_id, ""), binary=True
        )

    async def take(self) -> None:
        assert self._cur is not None
        value = await self._cur.fetchone()
        await self._cur.close()
        if value is not None and value["checkpoint"]["v"] < 4 and value["parent_checkpoint_id"]:
            return  # an old checkpoint needs LangGraph's pending-sends migration: its own read
        self.latest = None if value is None else await self._saver._load_checkpoint_tuple(value)
        self.taken = True


async def make_checkpointer(pool: Pool, *, setup: bool = True) -> PooledPostgresSaver:
    """A saver on ``pool``, its tables created/migrated when ``setup``.

    The pool's connections must be ``autocommit=True`` (the saver's migrations
    include ``CREATE INDEX CONCURRENTLY``, which cannot run in a transaction)
    and ``row_factory=dict_row``; :func:`voco.store.postgres.open_store`
    builds the pool that way, with ``search_path`` set to ``engine``.
    """
    saver = PooledPostgresSaver(pool)
    if setup:
        await saver.setup()
    return saver
