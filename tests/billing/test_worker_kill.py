"""A real ``voco worker`` process SIGKILLed between the Stripe send and the mark.

Deterministic, no timing: the Stripe double records the first meter event to
arrive and then never answers it (Stripe has the usage, the worker does not know),
and sets an event the test waits on; the test then SIGKILLs the worker. A
second worker process finds that report still pending and resends it with the
same identifier; the double, like Stripe, counts an identifier once. The
totals Stripe holds equal the usage recorded, and every report ends sent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.billing.conftest import add_usage, make_org
from tests.providers.doubles.stripe import API_KEY, Fault, StripeDouble
from voco.billing.meters import ASSISTANT_AUDIO_MS, TOOL_ACTIONS, USER_SPEECH_MS
from voco.billing.stripe_api import ENV_API_BASE, ENV_KEY
from voco.store.db import Pool, as_service

pytestmark = pytest.mark.timeout(240)


async def worker(db_url: str, double: StripeDouble, home: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, ENV_KEY: API_KEY, ENV_API_BASE: double.url, "VOCO_HOME": str(home)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voco.cli", "worker", "--once", "--database", db_url,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def reports(pool: Pool) -> list[tuple[str, str]]:
    async with as_service(pool, "test") as conn:
        cur = await conn.execute(
            "select event_name, status from public.meter_reports order by event_name"
        )
        return [(r["event_name"], r["status"]) for r in await cur.fetchall()]


async def test_worker_killed_between_send_and_mark_resends_the_same_identifier(
    pool: Pool, db_url: str, stripe_double: StripeDouble, tmp_path: Path
) -> None:
    org = await make_org(pool, "cus_k", stripe_double)
    expected = {
        ("cus_k", meter): await add_usage(pool, org, meter, values)
        for meter, values in (
            (ASSISTANT_AUDIO_MS, [4200, 800]),
            (TOOL_ACTIONS, [1, 2, 3]),
            (USER_SPEECH_MS, [1500]),
        )
    }
    between_send_and_mark = asyncio.Event()
    # the first meter event to arrive is recorded and never answered
    stripe_double.faults.append(Fault(drop_after=True, reached=between_send_and_mark))

    first = await worker(db_url, stripe_double, tmp_path)
    try:
        await asyncio.wait_for(between_send_and_mark.wait(), 120)
    finally:
        first.send_signal(signal.SIGKILL)
        await first.communicate()
    assert first.returncode == -signal.SIGKILL
    # the report whose answer never came: Stripe has it, the database says pending
    async with as_service(pool, "test") as conn:
        cur = await conn.execute(
            "select identifier from public.meter_reports where status = 'pending'"
        )
        pending = {r["identifier"] for r in await cur.fetchall()}
    in_stripe = {e["identifier"] for e in stripe_double.meter_events}
    assert pending & in_stripe, "the killed worker had sent a report it never marked"
    sends_before = stripe_double.requests.count(("POST", "billing/meter_events"))

    second = await worker(db_url, stripe_double, tmp_path)
    _out, err = await second.communicate()
    assert second.returncode == 0, err.decode()

    assert stripe_double.totals() == expected  # exactly what was recorded, once
    identifiers = [e["identifier"] for e in stripe_double.meter_events]
    assert len(identifiers) == len(set(identifiers)) == 3
    assert pending <= set(identifiers)
    assert sorted(set(dict(await reports(pool)).values())) == ["sent"]
    # the second worker resent every pending report, the one Stripe had included
    resends = stripe_double.requests.count(("POST", "billing/meter_events")) - sends_before
    assert resends == len(pending)
