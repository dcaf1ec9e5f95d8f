"""Thread ownership in Postgres, next to the checkpoints it guards.

A ``thread_id`` resumes a conversation only for its owner (the server closes
4403 otherwise), so ownership must be exactly as durable as the conversation:
kept in the same database as LangGraph's checkpoints, it survives an engine
restart with them, and several engine processes on one database agree on it.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from voco.engine.threads import ThreadStore

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]

SCHEMA = """
CREATE TABLE IF NOT EXISTS voco_threads (
    thread_id  text PRIMARY KEY,
    user_id    text NOT NULL,
    project_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""


class PostgresThreadStore(ThreadStore):
    """:class:`ThreadStore` on a ``voco_threads`` table.

    ``create`` never changes an existing row (``ON CONFLICT DO NOTHING``), the
    same first-writer-wins rule as the in-memory store: a thread can never be
    re-assigned to another user, even by two engines racing on one id.
    """

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def setup(self) -> None:
        """Create the table if missing; safe to run on every start."""
        async with self._pool.connection() as conn:
            await conn.execute(SCHEMA)

    async def owner(self, thread_id: str) -> str | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT user_id FROM voco_threads WHERE thread_id = %s", (thread_id,)
            )
            row = await cur.fetchone()
        return None if row is None else str(row["user_id"])

    async def create(self, thread_id: str, user_id: str, project_id: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO voco_threads (thread_id, user_id, project_id) VALUES (%s, %s, %s)"
                " ON CONFLICT (thread_id) DO NOTHING",
                (thread_id, user_id, project_id),
            )
