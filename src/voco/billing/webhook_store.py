"""A verified Stripe webhook → the org's billing rows, once, in one transaction.

The event id is inserted first (``stripe_events`` primary key): a replay finds
it and is a 200 no-op. The subscription's stored state is read ``FOR UPDATE``
and the pure :func:`voco.billing.events.reduce_event` decides the change, so
an older event delivered late changes nothing. Each change writes its
``audit_events`` row in the same transaction.

Runs as ``service_role``: a webhook comes from Stripe, not from a member, so
no user's claims could authorise it; its authenticity is the signature checked
before this module is reached.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from voco.billing.events import (
    HANDLED,
    Ignore,
    LinkCustomer,
    PutSubscription,
    SubscriptionState,
    UnlinkCustomer,
    invoice_subscription_id,
    reduce_event,
)
from voco.store.db import Conn, Pool, as_service
from voco.store.tenancy import SYSTEM_ORG, as_uuid

_WHY = "a Stripe webhook is authorised by its signature, not by a member's token"


@dataclass(frozen=True)
class Handled:
    status: int
    outcome: str


async def apply_event(pool: Pool, event: dict[str, Any]) -> Handled:
    etype = str(event.get("type", ""))
    if etype not in HANDLED:
        return Handled(200, f"ignored: event type {etype!r} is not used by Voco")
    event_id = str(event["id"])
    async with as_service(pool, _WHY) as conn:
        cur = await conn.execute(
            "insert into public.stripe_events (event_id, type, created, outcome)"
            " values (%s, %s, %s, 'applying') on conflict (event_id) do nothing returning 1",
            (event_id, etype, int(event["created"])),
        )
        if await cur.fetchone() is None:
            return Handled(200, "replay: already handled")
        current = await _current(conn, etype, event["data"]["object"])
        outcome = reduce_event(event, current)
        text = await _apply(conn, event_id, etype, outcome)
        await conn.execute(
            "update public.stripe_events set outcome = %s where event_id = %s",
            (text[:500], event_id),
        )
    return Handled(200, text)


async def _current(conn: Conn, etype: str, obj: dict[str, Any]) -> SubscriptionState | None:
    if etype.startswith("customer.subscription."):
        sub_id: str | None = str(obj["id"])
    elif etype.startswith("invoice."):
        sub_id = invoice_subscription_id(obj)
    else:
        return None
    if sub_id is None:
        return None
    cur = await conn.execute(
        "select * from public.subscriptions where subscription_id = %s for update", (sub_id,)
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return SubscriptionState(
        subscription_id=row["subscription_id"], customer_id=row["customer_id"],
        status=row["status"], seat_item_id=row["seat_item_id"], quantity=row["quantity"],
        event_created=int(row["event_created"]), past_due_since=row["past_due_since"],
    )  # fmt: skip


async def _org_of(conn: Conn, customer: str) -> str | None:
    cur = await conn.execute(
        "select org_id::text as org from public.billing_customers where stripe_customer_id = %s",
        (customer,),
    )
    row = await cur.fetchone()
    return str(row["org"]) if row else None


async def _audit(
    conn: Conn, org: str | None, kind: str, subject: str, detail: dict[str, Any]
) -> None:
    await conn.execute(
        "select public.audit_append(%s, %s, %s, %s::jsonb)",
        (org or SYSTEM_ORG, kind, subject, json.dumps(detail)),
    )


async def _apply(conn: Conn, event_id: str, etype: str, outcome: Any) -> str:
    detail: dict[str, Any] = {"event": event_id, "type": etype}
    if isinstance(outcome, Ignore):
        return f"ignored: {outcome.reason}"
    if isinstance(outcome, LinkCustomer):
        org = as_uuid(outcome.org_id)
        cur = await conn.execute("select 1 from public.organizations where id = %s", (org,))
        if org is None or await cur.fetchone() is None:
            return f"ignored: checkout names an unknown organisation {outcome.org_id!r}"
        await conn.execute(
            "insert into public.billing_customers (org_id, stripe_customer_id) values (%s, %s)"
            " on conflict (org_id) do update set stripe_customer_id = excluded.stripe_customer_id,"
            " updated_at = now()",
            (org, outcome.customer_id),
        )
        await _audit(conn, org, "billing.customer_linked", outcome.customer_id, detail)
        return f"linked {outcome.customer_id} to {org}"
    if isinstance(outcome, UnlinkCustomer):
        org = await _org_of(conn, outcome.customer_id)
        await conn.execute(
            "update public.billing_customers set stripe_customer_id = null, updated_at = now()"
            " where stripe_customer_id = %s",
            (outcome.customer_id,),
        )
        await _audit(conn, org, "billing.customer_deleted", outcome.customer_id, detail)
        return f"unlinked {outcome.customer_id}"
    assert isinstance(outcome, PutSubscription)
    s = outcome.state
    await conn.execute(
        "insert into public.subscriptions (subscription_id, customer_id, status, seat_item_id,"
        " quantity, event_created, past_due_since) values (%s, %s, %s, %s, %s, %s, %s)"
        " on conflict (subscription_id) do update set customer_id = excluded.customer_id,"
        " status = excluded.status, seat_item_id = excluded.seat_item_id,"
        " quantity = excluded.quantity, event_created = excluded.event_created,"
        " past_due_since = excluded.past_due_since, updated_at = now()",
        (s.subscription_id, s.customer_id, s.status, s.seat_item_id, s.quantity,
         s.event_created, s.past_due_since),
    )  # fmt: skip
    org = await _org_of(conn, s.customer_id)
    detail.update(status=s.status, quantity=s.quantity)
    await _audit(conn, org, "billing.subscription", s.subscription_id, detail)
    return f"subscription {s.subscription_id} is {s.status}"
