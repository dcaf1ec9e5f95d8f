"""The webhook route and entitlements against real Postgres: signed as Stripe
signs, replayed, out of order, refused — and what a session start then meets."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.billing.conftest import link, make_org
from tests.providers.doubles.stripe import API_KEY, sign_webhook
from voco.auth.tokens import Principal
from voco.billing.http import stripe_webhook
from voco.store.db import Pool, as_service
from voco.store.pg_tenants import PostgresTenantStore
from voco.store.tenancy import SessionRefused

pytestmark = pytest.mark.timeout(120)
SECRET = "whsec_test_route"


@pytest.fixture
async def tenants(
    pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[PostgresTenantStore]:
    monkeypatch.setenv("STRIPE_SECRET_KEY", API_KEY)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", f"whsec_old,{SECRET}")
    store = PostgresTenantStore(pool, billing=True)
    await store.start()
    yield store
    await store.aclose()


@pytest.fixture
async def http(tenants: PostgresTenantStore) -> AsyncIterator[httpx.AsyncClient]:
    async def route(request: Request) -> JSONResponse:
        return await stripe_webhook(request, tenants)

    app = Starlette(routes=[Route("/v1/billing/stripe/webhook", route, methods=["POST"])])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://engine"
    ) as client:
        yield client


def event(etype: str, obj: dict[str, Any], created: int, eid: str | None = None) -> dict[str, Any]:
    return {
        "id": eid or f"evt_{uuid.uuid4().hex[:12]}",
        "object": "event",
        "type": etype,
        "created": created,
        "data": {"object": obj},
    }


def sub(sid: str, customer: str, status: str, qty: int = 1) -> dict[str, Any]:
    return {
        "id": sid,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "items": {"object": "list", "data": [{"id": f"si_{sid}", "quantity": qty}]},
    }


async def post(http: httpx.AsyncClient, ev: dict[str, Any], **kw: Any) -> httpx.Response:
    body = json.dumps(ev).encode()
    sig = kw.get("signature") or sign_webhook(body, kw.get("secret", SECRET), kw.get("ts"))
    return await http.post(
        "/v1/billing/stripe/webhook", content=body, headers={"Stripe-Signature": sig}
    )


async def rows(pool: Pool, sql: str, *args: Any) -> list[dict[str, Any]]:
    async with as_service(pool, "test") as conn:
        cur = await conn.execute(sql, args)
        return list(await cur.fetchall())


async def audit_kinds(pool: Pool, org: str) -> list[str]:
    found = await rows(
        pool, "select kind from public.audit_events where org_id = %s order by seq", org
    )
    return [r["kind"] for r in found]


async def test_checkout_links_and_subscription_events_apply_once(
    http: httpx.AsyncClient, pool: Pool
) -> None:
    org = await make_org(pool)
    now = int(time.time())
    checkout = event(
        "checkout.session.completed", {"client_reference_id": org, "customer": "cus_w"}, now
    )
    assert (await post(http, checkout)).status_code == 200
    created = event("customer.subscription.created", sub("sub_1", "cus_w", "active"), now + 1)
    r = await post(http, created)
    assert r.status_code == 200 and "active" in r.json()["outcome"]
    replay = await post(http, created)  # Stripe redelivers
    assert replay.status_code == 200 and "replay" in replay.json()["outcome"]
    assert await audit_kinds(pool, org) == ["billing.customer_linked", "billing.subscription"]
    state = await rows(pool, "select status, quantity from public.subscriptions")
    assert state == [{"status": "active", "quantity": 1}]


async def test_out_of_order_an_older_event_never_overwrites(
    http: httpx.AsyncClient, pool: Pool
) -> None:
    org = await make_org(pool)
    await link(pool, org, "cus_o")
    now = int(time.time())
    await post(http, event("customer.subscription.deleted", sub("sub_o", "cus_o", "canceled"), now))
    late = event("customer.subscription.updated", sub("sub_o", "cus_o", "active"), now - 60)
    r = await post(http, late)
    assert r.status_code == 200 and "ignored" in r.json()["outcome"]
    state = await rows(pool, "select status from public.subscriptions")
    assert state == [{"status": "canceled"}]
    assert await audit_kinds(pool, org) == ["billing.subscription"]


@pytest.mark.parametrize(
    ("kw", "status"),
    [
        ({"secret": "whsec_wrong"}, 400),
        ({"ts": int(time.time()) - 3600}, 400),  # a stale, validly signed replay
        ({"signature": "garbage"}, 400),
    ],
)
async def test_bad_signature_or_stale_timestamp_changes_nothing(
    http: httpx.AsyncClient, pool: Pool, kw: dict[str, Any], status: int
) -> None:
    org = await make_org(pool)
    ev = event("checkout.session.completed", {"client_reference_id": org, "customer": "c"}, 1)
    r = await post(http, ev, **kw)
    assert r.status_code == status and "error" in r.json()
    assert await rows(pool, "select * from public.stripe_events") == []
    assert await rows(pool, "select * from public.billing_customers") == []


async def test_oversized_body_is_refused_unread(http: httpx.AsyncClient) -> None:
    r = await http.post(
        "/v1/billing/stripe/webhook", content=b"x" * 300_000, headers={"Stripe-Signature": "t=1"}
    )
    assert r.status_code == 413


async def test_unknown_type_is_200_and_ignored(http: httpx.AsyncClient, pool: Pool) -> None:
    r = await post(http, event("charge.refunded", {"id": "ch_1"}, 1))
    assert r.status_code == 200 and "ignored" in r.json()["outcome"]
    assert await rows(pool, "select * from public.stripe_events") == []


async def test_billing_off_says_so(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRIPE_SECRET_KEY")
    r = await post(http, event("invoice.paid", {}, 1))
    assert r.status_code == 503 and "billing is off" in r.json()["error"]


# ------------------------------------------------------------- entitlements


async def member_of(pool: Pool, org: str) -> Principal:
    user = str(uuid.uuid4())
    async with as_service(pool, "test setup") as conn:
        await conn.execute(
            "insert into public.org_members (org_id, user_id, role) values (%s, %s, 'owner')",
            (org, user),
        )
    return Principal(user, None, {"sub": user, "aud": "authenticated", "org_id": org}, org_id=org)


async def start(tenants: PostgresTenantStore, p: Principal) -> Any:
    return await tenants.open_session(
        p, project_id="default", thread_id=None, session_id=uuid.uuid4().hex
    )


async def test_cancelled_subscription_is_4402_other_org_unaffected(
    http: httpx.AsyncClient, pool: Pool, tenants: PostgresTenantStore
) -> None:
    now = int(time.time())
    a, b = await make_org(pool, "cus_a"), await make_org(pool, "cus_b")
    for sid, cus in (("sub_a", "cus_a"), ("sub_b", "cus_b")):
        await post(http, event("customer.subscription.created", sub(sid, cus, "active"), now))
    alice, bob = await member_of(pool, a), await member_of(pool, b)
    await (await start(tenants, alice)).release()
    await post(
        http, event("customer.subscription.deleted", sub("sub_a", "cus_a", "canceled"), now + 1)
    )
    with pytest.raises(SessionRefused) as refused:
        await start(tenants, alice)
    assert refused.value.code == 4402 and "canceled" in refused.value.message
    await (await start(tenants, bob)).release()


async def test_no_subscription_is_4402_billing_off_allows(
    pool: Pool, tenants: PostgresTenantStore
) -> None:
    org = await make_org(pool)
    p = await member_of(pool, org)
    with pytest.raises(SessionRefused) as refused:
        await start(tenants, p)
    assert refused.value.code == 4402 and "no subscription" in refused.value.message
    off = PostgresTenantStore(pool)  # billing off: everything is allowed
    await (await start(off, p)).release()


async def test_past_due_within_grace_then_refused(
    http: httpx.AsyncClient, pool: Pool, tenants: PostgresTenantStore
) -> None:
    org = await make_org(pool, "cus_p")
    now = int(time.time())
    await post(http, event("customer.subscription.created", sub("sub_p", "cus_p", "active"), now))
    failed = {"id": "in_1", "subscription": "sub_p", "customer": "cus_p"}
    await post(http, event("invoice.payment_failed", failed, now + 1))
    p = await member_of(pool, org)
    await (await start(tenants, p)).release()  # within the grace period
    async with as_service(pool, "test: the grace period has passed") as conn:
        await conn.execute(
            "update public.subscriptions set past_due_since = now() - interval '8 days'"
        )
    with pytest.raises(SessionRefused) as refused:
        await start(tenants, p)
    assert refused.value.code == 4402 and "grace period" in refused.value.message
