"""Tenant data in Postgres, every query under the caller's row-level security.

Each unit of work is one transaction :func:`~voco.store.db.as_user` — the
caller's verified claims, role ``authenticated`` — so ownership is decided
by the policies in ``supabase/migrations``, not here:

* an unknown ``thread_id`` and someone else's look alike to a SELECT (RLS
  hides both); which one it is comes from trying to *insert* that id inside a
  savepoint: the primary key sees every row, so a unique violation means the
  thread exists and is not the caller's (4403), success means it does not
  exist (the probe is rolled back; a new thread is made, ``thread_not_found``).
  A project-scoped token sees only its project's threads, so another
  project's thread takes the 4403 path too.
* first contact: no membership → a personal organisation (policies allow a
  user exactly that); a project the organisation lacks is created when the
  member's role may (owners/admins), else 4403.
* every change writes its ``audit_events`` row through ``audit_append`` in
  the same transaction; refusals are committed with their audit row.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import errors
from psycopg_pool import PoolTimeout

from voco.auth.tokens import Principal
from voco.billing.entitlements import DEFAULT_GRACE, Subscription, decide
from voco.store.checkpoints import FirstRead, PooledPostgresSaver
from voco.store.db import (
    LOST_CONNECTION,
    Conn,
    Pool,
    as_service,
    as_user,
    as_user_pipelined,
    once_more_if_lost,
)
from voco.store.leases import Leases
from voco.store.tenancy import (
    SYSTEM_ORG,
    SessionGrant,
    SessionRefused,
    TenantStore,
    ThreadQueue,
    TurnRecord,
    Writer,
    as_uuid,
)
from voco.store.turn_write import record_turn

log = logging.getLogger("voco.store")

# how long an admission waits on a lock (the org's audit chain, a thread row)
# before it is refused as "busy, retry": a client retrying in a second does
# better than one left waiting on a stalled engine (store/postgres.py ends
# those after 10 s idle)
ADMISSION_LOCK_TIMEOUT_S = 5.0
RETRY_AFTER_MS = 2000
_DOWN = "the session store (Postgres) is unavailable"


class _Refusal(Exception):
    """Raised inside the transaction after the refusal's audit row is written,
    caught outside it once that row has committed."""

    def __init__(self, refused: SessionRefused) -> None:
        self.refused = refused


async def audit(
    conn: Conn, org: str, kind: str, subject: str | None, detail: dict[str, Any]
) -> None:
    await conn.execute(
        "select public.audit_append(%s, %s, %s, %s::jsonb)",
        (org, kind, subject, json.dumps(detail)),
    )


class PostgresTenantStore(TenantStore):
    def __init__(
        self,
        pool: Pool,
        *,
        leases: Leases | None = None,
        max_sessions: int = 16,
        billing: bool = False,
        grace: timedelta = DEFAULT_GRACE,
        checkpointer: PooledPostgresSaver | None = None,
        admission_lock_timeout_s: float = ADMISSION_LOCK_TIMEOUT_S,
    ):
        self._pool = pool
        self._lock_timeout_ms = max(1, round(admission_lock_timeout_s * 1000))
        self.checkpointer = checkpointer  # batches a run's checkpoint writes
        self.billing = billing  # STRIPE_SECRET_KEY set: sessions need a subscription
        self.grace = grace
        self.leases = leases or Leases(pool)
        self.max_sessions = max_sessions
        self.queue = ThreadQueue()
        self.writer = Writer()

    @property
    def pool(self) -> Pool:
        """The pool, for the org admin API (its own ``as_user`` transactions)."""
        return self._pool

    async def start(self) -> None:
        self.leases.start()

    def _claims(self, principal: Principal, user: str) -> dict[str, Any]:
        return {**principal.claims, "sub": user}

    async def open_session(
        self, principal: Principal, *, project_id: str, thread_id: str | None, session_id: str
    ) -> SessionGrant:
        """Admit a session, or refuse it with its close code. A database that
        is unreachable, or busier than an admission should wait, is a 4503
        with a retry delay (the clients reconnect on it), never a 1011."""
        cause: Exception
        try:
            return await self._open_session(principal, project_id, thread_id, session_id)
        except errors.LockNotAvailable as exc:
            why, cause = "the session store is busy (a lock held by other work)", exc
        except PoolTimeout as exc:
            why, cause = f"{_DOWN} (unreachable, or every connection busy)", exc
        except LOST_CONNECTION as exc:
            why, cause = f"{_DOWN} (connection lost)", exc
        log.warning("refused session %s: %s: %s", session_id, why, cause)
        raise SessionRefused(4503, "at_capacity", f"{why}; retry", RETRY_AFTER_MS)

    async def _open_session(
        self, principal: Principal, project_id: str, thread_id: str | None, session_id: str
    ) -> SessionGrant:
        user = as_uuid(principal.user_id)
        if user is None:
            raise SessionRefused(4401, "unauthenticated", "token sub must be a UUID")
        claims = self._claims(principal, user)
        lease = await self.leases.reserve_session(user, self.max_sessions)
        try:
            if lease is None:
                await self._refused(claims, principal, "rate_limited", session_id)
                raise SessionRefused(
                    4429,
                    "rate_limited",
                    f"at most {self.max_sessions} concurrent sessions per user",
                )
            try:
                async with as_user(self._pool, claims) as conn:
                    org, thread, notice = await self._admit(
                        conn, principal, project_id, thread_id, session_id
                    )
            except _Refusal as r:
                raise r.refused from None
        except BaseException:
            if lease is not None:
                await self.leases.release_session(lease)
            raise
        return _PgGrant(
            self, claims, lease, session_id, thread_id=thread, user_id=user, org_id=org,
            notice=notice,
        )  # fmt: skip

    async def _admit(
        self,
        conn: Conn,
        principal: Principal,
        project_id: str,
        thread_id: str | None,
        session_id: str,
    ) -> tuple[str, str, str | None]:
        await conn.execute(f"set local lock_timeout = {self._lock_timeout_ms}")
        org = await self._home_org(conn, principal)
        if self.billing:
            await self._entitled(conn, org, session_id)
        await self._ensure_project(conn, org, project_id, session_id)
        notice = None
        resumed = False
        if thread_id:
            cur = await conn.execute(
                "select project_id from public.threads where id = %s", (thread_id,)
            )
            row = await cur.fetchone()
            if row is not None and row["project_id"] != project_id:
                await self._refuse(conn, org, "other_project", session_id, thread_id)
            if row is not None:
                resumed = True
            elif await self._exists_for_someone_else(conn, org, project_id, thread_id):
                await self._refuse(conn, org, "not_owner", session_id, thread_id)
            else:
                notice = f"thread {thread_id!r} does not exist; started a new one"
        if not resumed:
            thread_id = uuid.uuid4().hex
            await conn.execute(
                "insert into public.threads (id, org_id, project_id, owner_id)"
                " values (%s, %s, %s, auth.uid())",
                (thread_id, org, project_id),
            )
        assert thread_id is not None
        detail = {"thread": thread_id, "project": project_id, "resumed": resumed}
        await audit(conn, org, "session.start", session_id, detail)
        return org, thread_id, notice

    async def _entitled(self, conn: Conn, org: str, session_id: str) -> None:
        """4402 unless the org has an active or trialing subscription (or a
        past_due one within the grace period); read under the member's RLS."""
        cur = await conn.execute(
            "select s.status, s.past_due_since from public.subscriptions s"
            " join public.billing_customers c on c.stripe_customer_id = s.customer_id"
            " where c.org_id = %s order by s.event_created desc",
            (org,),
        )
        now = datetime.now(UTC)
        subs = [Subscription(r["status"], r["past_due_since"]) for r in await cur.fetchall()]
        decisions = [decide(x, billing_enabled=True, now=now, grace=self.grace) for x in subs]
        if any(d.allowed for d in decisions):
            return
        reason = (
            decisions[0].reason if decisions else decide(None, billing_enabled=True, now=now).reason
        )
        await audit(conn, org, "session.refused", session_id, {"reason": "payment_required"})
        raise _Refusal(SessionRefused(4402, "payment_required", reason))

    async def _home_org(self, conn: Conn, principal: Principal) -> str:
        """The token's organisation if it names one (the caller must be a
        member), else the caller's first; first contact makes a personal one."""
        cur = await conn.execute(
            "select org_id from public.org_members where user_id = auth.uid()"
            " and removed_at is null and seat_active order by joined_at, org_id"
        )
        orgs = [str(r["org_id"]) for r in await cur.fetchall()]
        if principal.org_id is not None:
            if principal.org_id not in orgs:
                raise _Refusal(
                    SessionRefused(4403, "forbidden", "you are not a member of this organisation")
                )
            return principal.org_id
        if orgs:
            return orgs[0]
        cur = await conn.execute(
            "insert into public.organizations (name, personal_for) values ('Personal', auth.uid())"
            " on conflict (personal_for) do nothing returning id"
        )
        row = await cur.fetchone()
        if row is None:  # a concurrent first contact made it (with its owner row)
            cur = await conn.execute(
                "select id from public.organizations where personal_for = auth.uid()"
            )
            row = await cur.fetchone()
            if row is None:
                raise _Refusal(SessionRefused(4403, "forbidden", "no organisation to join"))
            return str(row["id"])
        org = str(row["id"])
        await conn.execute(
            "insert into public.org_members (org_id, user_id, role)"
            " values (%s, auth.uid(), 'owner')",
            (org,),
        )
        await audit(conn, org, "org.created", org, {"personal": True})
        return org

    async def _ensure_project(self, conn: Conn, org: str, project_id: str, session_id: str) -> None:
        cur = await conn.execute(
            "select 1 from public.projects where org_id = %s and id = %s", (org, project_id)
        )
        if await cur.fetchone() is not None:
            return
        try:
            async with conn.transaction():
                await conn.execute(
                    "insert into public.projects (org_id, id, created_by)"
                    " values (%s, %s, auth.uid()) on conflict do nothing",
                    (org, project_id),
                )
        except errors.InsufficientPrivilege:  # RLS: this role may not create projects
            await audit(
                conn, org, "session.refused", session_id,
                {"reason": "project_not_allowed", "project": project_id},
            )  # fmt: skip
            raise _Refusal(
                SessionRefused(
                    4403,
                    "forbidden",
                    f"project {project_id!r} does not exist in your organisation and your "
                    "role may not create projects",
                )
            ) from None
        await audit(conn, org, "project.created", project_id, {})

    async def _exists_for_someone_else(
        self, conn: Conn, org: str, project_id: str, thread_id: str
    ) -> bool:
        try:
            async with conn.transaction():
                await conn.execute(
                    "insert into public.threads (id, org_id, project_id, owner_id)"
                    " values (%s, %s, %s, auth.uid())",
                    (thread_id, org, project_id),
                )
                raise _ProbeDone
        except errors.UniqueViolation:
            return True
        except _ProbeDone:
            return False

    async def _refuse(
        self, conn: Conn, org: str, reason: str, session_id: str, thread_id: str
    ) -> None:
        await audit(
            conn, org, "session.refused", session_id, {"reason": reason, "thread": thread_id}
        )
        message = (
            "not your thread" if reason == "not_owner" else "this thread belongs to another project"
        )
        raise _Refusal(SessionRefused(4403, "forbidden", message))

    async def _refused(
        self, claims: dict[str, Any], principal: Principal, reason: str, session_id: str
    ) -> None:
        """Audit a refusal that happened before any tenant work (the cap)."""
        try:
            async with as_user(self._pool, claims) as conn:
                org = await self._home_org(conn, principal)
                await audit(conn, org, "session.refused", session_id, {"reason": reason})
        except _Refusal:
            pass

    async def record_auth_failure(self, reason: str) -> None:
        # service_role: a token that did not verify names no tenant we can
        # trust, so the event goes to the system chain, which no member reads
        async with as_service(self._pool, "an auth failure belongs to no tenant") as conn:
            await audit(conn, SYSTEM_ORG, "auth.failed", None, {"reason": reason[:200]})

    async def flush(self) -> None:
        await self.writer.drain()

    async def aclose(self) -> None:
        await self.flush()
        await self.leases.aclose()


