"""Aggregating unreported usage into meter reports, and sending them to Stripe.

Two steps, so that no network call happens inside a database transaction and
no usage is ever counted twice or lost:

1. :func:`aggregate` — one transaction: take the unreported usage rows of
   linked organisations ``FOR UPDATE SKIP LOCKED`` (a second worker takes other
   rows or none), sum them in SQL per (org, event name, bucket), plan the
   reports with :func:`voco.billing.aggregate.plan_reports` (``seq`` = reports
   already made for the bucket, counted under a per-bucket advisory lock so two
   workers cannot pick the same ``seq``), insert them ``pending`` and point the
   rows at them. Commit: the usage now belongs to exactly one report.
2. :func:`send_pending` — each pending (or earlier failed) report goes to
   Stripe with its identifier as idempotency key and is then marked ``sent``.
   A crash between the two leaves it pending; the resend carries the same
   identifier, which Stripe counts once.

Organisations without a Stripe customer are not taken at all (their usage is
*held*) and are reported on the first run after they are linked.
"""

from __future__ import annotations

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


async def aggregate(pool: Pool, *, now: datetime | None = None) -> AggregateResult:
    now = now or datetime.now(UTC)
    async with as_service(pool, _WHY) as conn:
        await conn.execute(
            "create temporary table _picked on commit drop as"
            " select u.id, u.org_id, u.event_name,"
            " date_bin(%s::interval, u.occurred_at, timestamptz '1970-01-01Z') as bucket,"
            " u.value from public.usage_events u"
            " join public.billing_customers c"
            "   on c.org_id = u.org_id and c.stripe_customer_id is not null"
            " where u.report_id is null"
            " for update of u skip locked",
            (BUCKET,),
        )
        # statistics for the planner: the mark below joins on it (hash, not loops)
        await conn.execute("analyze _picked")
        cur = await conn.execute(
            "select org_id::text as org, event_name, bucket, sum(value)::bigint as value,"
            " count(*) as n from _picked group by 1, 2, 3 order by 1, 2, 3"
        )
        groups = [
            GroupTotal(r["org"], r["event_name"], r["bucket"], int(r["value"]), int(r["n"]))
            for r in await cur.fetchall()
        ]
        if not groups:
            return AggregateResult(0, 0, 0)
        # serialise planners of the same bucket (sorted: no lock-order deadlock)
        await conn.execute(
            "select pg_advisory_xact_lock(hashtextextended('voco.meter|' || org || '|'"
            " || event_name || '|' || extract(epoch from bucket)::bigint, 0))"
            " from (select distinct org_id::text as org, event_name, bucket from _picked"
            "       order by 1, 2, 3) g"
        )
        cur = await conn.execute(
            "select r.org_id::text as org, r.event_name, r.bucket_start, count(*) as n"
            " from public.meter_reports r"
            " join (select distinct org_id, event_name, bucket from _picked) g"
            "   on g.org_id = r.org_id and g.event_name = r.event_name"
            "  and g.bucket = r.bucket_start"
            " group by 1, 2, 3"
        )
        prior = {
            (r["org"], r["event_name"], r["bucket_start"]): int(r["n"])
            for r in await cur.fetchall()
        }
        cur = await conn.execute(
            "select org_id::text as org, stripe_customer_id from public.billing_customers"
            " where org_id = any(%s::uuid[])",
            (sorted({g.org_id for g in groups}),),
        )
        customers = {r["org"]: r["stripe_customer_id"] for r in await cur.fetchall()}
        plan = plan_reports(groups, customers=customers, prior_reports=prior, now=now)
        rows: list[tuple[Any, ...]] = [
            (r.org_id, r.customer_id, r.event_name, r.bucket_start, r.seq, r.value,
             r.identifier, "pending")
            for r in plan.reports
        ]  # fmt: skip
        for g in plan.expired:
            seq = prior.get((g.org_id, g.event_name, g.bucket_start), 0)
            ident = report_identifier(g.org_id, g.event_name, g.bucket_start, seq)
            rows.append(
                (g.org_id, customers[g.org_id], g.event_name, g.bucket_start, seq, g.value,
                 ident, "expired")
            )  # fmt: skip
        cur = await conn.execute(
            "insert into public.meter_reports (org_id, customer_id, event_name, bucket_start,"
            " seq, value, identifier, status)"
            " select * from unnest(%s::uuid[], %s::text[], %s::text[], %s::timestamptz[],"
            " %s::int[], %s::bigint[], %s::text[], %s::text[]) returning id",
            [list(col) for col in zip(*rows, strict=True)],
        )
        ids = [r["id"] for r in await cur.fetchall()]
        cur = await conn.execute(
            "update public.usage_events u set report_id = r.id"
            " from _picked p join public.meter_reports r"
            "   on r.org_id = p.org_id and r.event_name = p.event_name"
            "  and r.bucket_start = p.bucket and r.id = any(%s)"
            " where u.id = p.id",
            (ids,),
        )
        return AggregateResult(cur.rowcount, len(plan.reports), len(plan.expired))


async def send_pending(pool: Pool, billing: StripeBilling) -> SendResult:
    """Send every pending or failed report. Stops at the first retryable
    failure (Stripe is down or limiting: the job retries later, with backoff)
    and raises it after recording it; a permanent failure is recorded on its
    report and the others still go; it is raised at the end."""
    async with as_service(pool, _WHY) as conn:
        cur = await conn.execute(
            "select id, org_id::text as org, customer_id, event_name, bucket_start, seq,"
            " value, identifier from public.meter_reports"
            " where status in ('pending', 'failed') order by id"
        )
        todo = await cur.fetchall()
    result = SendResult()
    permanent: PermanentStripeError | None = None
    for row in todo:
        report = PlannedReport(
            org_id=row["org"], customer_id=row["customer_id"], event_name=row["event_name"],
            bucket_start=row["bucket_start"], seq=row["seq"], value=int(row["value"]),
            identifier=row["identifier"],
        )  # fmt: skip
        try:
            await billing.report(report)
        except (RetryableStripeError, PermanentStripeError) as exc:
            await _mark(pool, row["id"], "failed", str(exc))
            result.failed.append(f"report {row['id']}: {exc}")
            if isinstance(exc, RetryableStripeError):
                raise
            permanent = exc
            continue
        await _mark(pool, row["id"], "sent", None)
        result.sent += 1
    if permanent is not None:
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
            "select u.org_id::text as org, count(*) as n from public.usage_events u"
            " left join public.billing_customers c on c.org_id = u.org_id"
            " where u.report_id is null and c.stripe_customer_id is null group by 1"
        )
        held = {r["org"]: int(r["n"]) for r in await cur.fetchall()}
        cur = await conn.execute(
            "select count(*) as n from public.usage_events where report_id is null"
        )
        row = await cur.fetchone()
        return Status(by_status, failed, held, int(row["n"]) if row else 0)


__all__ = ["AggregateResult", "SendResult", "Status", "aggregate", "send_pending", "status"]
