"""The Postgres tenant store under concurrency: the session cap, leases that
outlive no engine, and checkpoints served concurrently by the pool."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from tests.fakes import ScriptedLLM
from tests.store.pgtools import fresh_database
from tests.store.test_postgres_store import turn
from voco.auth.tokens import Principal
from voco.store import open_store
from voco.store.db import as_user
from voco.store.embedded import EmbeddedPostgres
from voco.store.leases import Leases
from voco.store.pg_tenants import PostgresTenantStore, audit
from voco.store.tenancy import SessionRefused

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def store(pg: EmbeddedPostgres) -> AsyncIterator[Any]:
    async with open_store(fresh_database(pg.url), max_connections=16) as s:
        yield s


def principal(user: str, **claims: Any) -> Principal:
    return Principal(user, None, {"sub": user, "aud": "authenticated", **claims})


async def start(tenants: Any, p: Principal, project: str = "default", **kw: Any) -> Any:
    return await tenants.open_session(
        p, project_id=project, thread_id=kw.get("thread_id"), session_id=uuid.uuid4().hex
    )


async def test_100_simultaneous_starts_admit_exactly_the_cap(store: Any) -> None:
    p = principal(str(uuid.uuid4()))
    await (await start(store.tenants, p)).release()  # first contact done once
    results = await asyncio.gather(
        *(start(store.tenants, p) for _ in range(100)), return_exceptions=True
    )
    admitted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, SessionRefused)]
    assert len(admitted) == 16 and len(refused) == 84
    assert {r.code for r in refused} == {4429}
    for g in admitted:
        await g.release()
    # released slots are free again
    again = await start(store.tenants, p)
    await again.release()


async def test_a_killed_engines_slots_lapse(store: Any) -> None:
    """Another engine process whose heartbeat stopped (ttl 0: already lapsed)."""
    p = principal(str(uuid.uuid4()))
    dead = PostgresTenantStore(store.pool, leases=Leases(store.pool, ttl_s=0.0))
    for _ in range(16):
        await start(dead, p)  # never released: the process "died"
    grant = await start(store.tenants, p)
    await grant.release()


async def test_live_slots_hold_across_engine_processes(store: Any) -> None:
    p = principal(str(uuid.uuid4()))
    other = PostgresTenantStore(store.pool)  # a second engine on the same database
    grants = [await start(other, p) for _ in range(16)]
    with pytest.raises(SessionRefused) as e:
        await start(store.tenants, p)
    assert e.value.code == 4429
    for g in grants:
        await g.release()


async def test_member_may_not_create_a_project(store: Any) -> None:
    owner, member = str(uuid.uuid4()), str(uuid.uuid4())
    g = await start(store.tenants, principal(owner), project="p")
    org = g.org_id
    await g.release()
    async with store.pool.connection() as conn:
        await conn.execute(
            "insert into public.org_members (org_id, user_id, role) values (%s, %s, 'member')",
            (org, member),
        )
    m = Principal(member, None, {"sub": member}, org_id=org)
    ok = await start(store.tenants, m, project="p")  # an existing project: fine
    await ok.release()
    with pytest.raises(SessionRefused) as e:
        await start(store.tenants, m, project="new-project")
    assert e.value.code == 4403 and "may not create projects" in e.value.message
    with pytest.raises(SessionRefused) as e:
        await start(
            store.tenants, Principal(member, None, {"sub": member}, org_id=str(uuid.uuid4()))
        )
    assert e.value.code == 4403


async def test_40_simultaneous_turns_overlap_in_the_database(store: Any) -> None:
    llm = ScriptedLLM()
    await asyncio.gather(
        *(turn(store, llm, f"hi {i}", thread=uuid.uuid4().hex, msg_id=f"u{i}") for i in range(40))
    )
    # LangGraph's saver held one lock around every operation: at most 1 in flight
    assert store.checkpointer.max_in_flight > 1


async def test_turn_with_tool_actions_is_one_transaction_with_its_audit_rows(store: Any) -> None:
    from voco.store.audit_db import verify_database
    from voco.store.tenancy import ToolActionRecord, TurnRecord

    u = str(uuid.uuid4())
    g = await start(store.tenants, principal(u))
    action = ToolActionRecord(
        "c1", "read_file", "auto", "success", None, 10, "a" * 64, 20, "b" * 64
    )
    g.record_turn(TurnRecord("t1", "r1", "read it", "done", False, "m", tool_actions=(action,)))
    await g.release()
    await store.tenants.flush()
    async with store.pool.connection() as conn:
        cur = await conn.execute(
            "select action, decision, payload_sha256, result_bytes from public.tool_actions"
            " where thread_id = %s",
            (g.thread_id,),
        )
        assert await cur.fetchall() == [
            {
                "action": "read_file",
                "decision": "auto",
                "payload_sha256": "a" * 64,
                "result_bytes": 20,
            }
        ]
        cur = await conn.execute(
            "select kind from public.audit_events where org_id = %s order by seq", (g.org_id,)
        )
        kinds = [r["kind"] for r in await cur.fetchall()]
    assert kinds == [
        "member.added", "org.created", "project.created", "session.start", "tool.action", "turn",
        "session.end",
    ]  # fmt: skip
    assert (await verify_database(store.url)).ok


async def test_a_sub_that_is_not_a_uuid_is_refused(store: Any) -> None:
    """The verifier already guarantees UUIDs; the store does not rely on it."""
    with pytest.raises(SessionRefused) as e:
        await start(store.tenants, principal("alice"))
    assert (e.value.code, e.value.message) == (4401, "token sub must be a UUID")


async def test_an_engine_stalled_in_a_transaction_blocks_admissions_only_briefly(
    pg: EmbeddedPostgres,
) -> None:
    """An engine stopped (SIGSTOP, a frozen VM) inside a tenant transaction
    holds the organisation's audit-chain lock; every other engine's next
    admission for that organisation waits on it. The database ends such an
    idle transaction (``idle_in_transaction_s``), so the wait is bounded and
    the stalled engine's half-done work is rolled back, not committed late."""
    async with open_store(fresh_database(pg.url), idle_in_transaction_s=1.0) as store:
        p = principal(str(uuid.uuid4()))
        first = await start(store.tenants, p)
        org = first.org_id
        await first.release()
        stalled = as_user(store.pool, {**p.claims, "sub": p.user_id})
        conn = await stalled.__aenter__()
        await audit(conn, org, "session.end", "stalled", {})  # takes the chain lock, then stops
        grant = await asyncio.wait_for(start(store.tenants, p), timeout=30)
        await grant.release()
        with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
            await stalled.__aexit__(None, None, None)
        async with store.pool.connection() as c:
            cur = await c.execute(
                "select count(*) as n from public.audit_events where subject = 'stalled'"
            )
            row = await cur.fetchone()
        assert row is not None and row["n"] == 0


