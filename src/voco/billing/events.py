"""Stripe webhook events → the org's billing state, as a pure reduction.

Stripe delivers at least once and in no guaranteed order, so the handler
stores event ids (a replay is a no-op) and this module makes order irrelevant:
a subscription remembers the ``created`` time of the newest event applied to
it, an older event is ignored, and ``canceled`` is terminal (Stripe never
revives a deleted subscription, so a late ``updated`` cannot resurrect it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

HANDLED = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
        "customer.deleted",
    }
)


@dataclass(frozen=True)
class SubscriptionState:
    subscription_id: str
    customer_id: str
    status: str
    seat_item_id: str | None
    quantity: int | None
    event_created: int
    past_due_since: datetime | None = None


@dataclass(frozen=True)
class LinkCustomer:
    """checkout finished: this org pays through this Stripe customer."""

    org_id: str
    customer_id: str


@dataclass(frozen=True)
class UnlinkCustomer:
    customer_id: str


@dataclass(frozen=True)
class PutSubscription:
    state: SubscriptionState


@dataclass(frozen=True)
class Ignore:
    reason: str


Outcome = LinkCustomer | UnlinkCustomer | PutSubscription | Ignore


def _ts(created: int) -> datetime:
    return datetime.fromtimestamp(created, UTC)


def _seat_item(sub: Mapping[str, Any]) -> tuple[str | None, int | None]:
    items = (sub.get("items") or {}).get("data") or []
    if not items:
        return None, None
    first = items[0]
    qty = first.get("quantity")
    return str(first["id"]), int(qty) if qty is not None else None


def reduce_event(event: Mapping[str, Any], current: SubscriptionState | None) -> Outcome:
    """What ``event`` changes, given the stored state of the subscription it names."""
    etype = str(event.get("type", ""))
    if etype not in HANDLED:
        return Ignore(f"event type {etype!r} is not used by Voco")
    created = int(event["created"])
    obj: Mapping[str, Any] = event["data"]["object"]
    if etype == "checkout.session.completed":
        org = obj.get("client_reference_id") or (obj.get("metadata") or {}).get("org_id")
        if not org or not obj.get("customer"):
            return Ignore("checkout session names no org (client_reference_id) or customer")
        return LinkCustomer(str(org), str(obj["customer"]))
    if etype == "customer.deleted":
        return UnlinkCustomer(str(obj["id"]))
    if etype.startswith("invoice."):
        return _invoice(etype, obj, created, current)
    return _subscription(etype, obj, created, current)


def _subscription(
    etype: str, obj: Mapping[str, Any], created: int, current: SubscriptionState | None
) -> Outcome:
    if current is not None:
        if current.status == "canceled":
            return Ignore("subscription is already canceled (terminal)")
        if created < current.event_created:
            return Ignore("older than the state already applied")
    status = "canceled" if etype.endswith(".deleted") else str(obj["status"])
    item, qty = _seat_item(obj)
    # the grace period runs from the first failure, not from the latest event
    earlier = current.past_due_since if current else None
    past_due_since = (earlier or _ts(created)) if status == "past_due" else None
    return PutSubscription(
        SubscriptionState(
            subscription_id=str(obj["id"]),
            customer_id=str(obj["customer"]),
            status=status,
            seat_item_id=item or (current.seat_item_id if current else None),
            quantity=qty if qty is not None else (current.quantity if current else None),
            event_created=created,
            past_due_since=past_due_since,
        )
    )


def _invoice(
    etype: str, obj: Mapping[str, Any], created: int, current: SubscriptionState | None
) -> Outcome:
    if current is None:
        return Ignore("invoice for a subscription Voco does not know (yet)")
    if current.status == "canceled":
        return Ignore("subscription is already canceled (terminal)")
    if created < current.event_created:
        return Ignore("older than the state already applied")
    if etype == "invoice.payment_failed":
        since = current.past_due_since or _ts(created)
        return PutSubscription(
            replace(current, status="past_due", past_due_since=since, event_created=created)
        )
    status = "active" if current.status == "past_due" else current.status
    return PutSubscription(
        replace(current, status=status, past_due_since=None, event_created=created)
    )


def invoice_subscription_id(obj: Mapping[str, Any]) -> str | None:
    """Where an invoice names its subscription (moved under ``parent`` in newer API
    versions; top-level ``subscription`` in older ones)."""
    sub = obj.get("subscription")
    if sub:
        return str(sub)
    parent = obj.get("parent") or {}
    details = parent.get("subscription_details") or {}
    sub = details.get("subscription")
    return str(sub) if sub else None
