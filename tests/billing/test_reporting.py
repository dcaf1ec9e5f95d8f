"""Aggregation and reporting against real Postgres and the Stripe double:
every test ends with "what Stripe counted == the usage recorded"."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.billing.conftest import add_usage, link, make_org
from tests.providers.doubles.stripe import API_KEY, Fault, StripeDouble
from voco.billing.aggregate import PlannedReport
from voco.billing.meters import TOOL_ACTIONS, USER_SPEECH_MS
from voco.billing.reporting import WatermarkAhead, aggregate, send_pending, status
from voco.billing.stripe_api import (
    BillingConfig,
    PermanentStripeError,
    RetryableStripeError,
    StripeBilling,
)
from voco.store.db import Pool, as_service

pytestmark = pytest.mark.timeout(120)


def billing(double: StripeDouble, timeout_s: float = 5.0) -> StripeBilling:
    return StripeBilling(BillingConfig(API_KEY, None, double.url), timeout_s=timeout_s)


async def run(pool: Pool, double: StripeDouble) -> None:
    await aggregate(pool)
    await send_pending(pool, billing(double))


async def unreported(pool: Pool) -> int:
    return (await status(pool)).unreported


async def test_usage_is_reported_once_and_marked(pool: Pool, stripe_double: StripeDouble) -> None:
    org = await make_org(pool, "cus_a", stripe_double)
    total = await add_usage(pool, org, USER_SPEECH_MS, [1200, 800, 5])
    result = await aggregate(pool)
    assert (result.rows, result.reports) == (3, 1)
    assert (await send_pending(pool, billing(stripe_double))).sent == 1
    await run(pool, stripe_double)  # nothing new: nothing sent again
    assert stripe_double.totals() == {("cus_a", USER_SPEECH_MS): total}
    assert await unreported(pool) == 0
    assert (await status(pool)).by_status == {"sent": 1}


async def test_late_usage_is_a_new_report_never_a_rewrite(
    pool: Pool, stripe_double: StripeDouble
) -> None:
    org = await make_org(pool, "cus_a", stripe_double)
    first = await add_usage(pool, org, TOOL_ACTIONS, [2])
    await run(pool, stripe_double)
    late = await add_usage(pool, org, TOOL_ACTIONS, [3])  # same bucket, after the report
    await run(pool, stripe_double)
    assert len(stripe_double.meter_events) == 2
    assert len({e["identifier"] for e in stripe_double.meter_events}) == 2
    assert stripe_double.totals() == {("cus_a", TOOL_ACTIONS): first + late}


async def test_an_org_without_customer_is_held_then_reported(
    pool: Pool, stripe_double: StripeDouble
) -> None:
    org = await make_org(pool)
    total = await add_usage(pool, org, TOOL_ACTIONS, [4, 4])
    await run(pool, stripe_double)
    assert stripe_double.meter_events == []
    assert (await status(pool)).held == {org: 2}
    await link(pool, org, "cus_late", stripe_double)
    await run(pool, stripe_double)
    assert stripe_double.totals() == {("cus_late", TOOL_ACTIONS): total}


@pytest.mark.parametrize("fault", [Fault(status=500), Fault(status=429), Fault(hang_s=2.0)])
async def test_stripe_500_429_and_timeouts_are_retried_not_lost(
    pool: Pool, stripe_double: StripeDouble, fault: Fault
) -> None:
    org = await make_org(pool, "cus_a", stripe_double)
    total = await add_usage(pool, org, USER_SPEECH_MS, [100, 200])
    await aggregate(pool)
    stripe_double.faults.append(fault)
    with pytest.raises(RetryableStripeError):
        await send_pending(pool, billing(stripe_double, timeout_s=0.5))
    st = await status(pool)
    assert st.by_status == {"failed": 1} and st.failed[0]["last_error"]
    await send_pending(pool, billing(stripe_double))  # the job's retry
    assert stripe_double.totals() == {("cus_a", USER_SPEECH_MS): total}
    assert (await status(pool)).by_status == {"sent": 1}


async def test_stripe_processed_but_the_answer_was_lost(
    pool: Pool, stripe_double: StripeDouble
) -> None:
    org = await make_org(pool, "cus_a", stripe_double)
    total = await add_usage(pool, org, USER_SPEECH_MS, [700])
    await aggregate(pool)
    stripe_double.faults.append(Fault(drop_after=True))
    with pytest.raises(RetryableStripeError):
        await send_pending(pool, billing(stripe_double, timeout_s=0.5))
    await send_pending(pool, billing(stripe_double))
    assert stripe_double.totals() == {("cus_a", USER_SPEECH_MS): total}


class _Killed(BaseException):
    """The worker process dies: nothing after this line of the job runs."""


class DiesAfterSend(StripeBilling):
    async def report(self, r: PlannedReport) -> None:
        await super().report(r)
        raise _Killed


async def test_worker_killed_between_send_and_mark(pool: Pool, stripe_double: StripeDouble) -> None:
    org = await make_org(pool, "cus_a", stripe_double)
    total = await add_usage(pool, org, TOOL_ACTIONS, [5, 6])
    await aggregate(pool)
    with pytest.raises(_Killed):
        await send_pending(pool, DiesAfterSend(BillingConfig(API_KEY, None, stripe_double.url)))
    assert (await status(pool)).by_status == {"pending": 1}  # sent, never marked
    await send_pending(pool, billing(stripe_double))  # resent: same identifier
    assert len(stripe_double.meter_events) == 1
    assert stripe_double.totals() == {("cus_a", TOOL_ACTIONS): total}
    assert (await status(pool)).by_status == {"sent": 1}


async def test_two_workers_racing(pool: Pool, stripe_double: StripeDouble) -> None:
    orgs = [await make_org(pool, f"cus_{i}", stripe_double) for i in range(3)]
    expected = {}
    for i, org in enumerate(orgs):
        expected[(f"cus_{i}", TOOL_ACTIONS)] = await add_usage(
            pool, org, TOOL_ACTIONS, list(range(1, 200))
        )

    async def worker() -> None:
        for _ in range(3):
            await aggregate(pool)
            await send_pending(pool, billing(stripe_double))

    await asyncio.gather(worker(), worker(), add_more(pool, orgs[0], expected))
    await run(pool, stripe_double)
    assert stripe_double.totals() == expected
    assert await unreported(pool) == 0
    async with as_service(pool, "test") as conn:
        cur = await conn.execute(
            # each usage row is traced to exactly one sent report by its txid range
            "select count(*) as n, count(distinct u.id) as rows from public.usage_events u"
            " join public.meter_reports r on r.org_id = u.org_id"
            " and r.event_name = u.event_name and u.txid >= r.txid_from and u.txid < r.txid_to"
            " and r.bucket_start = date_bin('1 hour', u.occurred_at, timestamptz '1970-01-01Z')"
            " where r.status = 'sent'"
        )
        row = await cur.fetchone()
    assert row is not None and row["n"] == row["rows"] == 3 * 199 + 50


async def add_more(pool: Pool, org: str, expected: dict[tuple[str, str], int]) -> None:
    for _ in range(10):
        expected[("cus_0", TOOL_ACTIONS)] += await add_usage(pool, org, TOOL_ACTIONS, [7] * 5)
        await asyncio.sleep(0)


async def test_a_missing_customer_at_stripe_fails_visibly(
    pool: Pool, stripe_double: StripeDouble
) -> None:
    org = await make_org(pool, "cus_gone")  # linked here, unknown to Stripe
    await add_usage(pool, org, TOOL_ACTIONS, [1])
    await aggregate(pool)
    with pytest.raises(PermanentStripeError, match="No such customer"):
        await send_pending(pool, billing(stripe_double))
    st = await status(pool)
    assert st.by_status == {"failed": 1} and "No such customer" in st.failed[0]["last_error"]


async def test_usage_older_than_stripe_accepts_is_set_aside(
    pool: Pool, stripe_double: StripeDouble
) -> None:
    org = await make_org(pool, "cus_a", stripe_double)
    await add_usage(pool, org, TOOL_ACTIONS, [9], at=datetime.now(UTC) - timedelta(days=40))
    result = await aggregate(pool)
    assert result.expired == 1
    await send_pending(pool, billing(stripe_double))
    assert stripe_double.meter_events == []
    assert (await status(pool)).by_status == {"expired": 1}


async def test_a_forged_txid_is_overwritten_so_usage_cannot_hide_below_the_watermark(
    pool: Pool, stripe_double: StripeDouble
) -> None:
    org = await make_org(pool, "cus_a", stripe_double)
    await run(pool, stripe_double)  # the org's watermark is now past every old txid
    async with as_service(pool, "test") as conn:
        await conn.execute(
            "insert into public.usage_events (id, org_id, thread_id, turn_id, user_id, meter,"
            " event_name, value, txid) values (gen_random_uuid(), %s, 'th', 't',"
            " gen_random_uuid(), %s, %s, 5, '3'::xid8)",
            (org, TOOL_ACTIONS, TOOL_ACTIONS),
        )
    await run(pool, stripe_double)
    assert stripe_double.totals() == {("cus_a", TOOL_ACTIONS): 5}


async def test_a_watermark_ahead_of_the_database_refuses_instead_of_skipping(
    pool: Pool, stripe_double: StripeDouble
) -> None:
    """Transaction ids restart in a new cluster (dump/restore): the stored
    watermark is then ahead, and every new row would look reported."""
    org = await make_org(pool, "cus_a", stripe_double)
    await add_usage(pool, org, TOOL_ACTIONS, [4])
    async with as_service(pool, "test") as conn:
        await conn.execute(
            "insert into public.usage_watermarks (org_id, reported_below)"
            " values (%s, '999999999999'::xid8)",
            (org,),
        )
    with pytest.raises(WatermarkAhead, match="ahead of this database"):
        await aggregate(pool)
    assert (await status(pool)).by_status == {}
    assert stripe_double.meter_events == []