async def test_a_turn_record_and_the_cap_slot_survive_a_lost_connection(store: Any) -> None:
    """The database ended every connection of the engine (a restart, a
    network cut): the session's next writes meet dead pooled connections.
    The turn's record, its end and its cap slot still reach Postgres."""
    from voco.store.tenancy import TurnRecord

    p = principal(str(uuid.uuid4()))
    g = await start(store.tenants, p)
    async with await psycopg.AsyncConnection.connect(store.url, autocommit=True) as admin:
        await admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where datname = current_database() and pid <> pg_backend_pid()"
        )
    g.record_turn(TurnRecord("t1", "r1", "read it", "done", False, "m"))
    await g.release()
    await store.tenants.flush()
    async with store.pool.connection() as conn:
        cur = await conn.execute(
            "select kind from public.audit_events where org_id = %s order by seq", (g.org_id,)
        )
        kinds = [r["kind"] for r in await cur.fetchall()]
        cur = await conn.execute(
            "select count(*) as n from engine.session_leases where user_id = %s", (p.user_id,)
        )
        leases = await cur.fetchone()
    assert kinds[-2:] == ["turn", "session.end"]
    assert leases is not None and leases["n"] == 0


async def test_an_admission_that_waits_on_a_lock_too_long_is_a_retryable_refusal(
    store: Any,
) -> None:
    """A lock held longer than an admission should wait (another engine busy
    or stalled in the org's audit chain): ``session.start`` is refused 4503
    with a retry delay and a message saying why — not a hang, not a 1011."""
    p = principal(str(uuid.uuid4()))
    first = await start(store.tenants, p)
    await first.release()
    impatient = PostgresTenantStore(store.pool, admission_lock_timeout_s=0.2)
    async with as_user(store.pool, {**p.claims, "sub": p.user_id}) as conn:
        await audit(conn, first.org_id, "held", "lock", {})  # the chain lock, held here
        with pytest.raises(SessionRefused) as e:
            await start(impatient, p)
    assert e.value.code == 4503 and e.value.error == "at_capacity"
    assert e.value.retry_after_ms and e.value.retry_after_ms > 0
    assert "busy" in e.value.message
    grant = await start(impatient, p)  # the lock is free: admitted, and the slot was returned
    await grant.release()


async def test_an_unreachable_database_is_a_retryable_refusal() -> None:
    from psycopg_pool import AsyncConnectionPool

    pool: Any = AsyncConnectionPool("postgresql://voco@127.0.0.1:9/none", open=False, timeout=0.5)
    await pool.open(wait=False)
    try:
        with pytest.raises(SessionRefused) as e:
            await start(PostgresTenantStore(pool), principal(str(uuid.uuid4())))
    finally:
        await pool.close()
    assert e.value.code == 4503 and e.value.retry_after_ms
    assert "unavailable" in e.value.message
