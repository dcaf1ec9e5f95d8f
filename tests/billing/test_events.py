from __future__ import annotations

from typing import Any

from voco.billing.events import (
    Ignore,
    LinkCustomer,
    PutSubscription,
    SubscriptionState,
    UnlinkCustomer,
    invoice_subscription_id,
    reduce_event,
)


def ev(etype: str, created: int, obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"evt_{created}", "type": etype, "created": created, "data": {"object": obj}}


def sub(status: str, qty: int = 3) -> dict[str, Any]:
    return {
        "id": "sub_1",
        "customer": "cus_1",
        "status": status,
        "items": {"data": [{"id": "si_1", "quantity": qty}]},
    }


def apply(events: list[dict[str, Any]]) -> SubscriptionState | None:
    state: SubscriptionState | None = None
    for e in events:
        out = reduce_event(e, state)
        if isinstance(out, PutSubscription):
            state = out.state
    return state


def test_checkout_links_the_org_named_by_client_reference_id() -> None:
    out = reduce_event(
        ev("checkout.session.completed", 1, {"client_reference_id": "org-a", "customer": "cus_1"}),
        None,
    )
    assert out == LinkCustomer("org-a", "cus_1")


def test_out_of_order_delivery_gives_the_newest_state() -> None:
    created, updated = (
        ev("customer.subscription.created", 10, sub("trialing", 2)),
        ev("customer.subscription.updated", 20, sub("active", 5)),
    )
    in_order, reversed_ = apply([created, updated]), apply([updated, created])
    assert in_order == reversed_
    assert in_order is not None and (in_order.status, in_order.quantity) == ("active", 5)


def test_canceled_is_terminal_even_against_a_late_update() -> None:
    state = apply(
        [
            ev("customer.subscription.deleted", 30, sub("canceled")),
            ev("customer.subscription.updated", 40, sub("active")),
        ]
    )
    assert state is not None and state.status == "canceled"


def test_payment_failure_starts_the_grace_clock_once_and_payment_clears_it() -> None:
    base = apply([ev("customer.subscription.created", 10, sub("active"))])
    failed = reduce_event(ev("invoice.payment_failed", 20, {"subscription": "sub_1"}), base)
    assert isinstance(failed, PutSubscription) and failed.state.status == "past_due"
    again = reduce_event(ev("invoice.payment_failed", 25, {"subscription": "sub_1"}), failed.state)
    assert isinstance(again, PutSubscription)
    assert again.state.past_due_since == failed.state.past_due_since
    paid = reduce_event(ev("invoice.paid", 30, {"subscription": "sub_1"}), again.state)
    assert isinstance(paid, PutSubscription)
    assert (paid.state.status, paid.state.past_due_since) == ("active", None)


def test_unknown_types_and_unknown_subscriptions_are_ignored() -> None:
    assert isinstance(reduce_event(ev("charge.refunded", 1, {}), None), Ignore)
    assert isinstance(reduce_event(ev("invoice.paid", 1, {"subscription": "x"}), None), Ignore)


def test_customer_deleted_unlinks() -> None:
    assert reduce_event(ev("customer.deleted", 5, {"id": "cus_1"}), None) == UnlinkCustomer("cus_1")


def test_invoice_subscription_in_old_and_new_api_shapes() -> None:
    assert invoice_subscription_id({"subscription": "sub_1"}) == "sub_1"
    nested = {"parent": {"subscription_details": {"subscription": "sub_2"}}}
    assert invoice_subscription_id(nested) == "sub_2"
    assert invoice_subscription_id({}) is None
