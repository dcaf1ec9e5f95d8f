"""Open Voco's durable store: one Postgres for checkpoints and tenant data.

``async with open_store() as store:`` migrates the database
(``supabase/migrations``, :mod:`voco.store.migrate`), then gives the engine a
LangGraph checkpointer (``engine`` schema) and a
:class:`~voco.store.pg_tenants.PostgresTenantStore` (``public``, under RLS)
that share one connection pool, so a conversation and the record of who may
resume it live and die together. Where the database is:

* ``database_url`` if given, else ``VOCO_DATABASE_URL`` (Supabase in
  production; any PostgreSQL ≥ 13 works);
* otherwise the embedded server (:mod:`voco.store.embedded`) in
  ``$VOCO_HOME/pgdata``, started here and stopped on exit.

Migrations and the checkpointer's own setup are idempotent and serialised
with Postgres advisory locks:
several engine replicas starting at once against one database would otherwise
race in ``CREATE TABLE IF NOT EXISTS`` (a known Postgres race) and in the
checkpointer's migration bookkeeping (duplicate version rows).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from psycopg import AsyncConnection, conninfo, sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from voco.auth.tokens import state_dir
from voco.billing.stripe_api import BillingConfig
from voco.store.checkpoints import PooledPostgresSaver, make_checkpointer
from voco.store.db import Pool
from voco.store.migrate import migrate
from voco.store.pg_tenants import PostgresTenantStore

if TYPE_CHECKING:  # the embedded module imports pgserver, needed only without a URL
    from voco.store.embedded import EmbeddedPostgres

log = logging.getLogger("voco.store")

ENV_URL = "VOCO_DATABASE_URL"
# Any fixed 64-bit key; only Voco's schema setup takes this advisory lock.
_SCHEMA_LOCK_KEY = 0x766F636F_73636861  # "vocoscha"
# an engine transaction idle this long is an engine that stopped (_configure)
IDLE_IN_TRANSACTION_S = 10.0


@dataclass
class Store:
    """What the engine needs from the database; valid inside ``open_store``."""

    url: str
    checkpointer: PooledPostgresSaver
    tenants: PostgresTenantStore
    pool: Pool
    embedded: EmbeddedPostgres | None = None  # set when the store runs its own server


def default_pgdata() -> Path:
    return state_dir() / "pgdata"


@asynccontextmanager
async def open_store(
    database_url: str | None = None,
    *,
    pgdata: Path | None = None,
    max_connections: int = 16,
    prepare_threshold: int | None = 0,
    connection_class: type[AsyncConnection[DictRow]] = AsyncConnection,
    idle_in_transaction_s: float = IDLE_IN_TRANSACTION_S,
) -> AsyncIterator[Store]:
    """Connect (starting the embedded server if no URL is configured), create
    the schema, and close everything again on exit.

    The URL must give *session* semantics — a direct connection or Supabase's
    session pooler (port 5432), which is also what a long-lived server should
    use. A transaction-mode pooler (Supabase port 6543) breaks the schema
    advisory lock and psycopg's prepared statements.

    ``prepare_threshold`` is psycopg's: ``0`` prepares statements on first use
    (what LangGraph's own ``from_conn_string`` does); ``None`` disables them.
    ``connection_class`` is for instrumentation (the bench counts round trips).
    ``idle_in_transaction_s``: how long the server lets one of the pool's
    connections sit inside a transaction without a statement before it ends
    the connection (:func:`_configure`).
    """
    url = database_url or os.environ.get(ENV_URL) or None
    async with AsyncExitStack() as stack:
        embedded: EmbeddedPostgres | None = None
        if url is None:
            from voco.store.embedded import start_embedded

            embedded = await asyncio.to_thread(start_embedded, pgdata or default_pgdata())
            stack.push_async_callback(asyncio.to_thread, embedded.stop)
            url = embedded.url
        pool: Pool = AsyncConnectionPool(
            url,
            connection_class=connection_class,
            kwargs={
                "autocommit": True,
                "prepare_threshold": prepare_threshold,
                "row_factory": dict_row,
            },
            min_size=1,
            # schema setup holds one connection (the lock) while using another
            max_size=max(2, max_connections),
            # a connection the server dropped while idle (restart, pooler
            # timeout) is replaced instead of failing the next checkpoint write;
            # only connections idle a while are checked (a round trip each)
            check=_check_if_idle,
            reset=_mark_returned,
            name="voco",
            configure=functools.partial(_configure, idle_in_transaction_s=idle_in_transaction_s),
            open=False,
        )
        # wait=True: a wrong URL or dead server fails here, at start-up, and
        # not in the middle of a user's first turn
        await pool.open(wait=True, timeout=30.0)
        stack.push_async_callback(pool.close)
        async with pool.connection() as conn:
            result = await migrate(conn)
        if result.applied:
            log.info("database migrated to %s (applied %s)", result.current, result.applied)
        checkpointer = await _setup_schema(pool)
        billing = BillingConfig.from_env() is not None
        log.info(
            "billing %s",
            "on: sessions need an active subscription (4402 otherwise)"
            if billing
            else "off (STRIPE_SECRET_KEY is not set): every session is admitted, "
            "nothing is metered to Stripe",
        )
        tenants = PostgresTenantStore(
            pool,
            checkpointer=checkpointer,
            billing=billing,
            grace=timedelta(days=float(os.environ.get("VOCO_BILLING_GRACE_DAYS", "7"))),
        )
        await tenants.start()
        stack.push_async_callback(tenants.aclose)
        log.info("store ready: %s", _redact(url))
        yield Store(
            url=url, checkpointer=checkpointer, tenants=tenants, pool=pool, embedded=embedded
        )


async def _configure(conn: AsyncConnection[DictRow], *, idle_in_transaction_s: float) -> None:
    """Session settings of every pooled connection.

    ``search_path`` is ``engine`` only: LangGraph's checkpoint SQL is
    unqualified, and Voco's own SQL names its schemas (``public.``, ``auth.``,
    ``engine.``) explicitly.

    ``synchronous_commit = off`` for what runs in autocommit here —
    checkpoints and leases: a commit no longer waits for its WAL fsync (that
    wait was most of the per-turn database cost). An engine crash loses
    nothing (the server still flushes within ``wal_writer_delay``); only a
    crash of the database server itself can lose the last fraction of a
    second of checkpoints. Tenant transactions (:mod:`voco.store.db`: turns,
    tool actions, audit rows, sessions) switch it back on for themselves.

    ``idle_in_transaction_session_timeout``: no transaction of the engine
    waits on anything but the database (each is a few statements, most one
    pipelined round trip), so one left open is an engine that stopped — a
    SIGSTOP, a frozen VM, a loop blocked for seconds. Its locks (the org's
    audit-chain lock, taken by every admission and turn record) would stall
    every other engine's work for that organisation for as long as it stays
    stopped; the server instead ends its connection, rolls its transaction
    back, and the others go on (tests/store/test_tenants.py).
    """
    await conn.execute("set search_path to engine")
    await conn.execute("set synchronous_commit to off")
    await conn.execute(
        sql.SQL("set idle_in_transaction_session_timeout to {}").format(
            sql.Literal(f"{max(1, round(idle_in_transaction_s * 1000))}ms")
        )
    )


_CHECK_AFTER_IDLE_S = 30.0


_returned_at: weakref.WeakKeyDictionary[AsyncConnection[DictRow], float] = (
    weakref.WeakKeyDictionary()
)


async def _mark_returned(conn: AsyncConnection[DictRow]) -> None:
    _returned_at[conn] = time.monotonic()


async def _check_if_idle(conn: AsyncConnection[DictRow]) -> None:
    last = _returned_at.get(conn)
    if last is None or time.monotonic() - last > _CHECK_AFTER_IDLE_S:
        await AsyncConnectionPool.check_connection(conn)


async def _setup_schema(pool: Pool) -> PooledPostgresSaver:
    # The checkpointer's migrations run CREATE INDEX CONCURRENTLY, which waits
    # for every transaction in the database that is open or has a statement
    # running. Hence a *session* lock held by an idle autocommit connection
    # (a transaction-scoped lock would be an open transaction), taken by
    # polling pg_try_advisory_lock (a replica blocked inside pg_advisory_lock
    # is a running statement). Both variants deadlock; both were observed.
    # The lock dies with its connection, so a crashed engine cannot leave it.
    async with pool.connection() as lock_conn:
        delay = 0.02
        while True:
            cur = await lock_conn.execute(
                "SELECT pg_try_advisory_lock(%s) AS ok", (_SCHEMA_LOCK_KEY,)
            )
            row = await cur.fetchone()
            if row is not None and row["ok"]:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
        try:
            return await make_checkpointer(pool, setup=True)
        finally:
            await lock_conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK_KEY,))


def _redact(url: str) -> str:
    """The URL without its password, for logs."""
    try:
        params = conninfo.conninfo_to_dict(url)
    except Exception:
        return "<unparsable database url>"
    params.pop("password", None)
    return conninfo.make_conninfo("", **{k: v for k, v in params.items() if v is not None})
