"""Automatic seats through the real org admin API: the engine app over HTTP on
127.0.0.1, its Postgres tenant store, the procrastinate worker and the Stripe
double. Adding, removing and reactivating members moves the Stripe seat
quantity (one debounced job per burst); a fixed-seat plan refuses the member
beyond its seats with a 409 that says why and what to do."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from tests.admin.test_api import Api, uid
from tests.providers.doubles.stripe import API_KEY, StripeDouble
from voco.billing.jobs import run_worker
from voco.billing.stripe_api import BillingConfig
from voco.store.job_schema import connection_options

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
async def stripe() -> AsyncIterator[StripeDouble]:
    async with StripeDouble().running() as double:
        yield double


async def sql(db: str, query: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """As the database owner, with the job queue's search_path (its triggers)."""
    async with await AsyncConnection.connect(
        db, autocommit=True, row_factory=dict_row, options=connection_options()
    ) as conn:
        cur = await conn.execute(query.encode(), args)
        return list(await cur.fetchall()) if cur.description else []


async def billed_org(api: Api, stripe: StripeDouble, owner: str, fixed: int | None = None) -> str:
    """An org created through the API, subscribed with a seat item (as the
    checkout and subscription webhooks leave it)."""
    r = await api.call(owner, "POST", "/v1/orgs", {"name": "Acme"})
    assert r.status_code == 201, r.text
    org = str(r.json()["org"]["id"])
    stripe.customers["cus_seat"] = {"id": "cus_seat", "object": "customer"}
    stripe.items["si_seat"] = {"id": "si_seat", "object": "subscription_item", "quantity": 1}
    await sql(
        api.db,
        "insert into public.billing_customers (org_id, stripe_customer_id, fixed_seats)"
        " values (%s, 'cus_seat', %s)",
        (org, fixed),
    )
    await sql(
        api.db,
        "insert into public.subscriptions (subscription_id, customer_id, status, seat_item_id,"
        " quantity, event_created) values ('sub_seat', 'cus_seat', 'active', 'si_seat', 1, 1)",
    )
    return org


async def seat_jobs(db: str) -> list[str]:
    rows = await sql(
        db,
        "select status::text as s from procrastinate_jobs"
        " where task_name = 'voco.billing.seats' order by id",
    )
    return [r["s"] for r in rows]


async def sync(api: Api, stripe: StripeDouble) -> None:
    """The debounce delay elapses (no waiting: the job is made due) and a
    worker runs what is due."""
    await sql(api.db, "update procrastinate_jobs set scheduled_at = now() where status = 'todo'")
    await run_worker(api.db, once=True, config=BillingConfig(API_KEY, None, stripe.url))


async def test_members_added_removed_and_reactivated_move_the_stripe_quantity(
    api: Api, stripe: StripeDouble
) -> None:
    owner, a, b = uid(), uid(), uid()
    org = await billed_org(api, stripe, owner)
    for user in (a, b):
        r = await api.call(owner, "POST", f"/v1/orgs/{org}/members", {"user_id": user})
        assert r.status_code == 201, r.text
    assert await seat_jobs(api.db) == ["todo"]  # one debounced job for the burst
    await sync(api, stripe)
    assert stripe.items["si_seat"]["quantity"] == 3
    assert stripe.items["si_seat"]["proration_behavior"] == "create_prorations"

    r = await api.call(owner, "DELETE", f"/v1/orgs/{org}/members/{b}")
    assert r.status_code == 200, r.text
    await sync(api, stripe)
    assert stripe.items["si_seat"]["quantity"] == 2

    # a removed member comes back: a seat again
    r = await api.call(owner, "POST", f"/v1/orgs/{org}/members", {"user_id": b})
    assert r.status_code == 201 and r.json()["member"]["seat_active"] is True
    await sync(api, stripe)
    assert stripe.items["si_seat"]["quantity"] == 3
    assert await seat_jobs(api.db) == ["succeeded"] * 3

    # added and removed before the job ran: one update, to the right number
    c = uid()
    await api.call(owner, "POST", f"/v1/orgs/{org}/members", {"user_id": c})
    await api.call(owner, "DELETE", f"/v1/orgs/{org}/members/{c}")
    posts_before = stripe.requests.count(("POST", "subscription_items/si_seat"))
    await sync(api, stripe)
    assert stripe.requests.count(("POST", "subscription_items/si_seat")) == posts_before + 1
    assert stripe.items["si_seat"]["quantity"] == 3
    assert await seat_jobs(api.db) == ["succeeded"] * 4


async def test_a_fixed_seat_plan_refuses_the_member_beyond_its_seats(
    api: Api, stripe: StripeDouble
) -> None:
    owner, a, b = uid(), uid(), uid()
    org = await billed_org(api, stripe, owner, fixed=2)
    assert (await api.call(owner, "POST", f"/v1/orgs/{org}/members", {"user_id": a})).is_success
    r = await api.call(owner, "POST", f"/v1/orgs/{org}/members", {"user_id": b})
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"] == "no_seat"
    assert "2 seats and all are taken" in body["message"]  # why
    assert "remove a member" in body["message"] and "more seats" in body["message"]  # what to do
    members = (await api.call(owner, "GET", f"/v1/orgs/{org}/members")).json()["members"]
    assert b not in {m["user_id"] for m in members}  # nothing half-done

    # a seat freed: the same member now fits
    assert (await api.call(owner, "DELETE", f"/v1/orgs/{org}/members/{a}")).is_success
    assert (await api.call(owner, "POST", f"/v1/orgs/{org}/members", {"user_id": b})).is_success
    # reactivating the removed one would be a third seat: refused as well
    r = await api.call(owner, "POST", f"/v1/orgs/{org}/members", {"user_id": a})
    assert r.status_code == 409 and r.json()["error"] == "no_seat"
    await sync(api, stripe)
    assert stripe.items["si_seat"]["quantity"] == 2


async def test_an_org_without_billing_queues_no_seat_job(api: Api) -> None:
    owner = uid()
    r = await api.call(owner, "POST", "/v1/orgs", {"name": "Free"})
    org = r.json()["org"]["id"]
    r = await api.call(owner, "POST", f"/v1/orgs/{org}/members", {"user_id": str(uuid.uuid4())})
    assert r.status_code == 201
    assert await seat_jobs(api.db) == []
