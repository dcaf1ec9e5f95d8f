"""Billing costs, short runs on the embedded Postgres with the Stripe double.

Prints (never asserts):
* N usage events (default 1 000 000, seeded with generate_series) aggregated
  and marked: the one aggregation transaction (lock the orgs' watermarks FOR
  UPDATE SKIP LOCKED, group the rows between watermark and snapshot xmin in
  SQL, plan, insert reports, move the watermarks: the mark), then sending the
  reports to the local Stripe double (8 at a time) and marking them sent;
* webhook handling p50/p95: signed ``customer.subscription.updated`` events
  through the route's handler (verify, store by id, reduce, audit), in-process;
* per-turn cost of the usage write: ``_write_turn`` p50 with and without usage.

Run: ``uv run python bench/bench_billing.py [N]`` (tens of seconds for 1 M).
Figures from a shared, loaded machine are indicative only.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.providers.doubles.stripe import API_KEY, StripeDouble, sign_webhook
from voco.auth.tokens import Principal
from voco.billing.http import stripe_webhook
from voco.billing.meters import METERS
from voco.billing.reporting import aggregate, send_pending
from voco.billing.stripe_api import BillingConfig, StripeBilling
from voco.store import open_store
from voco.store.db import as_service
from voco.store.embedded import start_embedded
from voco.store.tenancy import TurnRecord

ORGS = 10
HOURS = 6


def pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]


async def bench_aggregation(store: object, double: StripeDouble, n: int) -> None:
    pool = store.pool  # type: ignore[attr-defined]
    async with as_service(pool, "bench setup") as conn:
        orgs = []
        for i in range(ORGS):
            cur = await conn.execute(
                "insert into public.organizations (name) values ('b') returning id::text as id"
            )
            row = await cur.fetchone()
            orgs.append(row["id"])
            double.customers[f"cus_{i}"] = {"id": f"cus_{i}"}
            await conn.execute(
                "insert into public.billing_customers (org_id, stripe_customer_id) values (%s, %s)",
                (row["id"], f"cus_{i}"),
            )
        t0 = time.perf_counter()
        await conn.execute(
            "insert into public.usage_events (id, org_id, thread_id, turn_id, user_id, meter,"
            " event_name, value, occurred_at)"
            " select gen_random_uuid(), (%s::uuid[])[1 + g %% %s], 'th', 't' || g,"
            " gen_random_uuid(), m, m, 1 + g %% 97,"
            " now() - ((g %% %s) || ' hours')::interval"
            " from generate_series(0, %s - 1) g,"
            " lateral (select (%s::text[])[1 + (g / %s) %% %s] as m) x",
            (orgs, ORGS, HOURS, n, list(METERS), ORGS, len(METERS)),
        )
        print(f"inserted {n} usage rows in {time.perf_counter() - t0:.1f} s (setup)")
    t0 = time.perf_counter()
    agg = await aggregate(pool)
    t1 = time.perf_counter()
    sent = await send_pending(pool, StripeBilling(BillingConfig(API_KEY, None, double.url)))
    t2 = time.perf_counter()
    print(
        f"aggregated and marked {agg.rows} rows into {agg.reports} reports: {t1 - t0:.2f} s;"
        f" sent {sent.sent} reports to the double and marked them: {t2 - t1:.2f} s;"
        f" total {t2 - t0:.2f} s (target < 10 s on an idle machine)"
    )
    assert sum(double.totals().values()) > 0


async def bench_webhooks(store: object, rounds: int = 200) -> None:
    tenants = store.tenants  # type: ignore[attr-defined]

    async def route(request: Request) -> JSONResponse:
        return await stripe_webhook(request, tenants)

    app = Starlette(routes=[Route("/hook", route, methods=["POST"])])
    times: list[float] = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://engine"
    ) as client:
        for i in range(rounds):
            ev = {
                "id": f"evt_{uuid.uuid4().hex}",
                "object": "event",
                "type": "customer.subscription.updated",
                "created": 1_000_000 + i,
                "data": {"object": {"id": "sub_b", "customer": "cus_0", "status": "active",
                                    "items": {"data": [{"id": "si_b", "quantity": 1}]}}},
            }  # fmt: skip
            body = json.dumps(ev).encode()
            sig = sign_webhook(body, "whsec_bench")
            t0 = time.perf_counter()
            r = await client.post("/hook", content=body, headers={"Stripe-Signature": sig})
            times.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, r.text
    print(f"webhook handling: p50 {pct(times, 0.5):.1f} ms, p95 {pct(times, 0.95):.1f} ms")


async def bench_turn_write(store: object, rounds: int = 200) -> None:
    tenants = store.tenants  # type: ignore[attr-defined]
    user = str(uuid.uuid4())
    grant = await tenants.open_session(
        Principal(user, None, {"sub": user, "aud": "authenticated"}),
        project_id="bench", thread_id=None, session_id="s",
    )  # fmt: skip
    for label, usage in (("without usage", False), ("with usage", True)):
        times = []
        for _ in range(rounds):
            extra = (
                {"user_speech_ms": 1800, "assistant_audio_ms": 4200, "stt_audio_ms": 2300,
                 "llm_tokens": {"claude-haiku": (900, 120)}}
                if usage else {}
            )  # fmt: skip
            r = TurnRecord(uuid.uuid4().hex, "r", "hi", "hello", False, "m", **extra)  # type: ignore[arg-type]
            t0 = time.perf_counter()
            await grant._write_turn(r)
            times.append((time.perf_counter() - t0) * 1000)
        print(f"turn write {label}: p50 {statistics.median(times):.2f} ms")
    await grant.release()


async def main(n: int) -> None:
    import os

    os.environ["STRIPE_SECRET_KEY"] = API_KEY
    os.environ["STRIPE_WEBHOOK_SECRET"] = "whsec_bench"
    with tempfile.TemporaryDirectory(prefix="voco-bench-") as d:
        server = await asyncio.to_thread(start_embedded, Path(d) / "pgdata")
        try:
            async with StripeDouble().running() as double, open_store(server.url) as store:
                store.tenants.billing = False  # the turn-write bench needs no subscription
                await bench_aggregation(store, double, n)
                await bench_webhooks(store)
                await bench_turn_write(store)
        finally:
            await asyncio.to_thread(server.stop)
    print("(figures from a shared, loaded 2-core machine: indicative only)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
