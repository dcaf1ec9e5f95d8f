"""The billing jobs on a real procrastinate queue (schema ``jobs``), the
worker's ``--once`` mode, retries that end loudly, and automatic seats."""

from __future__ import annotations

import uuid

import procrastinate
import pytest
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from tests.billing.conftest import add_usage, make_org
from tests.providers.doubles.stripe import API_KEY, Fault, StripeDouble
from voco.billing import seats
from voco.billing.jobs import defer_seat_sync, make_app, run_worker
from voco.billing.meters import TOOL_ACTIONS, USER_SPEECH_MS
from voco.billing.reporting import status
from voco.billing.stripe_api import BillingConfig, StripeBilling
from voco.store.db import Pool, as_service
from voco.store.job_schema import connection_options

pytestmark = pytest.mark.timeout(180)


def config(double: StripeDouble) -> BillingConfig:
    return BillingConfig(API_KEY, None, double.url)


async def one(pool: Pool, sql: str) -> list[dict[str, object]]:
    async with as_service(pool, "test") as conn:
        cur = await conn.execute(sql)
        return list(await cur.fetchall())


async def queue(db_url: str) -> list[dict[str, object]]:
    """The job queue's rows, as the database owner (no API role may read jobs)."""
    async with await AsyncConnection.connect(db_url, row_factory=dict_row) as conn:
        cur = await conn.execute(
            "select task_name as task, status::text as s, attempts from jobs.procrastinate_jobs"
            " order by id"
        )
        return list(await cur.fetchall())


async def test_job_tables_are_not_in_public(pool: Pool) -> None:
    found = await one(
        pool,
        "select n.nspname as table_schema from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace where c.relname = 'procrastinate_jobs'",
    )
    assert found == [{"table_schema": "jobs"}]


async def test_worker_once_reports_what_is_due(
    pool: Pool, db_url: str, stripe_double: StripeDouble
) -> None:
    org = await make_org(pool, "cus_w", stripe_double)
    total = await add_usage(pool, org, USER_SPEECH_MS, [1000, 2500])
    await run_worker(db_url, once=True, config=config(stripe_double))
    assert stripe_double.totals() == {("cus_w", USER_SPEECH_MS): total}
    jobs = await queue(db_url)
    assert "voco.billing.aggregate" in {j["task"] for j in jobs}
    assert {j["s"] for j in jobs} == {"succeeded"}


async def test_stripe_down_retries_then_fails_loudly_and_stays_visible(
    pool: Pool, db_url: str, stripe_double: StripeDouble
) -> None:
    org = await make_org(pool, "cus_w", stripe_double)
    total = await add_usage(pool, org, TOOL_ACTIONS, [3])
    stripe_double.faults.extend([Fault(status=503)] * 3)
    retry = procrastinate.RetryStrategy(max_attempts=2, wait=0)
    await run_worker(db_url, once=True, config=config(stripe_double), retry=retry)
    jobs = [j for j in await queue(db_url) if j["task"] == "voco.billing.aggregate"]
    assert [(j["s"], j["attempts"]) for j in jobs] == [
        ("failed", 3)
    ]  # the first try and two retries
    st = await status(pool)
    assert st.by_status == {"failed": 1} and "503" in st.failed[0]["last_error"]
    assert stripe_double.meter_events == []
    await run_worker(db_url, once=True, config=config(stripe_double))  # Stripe is back
    assert stripe_double.totals() == {("cus_w", TOOL_ACTIONS): total}


async def test_billing_off_reports_nothing(pool: Pool, db_url: str) -> None:
    org = await make_org(pool, "cus_off")
    await add_usage(pool, org, TOOL_ACTIONS, [1])
    await run_worker(db_url, once=True, config=None)
    assert (await status(pool)).unreported == 1


# ------------------------------------------------------------------- seats


