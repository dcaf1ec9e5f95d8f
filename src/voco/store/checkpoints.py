"""LangGraph's Postgres checkpointer on Voco's connection pool.

The graph's whole ``VocoState`` (messages, pending MCP action, job queue) is
checkpointed after every super-step, so a session that reconnects with its
``thread_id`` — to this engine or to one started later — continues where the
conversation stopped, including an action that was awaiting approval.
"""

from __future__ import annotations

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from voco.store.threads import Pool


async def make_checkpointer(pool: Pool, *, setup: bool = True) -> AsyncPostgresSaver:
    """A saver on ``pool``, its tables created/migrated when ``setup``.

    The pool's connections must be ``autocommit=True`` (the saver's migrations
    include ``CREATE INDEX CONCURRENTLY``, which cannot run in a transaction,
    and its writes are never committed otherwise) and ``row_factory=dict_row``
    (it reads rows by column name); :func:`voco.store.postgres.open_store`
    builds the pool that way.
    """
    saver = AsyncPostgresSaver(pool)
    if setup:
        await saver.setup()
    return saver
