"""Leases that hold across engine processes: session slots and thread runs.

Both live in the ``engine`` schema (engine bookkeeping, not tenant data, and
out of the API's reach) and are written with the engine's own database role.
A lease has an expiry that the engine renews on a heartbeat; an engine that is
killed stops renewing, and its leases lapse after ``ttl_s`` — so a crash can
neither leak a user's session slots for good nor wedge a thread.

* Session slots: *reserve first*. One transaction takes a per-user advisory
  lock, forgets that user's lapsed leases, counts the live ones and inserts a
  new one only below the cap, so 100 simultaneous starts admit exactly
  ``cap``, whichever engine process they reach.
* Thread runs: an ``insert … on conflict do update … where expired`` claims
  the thread only if no live holder has it; otherwise the caller polls with
  backoff (the in-process queue in front of it makes that rare: only runs in
  *other* processes ever poll). A :class:`Rider` (the run's first checkpoint
  read) can travel in the claim's round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from psycopg import sql

from voco.store.db import Conn, Pool

log = logging.getLogger("voco.store")


class Rider(Protocol):
    """Statements sent in the lease claim's round trip (pipelined after it,
    one implicit transaction: if they fail, the claim is undone too)."""

    async def send(self, conn: Conn) -> None:
        """Queue the statements on ``conn`` (in pipeline mode; fetch nothing)."""

    async def take(self) -> None:
        """Read their results; called only when the claim succeeded."""


_CLAIM = (
    "insert into engine.thread_runs (thread_id, holder, engine_id, expires_at)"
    " values (%s, %s, %s, now() + make_interval(secs => %s))"
    " on conflict (thread_id) do update set holder = excluded.holder,"
    " engine_id = excluded.engine_id, expires_at = excluded.expires_at"
    " where engine.thread_runs.expires_at < now() returning holder"
)


@dataclass
class RunLease:
    release_sql: tuple[str, tuple[str, str]]
    released: bool = False


class Leases:
    def __init__(self, pool: Pool, *, engine_id: str | None = None, ttl_s: float = 30.0) -> None:
        self._pool = pool
        self.engine_id = engine_id or uuid.uuid4().hex
        self.ttl_s = ttl_s
        self._heartbeat: asyncio.Task[None] | None = None

    # ------------------------------------------------------------- sessions

    async def reserve_session(self, user_id: str, cap: int) -> str | None:
        """A lease id if ``user_id`` is below ``cap`` live sessions, else None."""
        lease = str(uuid.uuid4())
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                "select pg_advisory_xact_lock(hashtextextended('voco.sessions:' || %s, 0))",
                (user_id,),
            )
            await conn.execute(
                "delete from engine.session_leases where user_id = %s and expires_at < now()",
                (user_id,),
            )
            cur = await conn.execute(
                "insert into engine.session_leases (lease_id, user_id, engine_id, expires_at)"
                " select %s, %s, %s, now() + make_interval(secs => %s)"
                " where (select count(*) from engine.session_leases where user_id = %s) < %s"
                " returning lease_id",
                (lease, user_id, self.engine_id, self.ttl_s, user_id, cap),
            )
            row = await cur.fetchone()
        return lease if row is not None else None

    async def release_session(self, lease_id: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute("delete from engine.session_leases where lease_id = %s", (lease_id,))

    # ---------------------------------------------------------- thread runs

    @contextlib.asynccontextmanager
    async def thread_run(
        self, thread_id: str, *, rider: Rider | None = None
    ) -> AsyncIterator[RunLease]:
        """Hold the thread's run lease. The holder may release it inside a
        transaction of its own (:attr:`RunLease.release_sql`, e.g. with the
        run's checkpoint writes: one round trip less) and then sets
        :attr:`RunLease.released`; otherwise it is released here. ``rider``
        goes with every claim attempt; its results are taken from the one
        that succeeds."""
        holder = uuid.uuid4().hex
        delay = 0.02
        while not await self._claim(thread_id, holder, rider):
            await asyncio.sleep(delay)  # another engine process runs this thread
            delay = min(delay * 2, 0.5)
        run = RunLease(
            (
                "delete from engine.thread_runs where thread_id = %s and holder = %s",
                (thread_id, holder),
            )
        )
        try:
            yield run
        finally:
            if not run.released:
                # shielded: a cancelled run (barge-in) must still let the thread go
                await asyncio.shield(self._unclaim(thread_id, holder))

    async def _claim(self, thread_id: str, holder: str, rider: Rider | None = None) -> bool:
        params = (thread_id, holder, self.engine_id, self.ttl_s)
        async with self._pool.connection() as conn:
            if rider is None:
                cur = await conn.execute(_CLAIM, params)
                return await cur.fetchone() is not None
            # nothing fetched inside: leaving the pipeline sends the one Sync
            # and reads both answers (a fetch inside would wait once more)
            async with conn.pipeline():
                cur = await conn.execute(_CLAIM, params)
                await rider.send(conn)
            claimed = await cur.fetchone() is not None
            if claimed:
                await rider.take()
            return claimed

    async def _unclaim(self, thread_id: str, holder: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "delete from engine.thread_runs where thread_id = %s and holder = %s",
                (thread_id, holder),
            )

    # ------------------------------------------------------------ heartbeat

    def start(self) -> None:
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                await self.renew()
            except Exception as exc:  # a database blip: the next beat retries
                log.warning("lease heartbeat failed: %s", exc)

    async def renew(self) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            for table in ("session_leases", "thread_runs"):
                await conn.execute(
                    sql.SQL(
                        "update engine.{} set expires_at = now() + make_interval(secs => %s)"
                        " where engine_id = %s"
                    ).format(sql.Identifier(table)),
                    (self.ttl_s, self.engine_id),
                )

    async def aclose(self) -> None:
        """Stop renewing and drop this engine's leases (a clean shutdown)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        async with self._pool.connection() as conn, conn.transaction():
            for table in ("session_leases", "thread_runs"):
                await conn.execute(
                    sql.SQL("delete from engine.{} where engine_id = %s").format(
                        sql.Identifier(table)
                    ),
                    (self.engine_id,),
                )
