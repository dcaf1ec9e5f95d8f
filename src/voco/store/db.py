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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]
Conn = AsyncConnection[DictRow]


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
