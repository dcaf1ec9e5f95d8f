from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from voco.billing.entitlements import Subscription, decide

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize("status", ["active", "trialing"])
def test_paying_orgs_are_admitted(status: str) -> None:
    assert decide(Subscription(status), billing_enabled=True, now=NOW).allowed


def test_billing_off_admits_everyone() -> None:
    assert decide(None, billing_enabled=False, now=NOW).allowed


@pytest.mark.parametrize("status", ["canceled", "unpaid", "incomplete", "incomplete_expired"])
def test_ended_subscriptions_are_refused_with_what_to_do(status: str) -> None:
    d = decide(Subscription(status), billing_enabled=True, now=NOW)
    assert not d.allowed and status in d.reason and "billing portal" in d.reason


def test_no_subscription_is_refused() -> None:
    d = decide(None, billing_enabled=True, now=NOW)
    assert not d.allowed and "no subscription" in d.reason


def test_past_due_is_admitted_only_within_the_grace_period() -> None:
    grace = timedelta(days=3)
    recent = Subscription("past_due", NOW - timedelta(days=2))
    stale = Subscription("past_due", NOW - timedelta(days=4))
    assert decide(recent, billing_enabled=True, now=NOW, grace=grace).allowed
    refused = decide(stale, billing_enabled=True, now=NOW, grace=grace)
    assert not refused.allowed and "payment method" in refused.reason
