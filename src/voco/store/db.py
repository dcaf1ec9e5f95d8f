"""The connection pool type and the one way tenant work reaches Postgres.

:func:`as_user` opens a transaction in which the connection *is* the caller
as far as Postgres is concerned: ``role`` is set to ``authenticated`` and
``request.jwt.claims`` to the caller's verified claims, both transaction-local
(``set_config(..., true)``), exactly as PostgREST does on Supabase. Row-level
security then decides what the engine's queries can see or change, so a bug in
engine code cannot cross tenants. Both settings go in one round trip and end
with the transaction, so a pooled connection never carries them to the next
user.

:func:`as_service` is the same with ``service_role`` (which bypasses RLS). It
exists for work that belongs to no single tenant; every caller says why.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from psycopg import AsyncConnection, OperationalError, errors, sql
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]
Conn = AsyncConnection[DictRow]
T = TypeVar("T")
log = logging.getLogger("voco.store")

# the connection went away under the work (a server restart, a network cut,
# the server ending a transaction left idle: store/postgres.py `_configure`)
LOST_CONNECTION = (OperationalError, errors.IdleInTransactionSessionTimeout)


async def once_more_if_lost(pool: Pool, what: str, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work``; if its connection was lost, check the pool's idle
    connections (a server restart kills all of them: the pool replaces the
    dead ones) and run it once more.

    For the writes nobody waits on and nothing else would redo — a turn's
    record, a session's end, the release of its cap slot. The pool checks a
    connection only after it sat idle a while, so the first write after a
    database restart meets a dead one. A lost connection rolled the
    transaction back whole, so the second run does not double it — unless the
    connection broke after the server committed and before it answered; then
    a turn's primary key refuses the copy (logged), an audit row may appear
    twice.
    """
    try:
        return await work()
    except LOST_CONNECTION as exc:
        log.warning("%s: the database connection was lost (%s); trying once more", what, exc)
        await pool.check()
        return await work()


def _begin_as(role: str, claims: dict[str, Any]) -> sql.Composed:
    """``begin`` and the settings as one simple-protocol query: one round
    trip. synchronous_commit goes back on: a turn, its tool actions and audit
    rows are durable once committed (the pool's default is off, for
    checkpoints). Values are quoted literals (no parameters are possible in a
    multi-statement query); the claims are JSON we serialised ourselves."""
    return sql.SQL(
        "begin; select set_config('role', {}, true), set_config('request.jwt.claims', {}, true),"
        " set_config('synchronous_commit', 'on', true)"
    ).format(sql.Literal(role), sql.Literal(json.dumps(claims, separators=(",", ":"))))


@asynccontextmanager
async def _as_role(pool: Pool, role: str, claims: dict[str, Any]) -> AsyncIterator[Conn]:
    async with pool.connection() as conn:
        # prepare=False: the literal differs per caller, a prepared statement
        # per user would only fill psycopg's cache
        await conn.execute(_begin_as(role, claims), prepare=False)
        try:
            yield conn
        except BaseException:
            if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                await conn.execute("rollback")
            raise
        await conn.execute("commit")


@asynccontextmanager
async def as_user_pipelined(pool: Pool, claims: dict[str, Any]) -> AsyncIterator[Conn]:
    """Like :func:`as_user` for a unit of work that only writes (a turn with
    its tool actions, usage and audit rows): every statement, ``begin`` and
    ``commit`` included, goes in one pipeline with a single sync — one round
    trip. Nothing can be fetched inside; an error (RLS, a constraint) is
    raised on exit and the whole transaction is rolled back."""
    role, full = "authenticated", {**claims, "role": "authenticated"}
    async with pool.connection() as conn:
        try:
            async with conn.pipeline():
                await conn.execute("begin")
                await conn.execute(
                    "select set_config('role', %s, true),"
                    " set_config('request.jwt.claims', %s, true),"
                    " set_config('synchronous_commit', 'on', true)",
                    (role, json.dumps(full, separators=(",", ":"))),
                )
                yield conn
                await conn.execute("commit")
        except BaseException:
            if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                await conn.execute("rollback")
            raise


def as_user(pool: Pool, claims: dict[str, Any]) -> Any:
    """A transaction as ``authenticated`` with ``claims`` (must hold ``sub``)."""
    return _as_role(pool, "authenticated", {**claims, "role": "authenticated"})


def as_service(pool: Pool, why: str) -> Any:
    """A transaction as ``service_role`` (RLS bypassed). ``why`` is required
    so each cross-tenant use states its reason where it is made."""
    if not why:
        raise ValueError("say why this work must cross tenants")
    return _as_role(pool, "service_role", {"role": "service_role"})
