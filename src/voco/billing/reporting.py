"""Aggregating unreported usage into meter reports, and sending them to Stripe.

Two steps, so that no network call happens inside a database transaction and
no usage is ever counted twice or lost:

1. :func:`aggregate` — one transaction: lock the usage watermark of every
   linked organisation ``FOR UPDATE SKIP LOCKED`` (a second worker takes the
   other organisations or none), sum in SQL, per (org, event name, bucket), the
   usage rows written by transactions between the watermark and the oldest
   transaction still running (``pg_snapshot_xmin``: no row below it can still
   appear), plan the reports with :func:`voco.billing.aggregate.plan_reports`
   (``seq`` = reports already made for the bucket, so late usage is a new
   report), insert them ``pending`` and move the watermarks. Commit: the usage
   now belongs to exactly one report. Marking is one row per organisation, not
   one per usage row (the migration ``usage_watermarks`` says why and what it
   assumes).
2. :func:`send_pending` — each pending (or earlier failed) report goes to
   Stripe with its identifier as idempotency key and is then marked ``sent``.
   A crash between the two leaves it pending; the resend carries the same
   identifier, which Stripe counts once.

Organisations without a Stripe customer are not taken at all (their usage is
*held*) and are reported on the first run after they are linked.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from voco.billing.aggregate import (
    BUCKET,
    GroupTotal,
    PlannedReport,
    plan_reports,
    report_identifier,
)
from voco.billing.stripe_api import PermanentStripeError, RetryableStripeError, StripeBilling
from voco.store.db import Pool, as_service

_WHY = "aggregation and reporting span every organisation's usage"


@dataclass(frozen=True)
class AggregateResult:
    rows: int  # usage rows now belonging to a report
    reports: int  # pending reports created
    expired: int  # groups too old for Stripe (status 'expired': a person must act)


@dataclass
class SendResult:
    sent: int = 0
    failed: list[str] = field(default_factory=list)  # "report <id>: <error>"


class WatermarkAhead(RuntimeError):
    """The database's transaction ids are below a stored watermark (a restore
    into a new cluster): aggregating would skip usage, so it refuses."""


async def aggregate(pool: Pool, *, now: datetime | None = None) -> AggregateResult:
    now = now or datetime.now(UTC)
    async with as_service(pool, _WHY) as conn:
        # every transaction below this has finished: the range is final
        cur = await conn.execute("select pg_snapshot_xmin(pg_current_snapshot())::text as upto")
        row = await cur.fetchone()
        assert row is not None
        upto: str = row["upto"]
        await conn.execute(
            "insert into public.usage_watermarks (org_id)"
            " select org_id from public.billing_customers where stripe_customer_id is not null"
            " on conflict (org_id) do nothing"
        )
        # a second worker skips the orgs this one holds (and takes the others)
        cur = await conn.execute(
            "select w.org_id::text as org, w.reported_below::text as below,"
            " w.reported_below > %s::xid8 as ahead, w.reported_below = %s::xid8 as done,"
            " c.stripe_customer_id from public.usage_watermarks w"
            " join public.billing_customers c"
            "   on c.org_id = w.org_id and c.stripe_customer_id is not null"
            " order by w.org_id for update of w skip locked",
            (upto, upto),
        )
        locked = await cur.fetchall()
        ahead = [o["org"] for o in locked if o["ahead"]]
        if ahead:
            raise WatermarkAhead(
                f"usage watermarks of {len(ahead)} organisation(s) are ahead of this database's"
                " transaction ids (restored into a new cluster?): nothing aggregated; see"
                " docs/architecture.md (billing) before moving them"
            )
        orgs = [o for o in locked if not o["done"]]
        if not orgs:
            return AggregateResult(0, 0, 0)
        ids = [o["org"] for o in orgs]
        # fresh usage has no statistics yet, so the planner guesses a few dozen
        # rows and sorts a million on disk to group them; the groups are few
        # (orgs × meters × hours), which is what hashing is for
        await conn.execute("set local enable_sort = off")
        cur = await conn.execute(
            "select w.org_id::text as org, u.event_name,"
            " date_bin(%s::interval, u.occurred_at, timestamptz '1970-01-01Z') as bucket,"
            " sum(u.value)::bigint as value, count(*) as n"
            " from public.usage_watermarks w join public.usage_events u"
            "   on u.org_id = w.org_id and u.txid >= w.reported_below and u.txid < %s::xid8"
            " where w.org_id = any(%s::uuid[]) group by 1, 2, 3 order by 1, 2, 3",
            (BUCKET, upto, ids),
        )
        groups = [
            GroupTotal(r["org"], r["event_name"], r["bucket"], int(r["value"]), int(r["n"]))
            for r in await cur.fetchall()
        ]
        await conn.execute("set local enable_sort = on")
        below = {o["org"]: o["below"] for o in orgs}
        plan = await _plan(conn, groups, {o["org"]: o["stripe_customer_id"] for o in orgs}, now)
        rows: list[tuple[Any, ...]] = [
            (r.org_id, r.customer_id, r.event_name, r.bucket_start, r.seq, r.value,
             r.identifier, "pending", below[r.org_id], upto)
            for r in plan.reports
        ]  # fmt: skip
        for g, seq, customer in plan.expired:
            ident = report_identifier(g.org_id, g.event_name, g.bucket_start, seq)
            rows.append(
                (g.org_id, customer, g.event_name, g.bucket_start, seq, g.value, ident,
                 "expired", below[g.org_id], upto)
            )  # fmt: skip
        if rows:
            await conn.execute(
                "insert into public.meter_reports (org_id, customer_id, event_name,"
                " bucket_start, seq, value, identifier, status, txid_from, txid_to)"
                " select * from unnest(%s::uuid[], %s::text[], %s::text[], %s::timestamptz[],"
                " %s::int[], %s::bigint[], %s::text[], %s::text[],"
                " %s::text[]::xid8[], %s::text[]::xid8[])",
                [list(col) for col in zip(*rows, strict=True)],
            )
        # the mark: one row per organisation, however many usage rows
        await conn.execute(
            "update public.usage_watermarks set reported_below = %s::xid8, updated_at = now()"
            " where org_id = any(%s::uuid[])",
            (upto, ids),
        )
        return AggregateResult(sum(g.rows for g in groups), len(plan.reports), len(plan.expired))


@dataclass(frozen=True)
class _Planned:
    reports: list[PlannedReport]
    expired: list[tuple[GroupTotal, int, str]]  # group, seq, customer


async def _plan(
    conn: Any, groups: list[GroupTotal], customers: dict[str, str], now: datetime
) -> _Planned:
    """Reports for ``groups``; ``seq`` counts the bucket's earlier reports.

    Only this transaction aggregates these orgs (their watermark rows are
    locked), so the counts cannot race."""
    if not groups:
        return _Planned([], [])
    cur = await conn.execute(
        "select r.org_id::text as org, r.event_name, r.bucket_start, count(*) as n"
        " from public.meter_reports r"
        " join unnest(%s::uuid[], %s::text[], %s::timestamptz[]) g(org_id, event_name, bucket)"
        "   on g.org_id = r.org_id and g.event_name = r.event_name"
        "  and g.bucket = r.bucket_start"
        " group by 1, 2, 3",
        (
            [g.org_id for g in groups],
            [g.event_name for g in groups],
            [g.bucket_start for g in groups],
        ),
    )
    prior = {
        (r["org"], r["event_name"], r["bucket_start"]): int(r["n"]) for r in await cur.fetchall()
    }
    plan = plan_reports(groups, customers=customers, prior_reports=prior, now=now)
    expired = [
        (g, prior.get((g.org_id, g.event_name, g.bucket_start), 0), customers[g.org_id])
        for g in plan.expired
    ]
    return _Planned(plan.reports, expired)


SEND_CONCURRENCY = 8  # Stripe accepts far more meter events per second than this


async def send_pending(
    pool: Pool, billing: StripeBilling, *, concurrency: int = SEND_CONCURRENCY
) -> SendResult:
    """Send every pending or failed report, ``concurrency`` at a time, each
    marked as soon as Stripe has it. The first retryable failure (Stripe is
    down or limiting: the job retries later, with backoff) stops further sends
    and is raised once the ones in flight are done and recorded; a permanent
    failure is recorded on its report and the others still go; it is raised at
    the end."""
    async with as_service(pool, _WHY) as conn:
        cur = await conn.execute(
            "select id, org_id::text as org, customer_id, event_name, bucket_start, seq,"
            " value, identifier from public.meter_reports"
            " where status in ('pending', 'failed') order by id"
        )
        todo = await cur.fetchall()
    result = SendResult()
    permanent: list[PermanentStripeError] = []
    retryable: list[RetryableStripeError] = []
    gate = asyncio.Semaphore(max(1, concurrency))

    async def send(row: dict[str, Any]) -> None:
        async with gate:
            if retryable:
                return  # Stripe is failing: leave the rest for the retry
            report = PlannedReport(
                org_id=row["org"], customer_id=row["customer_id"],
                event_name=row["event_name"], bucket_start=row["bucket_start"],
                seq=row["seq"], value=int(row["value"]), identifier=row["identifier"],
            )  # fmt: skip
            try:
                await billing.report(report)
            except (RetryableStripeError, PermanentStripeError) as exc:
                await _mark(pool, row["id"], "failed", str(exc))
                result.failed.append(f"report {row['id']}: {exc}")
                if isinstance(exc, RetryableStripeError):
                    retryable.append(exc)
                else:
                    permanent.append(exc)
                return
            await _mark(pool, row["id"], "sent", None)
            result.sent += 1

    await asyncio.gather(*(send(row) for row in todo))
    if retryable:
        raise retryable[0]
    if permanent:
        raise PermanentStripeError(f"{len(result.failed)} report(s) failed: {result.failed[0]}")
    return result


async def _mark(pool: Pool, report_id: int, status: str, error: str | None) -> None:
    async with as_service(pool, _WHY) as conn:
        await conn.execute(
            "update public.meter_reports set status = %s, attempts = attempts + 1,"
            " last_error = %s, updated_at = now(),"
            " sent_at = case when %s = 'sent' then now() else sent_at end where id = %s",
            (status, error, status, report_id),
        )


@dataclass(frozen=True)
class Status:
    by_status: dict[str, int]
    failed: list[dict[str, Any]]
    held: dict[str, int]  # org -> unreported usage rows of orgs with no Stripe customer
    unreported: int


async def status(pool: Pool) -> Status:
    async with as_service(pool, "the billing status spans every organisation") as conn:
        cur = await conn.execute(
            "select status, count(*) as n from public.meter_reports group by 1"
        )
        by_status = {r["status"]: int(r["n"]) for r in await cur.fetchall()}
        cur = await conn.execute(
            "select id, org_id::text as org, event_name, bucket_start, value, attempts,"
            " last_error, status from public.meter_reports"
            " where status in ('failed', 'expired') order by id limit 50"
        )
        failed = [dict(r) for r in await cur.fetchall()]
        cur = await conn.execute(
            "select u.org_id::text as org, c.stripe_customer_id is not null as linked,"
            " count(*) as n from public.usage_events u"
            " left join public.usage_watermarks w on w.org_id = u.org_id"
            " left join public.billing_customers c on c.org_id = u.org_id"
            " where u.txid >= coalesce(w.reported_below, '0'::xid8) group by 1, 2"
        )
        rows = await cur.fetchall()
        held = {r["org"]: int(r["n"]) for r in rows if not r["linked"]}
        return Status(by_status, failed, held, sum(int(r["n"]) for r in rows))


__all__ = ["AggregateResult", "SendResult", "Status", "aggregate", "send_pending", "status"]
