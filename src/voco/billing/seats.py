"""Automatic seats: the Stripe seat quantity follows the org's active members.

The database does the bookkeeping of every membership change, whoever
makes it (the org admin API, PostgREST, :func:`set_member_seat`): the
``org_members_seats`` trigger refuses the member beyond a fixed-seat plan's
seats (SQLSTATE ``VS409``, :func:`seat_refusal` words it), bumps
``seat_sync.version`` and queues the Stripe sync job in the same transaction.
The Stripe update is that job (:func:`sync_seats`), debounced by the queue: it reads
the *current* count, so a member added and removed quickly costs one update
that sets the right number. Its idempotency key includes the version, so a
retried job replays while 3 → 4 → 3 is never mistaken for a replay.
:func:`check_drift` is the periodic invariant "Stripe quantity == active
seats": it repairs and audits any difference (a change made in the Stripe
dashboard, a lost job).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from voco.billing.entitlements import seat_refusal
from voco.billing.stripe_api import StripeBilling, StripeFailure
from voco.store.db import Conn, Pool, as_service, as_user

_WHY = "seat sync reads memberships and subscriptions the job, not a member, acts on"


class SeatError(Exception):
    """A seat change that is refused; the message says why and what to do."""


async def _seats(conn: Conn, org: str) -> int:
    cur = await conn.execute(
        "select count(*) as n from public.org_members"
        " where org_id = %s and seat_active and removed_at is null",
        (org,),
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def set_member_seat(
    pool: Pool, claims: dict[str, Any], org: str, user: str, *, active: bool
) -> int:
    """Give or take ``user``'s seat in ``org`` as the admin in ``claims``;
    returns the org's seat count afterwards. The fixed-seat rule, the version
    bump and the queued Stripe sync are the ``org_members_seats`` trigger's
    (migration ``billing_seats``), so they hold for every writer."""
    try:
        async with as_user(pool, claims) as conn:
            cur = await conn.execute(
                "update public.org_members set seat_active = %s"
                " where org_id = %s and user_id = %s and removed_at is null",
                (active, org, user),
            )
            if cur.rowcount != 1:
                raise SeatError(
                    "no such member in this organisation, or your role may not change seats"
                )
            # the member.seat audit row is the org_members trigger's (member_audit migration)
            count = await _seats(conn, org)
    except psycopg.Error as exc:
        text = seat_refusal(exc)
        if text is None:
            raise
        raise SeatError(text) from None
    return count


@dataclass(frozen=True)
class SeatSync:
    org_id: str
    seats: int
    stripe_quantity: int | None  # None: the org has no seat item to update


async def _seat_item(conn: Conn, org: str) -> tuple[str | None, int]:
    cur = await conn.execute(
        "select s.seat_item_id from public.subscriptions s"
        " join public.billing_customers c on c.stripe_customer_id = s.customer_id"
        " where c.org_id = %s and s.status in ('active', 'trialing', 'past_due')"
        " and s.seat_item_id is not null order by s.event_created desc limit 1",
        (org,),
    )
    row = await cur.fetchone()
    cur = await conn.execute("select version from public.seat_sync where org_id = %s", (org,))
    v = await cur.fetchone()
    return (row["seat_item_id"] if row else None), int(v["version"]) if v else 0


async def sync_seats(pool: Pool, billing: StripeBilling, org: str, *, proration: str) -> SeatSync:
    async with as_service(pool, _WHY) as conn:
        item, version = await _seat_item(conn, org)
        seats = await _seats(conn, org)
    if item is None:
        return SeatSync(org, seats, None)
    try:
        qty = await billing.set_seats(
            item, seats, proration=proration, key=f"voco_seats_{org}_{version}_{seats}"
        )
    except StripeFailure as exc:
        async with as_service(pool, _WHY) as conn:
            await conn.execute(
                "update public.seat_sync set last_error = %s, updated_at = now() where org_id = %s",
                (str(exc), org),
            )
        raise
    async with as_service(pool, _WHY) as conn:
        await conn.execute(
            "insert into public.seat_sync (org_id, version, synced_version, synced_quantity)"
            " values (%s, %s, %s, %s) on conflict (org_id) do update set"
            " synced_version = greatest(public.seat_sync.synced_version, excluded.synced_version),"
            " synced_quantity = excluded.synced_quantity, last_error = null, updated_at = now()",
            (org, version, version, qty),
        )
        await conn.execute(
            "update public.subscriptions set quantity = %s where seat_item_id = %s", (qty, item)
        )
    return SeatSync(org, seats, qty)


async def check_drift(pool: Pool, billing: StripeBilling, *, proration: str) -> list[SeatSync]:
    """Every org with a seat item: compare with Stripe, repair and audit drift."""
    async with as_service(pool, _WHY) as conn:
        cur = await conn.execute(
            "select distinct c.org_id::text as org from public.billing_customers c"
            " join public.subscriptions s on s.customer_id = c.stripe_customer_id"
            " where s.seat_item_id is not null"
            " and s.status in ('active', 'trialing', 'past_due')"
        )
        orgs = [r["org"] for r in await cur.fetchall()]
    repaired: list[SeatSync] = []
    for org in orgs:
        async with as_service(pool, _WHY) as conn:
            item, version = await _seat_item(conn, org)
            seats = await _seats(conn, org)
        if item is None:
            continue
        stripe_qty = await billing.seat_quantity(item)
        if stripe_qty == seats:
            continue
        # minute in the key: the same drift found again later is repaired again
        key = f"voco_seats_repair_{org}_{version}_{seats}_{int(time.time()) // 60}"
        qty = await billing.set_seats(item, seats, proration=proration, key=key)
        async with as_service(pool, _WHY) as conn:
            await conn.execute(
                "select public.audit_append(%s, 'billing.seats_drift', %s, %s::jsonb)",
                (org, item, json.dumps({"stripe_had": stripe_qty, "seats": seats})),
            )
        repaired.append(SeatSync(org, seats, qty))
    return repaired