async def seated_org(
    pool: Pool, double: StripeDouble, fixed: int | None = None
) -> tuple[str, dict[str, object]]:
    """An org on an active subscription with a seat item, and its owner's claims."""
    org = await make_org(pool, "cus_s", double)
    owner = str(uuid.uuid4())
    double.items["si_s"] = {"id": "si_s", "object": "subscription_item", "quantity": 1}
    async with as_service(pool, "test setup") as conn:
        await conn.execute(
            "insert into public.org_members (org_id, user_id, role) values (%s, %s, 'owner')",
            (org, owner),
        )
        await conn.execute(
            "update public.billing_customers set fixed_seats = %s where org_id = %s", (fixed, org)
        )
        await conn.execute(
            "insert into public.subscriptions (subscription_id, customer_id, status,"
            " seat_item_id, quantity, event_created)"
            " values ('sub_s', 'cus_s', 'active', 'si_s', 1, 1)"
        )
    return org, {"sub": owner, "aud": "authenticated"}


async def member(pool: Pool, org: str) -> str:
    user = str(uuid.uuid4())
    async with as_service(pool, "test setup") as conn:
        await conn.execute(
            "insert into public.org_members (org_id, user_id, role, seat_active)"
            " values (%s, %s, 'member', false)",
            (org, user),
        )
    return user


async def test_member_added_and_removed_quickly_is_one_right_update(
    pool: Pool, stripe_double: StripeDouble
) -> None:
    org, owner = await seated_org(pool, stripe_double)
    a, b = await member(pool, org), await member(pool, org)
    assert await seats.set_member_seat(pool, owner, org, a, active=True) == 2
    assert await seats.set_member_seat(pool, owner, org, b, active=True) == 3
    assert await seats.set_member_seat(pool, owner, org, b, active=False) == 2
    billing = StripeBilling(config(stripe_double))
    result = await seats.sync_seats(pool, billing, org, proration="none")
    assert result.stripe_quantity == 2 == stripe_double.items["si_s"]["quantity"]
    again = await seats.sync_seats(pool, billing, org, proration="none")  # retried job
    assert again.stripe_quantity == 2
    posts = [r for r in stripe_double.requests if r == ("POST", "subscription_items/si_s")]
    assert len(posts) == 2 and stripe_double.items["si_s"]["proration_behavior"] == "none"
    # 2 → 3 → 2 again: new versions, so real updates, never a stale replay
    await seats.set_member_seat(pool, owner, org, b, active=True)
    await seats.sync_seats(pool, billing, org, proration="none")
    await seats.set_member_seat(pool, owner, org, b, active=False)
    await seats.sync_seats(pool, billing, org, proration="none")
    assert stripe_double.items["si_s"]["quantity"] == 2


async def test_a_fixed_seat_plan_refuses_the_extra_member(
    pool: Pool, stripe_double: StripeDouble
) -> None:
    org, owner = await seated_org(pool, stripe_double, fixed=2)
    a, b = await member(pool, org), await member(pool, org)
    await seats.set_member_seat(pool, owner, org, a, active=True)
    with pytest.raises(seats.SeatError, match="2 seats and all are taken"):
        await seats.set_member_seat(pool, owner, org, b, active=True)
    await seats.set_member_seat(pool, owner, org, a, active=False)
    assert await seats.set_member_seat(pool, owner, org, b, active=True) == 2


async def test_a_plain_member_may_not_change_seats(pool: Pool, stripe_double: StripeDouble) -> None:
    org, _owner = await seated_org(pool, stripe_double)
    a, b = await member(pool, org), await member(pool, org)
    async with as_service(pool, "test setup") as conn:
        await conn.execute(
            "update public.org_members set seat_active = true where user_id = %s", (a,)
        )
    with pytest.raises(seats.SeatError, match="role may not"):
        await seats.set_member_seat(pool, {"sub": a, "aud": "authenticated"}, org, b, active=True)


async def test_drift_is_repaired_and_audited(pool: Pool, stripe_double: StripeDouble) -> None:
    org, owner = await seated_org(pool, stripe_double)
    billing = StripeBilling(config(stripe_double))
    stripe_double.items["si_s"]["quantity"] = 9  # changed in the Stripe dashboard
    fixed = await seats.check_drift(pool, billing, proration="none")
    assert [(f.org_id, f.seats) for f in fixed] == [(org, 1)]
    assert stripe_double.items["si_s"]["quantity"] == 1
    assert await seats.check_drift(pool, billing, proration="none") == []
    kinds = await one(pool, f"select kind from public.audit_events where org_id = '{org}'")
    assert {"kind": "billing.seats_drift"} in kinds
    _ = owner


