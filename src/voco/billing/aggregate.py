"""Turning unreported usage into Stripe meter events with stable identifiers.

The database groups unreported rows (that is where a million rows are summed
in seconds); this module decides, for each group, the report that goes to
Stripe. The identifier is the whole exactly-once story:

* it is derived from ``(org, event name, bucket, seq)`` only, so a report
  re-sent after a crash between the Stripe call and the mark carries the same
  identifier (and idempotency key), and Stripe counts it once;
* ``seq`` is the number of reports already made for that bucket, so usage that
  arrives late for a bucket that was already reported becomes a *new* report
  with the next ``seq`` — never a rewrite of what Stripe already has.

Groups of an organisation that has no Stripe customer yet are *held*: they stay
unreported and are planned again once the customer is linked.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from voco.billing.meters import PER_MODEL

BUCKET = timedelta(hours=1)
# Stripe refuses meter events older than 35 days; keep a day of margin.
MAX_EVENT_AGE = timedelta(days=34)
_SLUG = re.compile(r"[^a-z0-9]+")


def event_name(meter: str, model: str) -> str:
    """Stripe event name: per-model meters get the model as a suffix, so a team
    can price Sonnet and Haiku tokens on separate Stripe meters."""
    if meter in PER_MODEL and model:
        slug = _SLUG.sub("_", model.lower()).strip("_")[:40]
        return f"{meter}__{slug}"
    return meter


def bucket_start(ts: datetime, bucket: timedelta = BUCKET) -> datetime:
    if ts.tzinfo is None:
        raise ValueError("usage timestamps must be timezone-aware")
    seconds = int(bucket.total_seconds())
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


@dataclass(frozen=True)
class GroupTotal:
    """Unreported usage of one org, event name and bucket, summed by the database."""

    org_id: str
    event_name: str
    bucket_start: datetime
    value: int
    rows: int


@dataclass(frozen=True)
class PlannedReport:
    org_id: str
    customer_id: str
    event_name: str
    bucket_start: datetime
    seq: int
    value: int
    identifier: str

    @property
    def timestamp(self) -> int:
        """Unix seconds Stripe files the usage under: the bucket's start."""
        return int(self.bucket_start.timestamp())

    def stripe_params(self) -> dict[str, object]:
        return {
            "event_name": self.event_name,
            "identifier": self.identifier,
            "timestamp": self.timestamp,
            "payload": {"stripe_customer_id": self.customer_id, "value": str(self.value)},
        }


@dataclass(frozen=True)
class Plan:
    reports: list[PlannedReport]
    held: list[GroupTotal]  # no Stripe customer yet
    expired: list[GroupTotal]  # too old for Stripe: needs a person (credit/invoice item)


def report_identifier(org_id: str, event: str, bucket: datetime, seq: int) -> str:
    """Deterministic, ≤ 100 characters (Stripe's limit), the same on every engine."""
    key = f"{org_id}|{event}|{int(bucket.timestamp())}|{seq}"
    return "voco_" + hashlib.sha256(key.encode()).hexdigest()[:48]


def plan_reports(
    groups: Iterable[GroupTotal],
    *,
    customers: Mapping[str, str | None],
    prior_reports: Mapping[tuple[str, str, datetime], int],
    now: datetime,
) -> Plan:
    """One report per group with a positive value; ``prior_reports`` counts the
    reports already made per ``(org, event, bucket)``."""
    reports: list[PlannedReport] = []
    held: list[GroupTotal] = []
    expired: list[GroupTotal] = []
    for g in groups:
        if g.value <= 0:
            continue
        customer = customers.get(g.org_id)
        if not customer:
            held.append(g)
            continue
        if now - g.bucket_start > MAX_EVENT_AGE:
            expired.append(g)
            continue
        seq = prior_reports.get((g.org_id, g.event_name, g.bucket_start), 0)
        reports.append(
            PlannedReport(
                org_id=g.org_id,
                customer_id=customer,
                event_name=g.event_name,
                bucket_start=g.bucket_start,
                seq=seq,
                value=g.value,
                identifier=report_identifier(g.org_id, g.event_name, g.bucket_start, seq),
            )
        )
    return Plan(reports, held, expired)
