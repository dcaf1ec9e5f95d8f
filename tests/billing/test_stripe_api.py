"""The official SDK against the wire double: identifiers, idempotency, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.providers.doubles.stripe import API_KEY, Fault, StripeDouble
from voco.billing.aggregate import GroupTotal, bucket_start, plan_reports
from voco.billing.stripe_api import (
    BillingConfig,
    PermanentStripeError,
    RetryableStripeError,
    StripeBilling,
)


def client(double: StripeDouble, key: str = API_KEY, timeout_s: float = 5.0) -> StripeBilling:
    return StripeBilling(BillingConfig(key, None, double.url), timeout_s=timeout_s)


def report(customer: str, value: int = 7):  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    group = GroupTotal("org-a", "voco_tool_actions", bucket_start(now), value, value)
    return plan_reports([group], customers={"org-a": customer}, prior_reports={}, now=now).reports[
        0
    ]


async def test_a_report_reaches_stripe_once_even_when_resent(stripe_double: StripeDouble) -> None:
    stripe_double.customers["cus_1"] = {"id": "cus_1"}
    billing, r = client(stripe_double), report("cus_1")
    await billing.report(r)
    await billing.report(r)  # replayed by its idempotency key: not counted again
    assert stripe_double.totals() == {("cus_1", "voco_tool_actions"): 7}
    stripe_double._idem.clear()  # past Stripe's 24 h idempotency window
    await billing.report(r)  # refused as a duplicate identifier: still success
    assert stripe_double.totals() == {("cus_1", "voco_tool_actions"): 7}


async def test_a_crash_after_stripe_took_it_is_deduplicated(stripe_double: StripeDouble) -> None:
    """Stripe records the event, the answer never arrives; the resend counts once."""
    stripe_double.customers["cus_1"] = {"id": "cus_1"}
    r = report("cus_1")
    stripe_double.faults.append(Fault(drop_after=True))
    with pytest.raises(RetryableStripeError):
        await client(stripe_double, timeout_s=0.5).report(r)
    await client(stripe_double).report(r)
    assert stripe_double.totals() == {("cus_1", "voco_tool_actions"): 7}


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_rate_limits_and_outages_are_retryable(
    stripe_double: StripeDouble, status: int
) -> None:
    stripe_double.customers["cus_1"] = {"id": "cus_1"}
    stripe_double.faults.append(Fault(status=status))
    with pytest.raises(RetryableStripeError, match=str(status)):
        await client(stripe_double).report(report("cus_1"))
    assert stripe_double.meter_events == []


async def test_a_bad_key_or_missing_customer_is_permanent(stripe_double: StripeDouble) -> None:
    with pytest.raises(PermanentStripeError, match="401"):
        await client(stripe_double, key="sk_test_wrong").report(report("cus_1"))
    with pytest.raises(PermanentStripeError, match="No such customer"):
        await client(stripe_double).report(report("cus_missing"))


async def test_seat_quantity_updates_are_idempotent(stripe_double: StripeDouble) -> None:
    stripe_double.customers["cus_1"] = {"id": "cus_1"}
    stripe_double.items["si_1"] = {"id": "si_1", "object": "subscription_item", "quantity": 1}
    billing = client(stripe_double)
    assert await billing.set_seats("si_1", 4, proration="none", key="seats-org-a-4") == 4
    assert await billing.set_seats("si_1", 4, proration="none", key="seats-org-a-4") == 4
    assert await billing.seat_quantity("si_1") == 4
    assert stripe_double.items["si_1"]["proration_behavior"] == "none"
