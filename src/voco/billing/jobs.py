"""The billing jobs on procrastinate (Postgres job queue; no second broker).

* ``voco.billing.aggregate`` — every minute and on demand: aggregate, then
  send pending reports. Stripe 429/5xx/timeouts raise
  :class:`RetryableStripeError`, which the queue retries with exponential
  backoff; after the last attempt the job is ``failed`` in the queue and its
  reports stay ``failed`` in ``meter_reports`` (``voco billing status``).
* ``voco.billing.seats`` — per org, deferred with a queueing lock and a delay,
  so a burst of membership changes is one Stripe update (debounce).
* ``voco.billing.seat_drift`` — every ten minutes, the seat invariant.
* ``voco.audit.retention`` — daily (and at every ``voco worker --once``): the
  per-org audit retention purge (``voco admin purge-audit``), which leaves a
  signed ``retention.checkpoint`` row so the rest of the chain verifies. It
  runs with billing off too (queue ``maintenance``): retention is a SOC 2
  control, not a billing feature.

The queue's tables live in schema ``jobs`` (:mod:`voco.store.job_schema`);
its connections use that ``search_path``. Billing is off without
``STRIPE_SECRET_KEY``: the jobs then do nothing and say so.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from psycopg import AsyncConnection, OperationalError
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from voco.billing import reporting, seats
from voco.billing.stripe_api import BillingConfig, RetryableStripeError, StripeBilling
from voco.store.db import Pool
from voco.store.job_schema import connection_options
from voco.store.migrate import migrate

log = logging.getLogger("voco.billing")
QUEUE = "billing"
MAINTENANCE = "maintenance"
OFF = "billing is off (STRIPE_SECRET_KEY is not set): nothing is reported to Stripe"


def default_retry() -> procrastinate.RetryStrategy:
    return procrastinate.RetryStrategy(
        max_attempts=int(os.environ.get("VOCO_BILLING_MAX_ATTEMPTS", "6")),
        wait=int(os.environ.get("VOCO_BILLING_RETRY_WAIT_S", "5")),
        exponential_wait=int(os.environ.get("VOCO_BILLING_RETRY_EXP_S", "2")),
        retry_exceptions={RetryableStripeError, OperationalError},
    )


@dataclass
class Services:
    pool: Pool
    billing: StripeBilling | None
    proration: str = "create_prorations"
    url: str = ""  # the purge connects as the database owner (audit_purge)


_services: Services | None = None


def _need() -> Services:
    if _services is None:
        raise RuntimeError("billing jobs run inside `voco worker` (no services bound)")
    return _services


def make_app(
    url: str, retry: procrastinate.RetryStrategy | None = None, *, periodic: bool = True
) -> procrastinate.App:
    """The queue app; ``periodic=False`` for ``--once`` (it runs what is due, it
    does not start the schedule)."""
    connector = procrastinate.PsycopgConnector(
        conninfo=url, kwargs={"options": connection_options()}
    )
    app = procrastinate.App(connector=connector)
    strategy = retry or default_retry()

    # no queueing lock: two aggregations at once are safe (SKIP LOCKED and
    # per-bucket locks), and a lock would collide with the job's own retry
    @app.task(name="voco.billing.aggregate", queue=QUEUE, retry=strategy)
    async def aggregate_task(timestamp: int = 0) -> str:
        s = _need()
        if s.billing is None:
            return OFF
        agg = await reporting.aggregate(s.pool)
        sent = await reporting.send_pending(s.pool, s.billing)
        return f"aggregated {agg.rows} rows into {agg.reports} reports; sent {sent.sent}"

    @app.task(name="voco.billing.seats", queue=QUEUE, retry=strategy)
    async def seats_task(org: str) -> str:
        s = _need()
        if s.billing is None:
            return OFF
        r = await seats.sync_seats(s.pool, s.billing, org, proration=s.proration)
        return f"org {org}: {r.seats} seats, Stripe quantity {r.stripe_quantity}"

    @app.task(name="voco.billing.seat_drift", queue=QUEUE, retry=strategy)
    async def drift_task(timestamp: int = 0) -> str:
        s = _need()
        if s.billing is None:
            return OFF
        fixed = await seats.check_drift(s.pool, s.billing, proration=s.proration)
        return f"seat drift repaired in {len(fixed)} organisations"

    @app.task(name="voco.audit.retention", queue=MAINTENANCE, retry=strategy)
    async def retention_task(timestamp: int = 0) -> str:
        # admin sits beside billing (it will call billing for seats): imported
        # where used, so neither package imports the other at load time
        from voco.admin.lifecycle import purge_audit

        s = _need()
        done = await purge_audit(s.url)
        rows = sum(p.purged_to - p.purged_from + 1 for p in done)
        return f"audit retention: purged {rows} rows in {len(done)} organisations"

    if periodic:
        app.periodic(cron="* * * * *", periodic_id="aggregate")(aggregate_task)
        app.periodic(cron="*/10 * * * *", periodic_id="seat_drift")(drift_task)
        app.periodic(cron="17 3 * * *", periodic_id="audit_retention")(retention_task)
    return app


async def defer_seat_sync(app: procrastinate.App, org: str, *, debounce_s: int = 10) -> bool:
    """Queue a seat sync for ``org`` unless one is already queued (that one
    reads the latest count when it runs). True if this call queued it."""
    try:
        await app.configure_task(
            "voco.billing.seats", queueing_lock=f"seats:{org}", schedule_in={"seconds": debounce_s}
        ).defer_async(org=org)
    except AlreadyEnqueued:
        return False
    return True


async def defer_retention(app: procrastinate.App) -> bool:
    try:
        await app.configure_task(
            "voco.audit.retention", queueing_lock="audit_retention"
        ).defer_async(timestamp=0)
    except AlreadyEnqueued:
        return False
    return True


async def defer_aggregate(app: procrastinate.App) -> bool:
    try:
        await app.configure_task("voco.billing.aggregate").defer_async(timestamp=0)
    except AlreadyEnqueued:
        return False
    return True


@asynccontextmanager
async def services(url: str, config: BillingConfig | None) -> AsyncIterator[Services]:
    """The worker's own pool (migrated) and Stripe client, bound for the tasks."""
    global _services
    pool: Pool = AsyncConnectionPool(
        url,
        connection_class=AsyncConnection[DictRow],
        kwargs={"autocommit": True, "row_factory": dict_row},
        min_size=1,
        max_size=4,
        open=False,
    )
    await pool.open(wait=True, timeout=30.0)
    try:
        async with pool.connection() as conn:
            await migrate(conn)
        billing = StripeBilling(config) if config else None
        proration = os.environ.get("VOCO_STRIPE_PRORATION", "create_prorations")
        _services = Services(pool, billing, proration, url)
        yield _services
    finally:
        _services = None
        await pool.close()


async def run_worker(
    url: str, *, once: bool, config: BillingConfig | None = None,
    retry: procrastinate.RetryStrategy | None = None,
) -> None:  # fmt: skip
    """``voco worker``: forever (periodic jobs included), or ``once``: queue an
    aggregation and the retention purge, process everything due, exit."""
    if config is None:
        log.warning(OFF)
    async with services(url, config):
        app = make_app(url, retry, periodic=not once)
        async with app.open_async():
            if once:
                await defer_aggregate(app)
                await defer_retention(app)
            await app.run_worker_async(
                queues=[QUEUE, MAINTENANCE], wait=not once, install_signal_handlers=not once
            )
