from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from voco.billing.aggregate import (
    GroupTotal,
    bucket_start,
    event_name,
    plan_reports,
    report_identifier,
)

NOW = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)
HOUR = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)


def g(org: str = "org-a", value: int = 10, bucket: datetime = HOUR) -> GroupTotal:
    return GroupTotal(org, "voco_tool_actions", bucket, value, rows=value)


def test_buckets_are_hours_and_need_timezones() -> None:
    assert bucket_start(datetime(2026, 12, 1, 11, 59, 59, tzinfo=UTC)) == HOUR
    with pytest.raises(ValueError):
        bucket_start(datetime(2026, 12, 1, 11, 0))


def test_per_model_meters_get_the_model_in_the_event_name() -> None:
    assert event_name("voco_llm_input_tokens", "claude-3.5 Sonnet") == (
        "voco_llm_input_tokens__claude_3_5_sonnet"
    )
    assert event_name("voco_tool_actions", "ignored") == "voco_tool_actions"


def test_a_resend_carries_the_same_identifier() -> None:
    first = plan_reports([g()], customers={"org-a": "cus_1"}, prior_reports={}, now=NOW)
    again = plan_reports([g()], customers={"org-a": "cus_1"}, prior_reports={}, now=NOW)
    assert first.reports[0].identifier == again.reports[0].identifier
    assert len(first.reports[0].identifier) <= 100


def test_late_usage_for_a_reported_bucket_is_a_new_report() -> None:
    key = ("org-a", "voco_tool_actions", HOUR)
    late = plan_reports([g(value=3)], customers={"org-a": "cus_1"}, prior_reports={key: 1}, now=NOW)
    (report,) = late.reports
    assert report.seq == 1 and report.value == 3
    assert report.identifier != report_identifier("org-a", "voco_tool_actions", HOUR, 0)


def test_orgs_without_a_customer_are_held_and_old_buckets_flagged() -> None:
    old = HOUR - timedelta(days=40)
    plan = plan_reports(
        [g(), g("org-b"), g(bucket=old), g(value=0)],
        customers={"org-a": "cus_1", "org-b": None},
        prior_reports={},
        now=NOW,
    )
    assert [r.org_id for r in plan.reports] == ["org-a"]
    assert [h.org_id for h in plan.held] == ["org-b"]
    assert [e.bucket_start for e in plan.expired] == [old]


def test_stripe_params_are_whole_numbers_with_the_customer() -> None:
    (r,) = plan_reports(
        [g(value=42)], customers={"org-a": "cus_9"}, prior_reports={}, now=NOW
    ).reports
    assert r.stripe_params()["payload"] == {"stripe_customer_id": "cus_9", "value": "42"}
    assert r.stripe_params()["timestamp"] == int(HOUR.timestamp())
