"""LangGraph's Postgres checkpointer on Voco's pool, without its global lock.

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

The tables live in the ``engine`` schema (the pool's ``search_path``), out of
reach of the API roles; see ``supabase/migrations``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncCursor
from psycopg.rows import DictRow, dict_row

from voco.store.db import Pool


class PooledPostgresSaver(AsyncPostgresSaver):
    def __init__(self, pool: Pool) -> None:
        super().__init__(pool)
        self._pool = pool
        self.in_flight = 0
        self.max_in_flight = 0
        self.db_s = 0.0  # wall time spent inside operations (bench instrumentation)

    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[AsyncCursor[DictRow]]:
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