async def seat_jobs(db_url: str) -> list[dict[str, object]]:
    async with await AsyncConnection.connect(db_url, row_factory=dict_row) as conn:
        cur = await conn.execute(
            "select status::text as s, args, lock, queueing_lock,"
            " scheduled_at > now() as later from jobs.procrastinate_jobs"
            " where task_name = 'voco.billing.seats' order by id"
        )
        return list(await cur.fetchall())


async def debounce_elapsed(db_url: str) -> None:
    """The debounce delay passing, without waiting for it: the queued job is due."""
    async with await AsyncConnection.connect(
        db_url, autocommit=True, options=connection_options()
    ) as conn:  # the queue's own search_path: its triggers use unqualified names
        await conn.execute(
            "update procrastinate_jobs set scheduled_at = now() where status = 'todo'"
        )


async def test_seat_changes_are_debounced_into_one_job(
    pool: Pool, db_url: str, stripe_double: StripeDouble
) -> None:
    org, owner = await seated_org(pool, stripe_double)
    for _ in range(3):
        user = await member(pool, org)
        await seats.set_member_seat(pool, owner, org, user, active=True)
    # the membership changes queued one job, in their own transactions, for later
    assert await seat_jobs(db_url) == [
        {"s": "todo", "args": {"org": org}, "lock": f"seats:{org}",
         "queueing_lock": f"seats:{org}", "later": True}
    ]  # fmt: skip
    app = make_app(db_url, periodic=False)
    async with app.open_async():
        assert await defer_seat_sync(app, org, debounce_s=0) is False  # already queued
    await run_worker(db_url, once=True, config=config(stripe_double))
    assert stripe_double.items["si_s"]["quantity"] == 1  # not due yet: nothing sent
    await debounce_elapsed(db_url)
    await run_worker(db_url, once=True, config=config(stripe_double))
    assert stripe_double.items["si_s"]["quantity"] == 4
    assert [j["s"] for j in await seat_jobs(db_url)] == ["succeeded"]
    posts = [r for r in stripe_double.requests if r == ("POST", "subscription_items/si_s")]
    assert len(posts) == 1


async def test_a_rolled_back_seat_change_queues_nothing(
    pool: Pool, db_url: str, stripe_double: StripeDouble
) -> None:
    org, owner = await seated_org(pool, stripe_double, fixed=1)
    user = await member(pool, org)
    async with await AsyncConnection.connect(
        db_url, autocommit=True, options=connection_options()
    ) as conn:
        await conn.execute("delete from procrastinate_jobs")  # the setup's own sync
    with pytest.raises(seats.SeatError, match="plan has 1 seats and all are taken"):
        await seats.set_member_seat(pool, owner, org, user, active=True)
    assert await seat_jobs(db_url) == []


async def test_worker_once_runs_the_audit_retention_purge(pool: Pool, db_url: str) -> None:
    """Retention runs with billing off too; it leaves a verifying chain."""
    from tests.admin.sqltools import backdated_event, personal_org
    from voco.store.audit_db import verify_database

    org = personal_org(db_url, str(uuid.uuid4()), audited=False)
    for days in (400, 390):
        backdated_event(db_url, org, days)
    backdated_event(db_url, org, 5)
    await run_worker(db_url, once=True, config=None)
    async with await AsyncConnection.connect(db_url, row_factory=dict_row) as conn:
        cur = await conn.execute(
            "select seq, kind from public.audit_events where org_id = %s order by seq", (org,)
        )
        left = [(r["seq"], r["kind"]) for r in await cur.fetchall()]
    assert left == [(3, "turn"), (4, "retention.checkpoint")]
    assert (await verify_database(db_url)).ok
    jobs = [j for j in await queue(db_url) if j["task"] == "voco.audit.retention"]
    assert jobs == [{"task": "voco.audit.retention", "s": "succeeded", "attempts": 1}]