class _ProbeDone(Exception):
    pass


class _PgGrant(SessionGrant):
    def __init__(
        self,
        store: PostgresTenantStore,
        claims: dict[str, Any],
        lease: str,
        session_id: str,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self._store = store
        self._claims = claims
        self._lease = lease
        self._session_id = session_id
        self._released = False

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        # in-process queue first (FIFO, no polling), then the cross-process
        # lease, claimed in the same round trip as the run's first checkpoint
        # read; the run's checkpoint writes go as one statement at its end,
        # the lease released in it (see store/checkpoints.py)
        saver = self._store.checkpointer
        first = None if saver is None else FirstRead(saver, self.thread_id)
        async with (
            self._store.queue.hold(self.thread_id),
            self._store.leases.thread_run(self.thread_id, rider=first) as run,
        ):
            if saver is None:
                yield
                return
            async with saver.batch(self.thread_id, finally_sql=run.release_sql, first=first):
                yield
            run.released = True

    def run_lock(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._locked()

    def record_turn(self, record: TurnRecord) -> None:
        self._store.writer.schedule(self._session_id, self._write_turn(record))

    async def _write_turn(self, r: TurnRecord) -> None:
        org = self.org_id
        assert org is not None

        async def write() -> None:
            # the turn, its tool actions, usage and audit rows: one statement
            # (store/turn_write.py), one round trip, one transaction under RLS
            async with as_user_pipelined(self._store._pool, self._claims) as conn:
                await record_turn(
                    conn, r, org=org, thread_id=self.thread_id, session_id=self._session_id
                )

        try:
            await once_more_if_lost(self._store._pool, f"turn {r.turn_id}", write)
        except Exception:
            # the conversation itself is in the checkpoint; say loudly that its record is not
            log.exception("could not store turn %s of thread %s", r.turn_id, self.thread_id)

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        # queued behind this session's turn writes, so the trail reads in order
        await self._store.writer.schedule(self._session_id, self._end())

    async def _end(self) -> None:
        store = self._store
        org = self.org_id
        assert org is not None

        async def end() -> None:
            async with as_user(store._pool, self._claims) as conn:
                await audit(conn, org, "session.end", self._session_id, {"thread": self.thread_id})

        what = f"session {self._session_id}"
        try:
            await once_more_if_lost(store._pool, f"end of {what}", end)
        except Exception:
            log.exception("could not record the end of %s", what)
        finally:
            # a slot not given back would count against the user's cap for as
            # long as this engine renews its leases
            await once_more_if_lost(
                store._pool,
                f"cap slot of {what}",
                lambda: store.leases.release_session(self._lease),
            )
