"""The Stripe double on 127.0.0.1 and a real Postgres for billing tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from tests.providers.doubles.stripe import StripeDouble
from tests.store.pgtools import fresh_database
from voco.billing.aggregate import event_name
from voco.billing.meters import usage_id
from voco.store.db import Pool, as_service
from voco.store.embedded import EmbeddedPostgres
from voco.store.migrate import migrate


@pytest.fixture
async def stripe_double() -> AsyncIterator[StripeDouble]:
    async with StripeDouble().running() as double:
        yield double


@pytest.fixture
def db_url(pg: EmbeddedPostgres) -> str:
    return fresh_database(pg.url)


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[Pool]:
    p: Pool = AsyncConnectionPool(
        db_url,
        connection_class=AsyncConnection[DictRow],
        kwargs={"autocommit": True, "row_factory": dict_row},
        min_size=1,
        max_size=8,
        open=False,
    )
    await p.open(wait=True)
    async with p.connection() as conn:
        await migrate(conn)
    yield p
    await p.close()


async def make_org(
    pool: Pool, customer: str | None = None, double: StripeDouble | None = None
) -> str:
    """An organisation, linked to Stripe customer ``customer`` if given."""
    async with as_service(pool, "test setup") as conn:
        cur = await conn.execute(
            "insert into public.organizations (name) values ('t') returning id::text as id"
        )
        row = await cur.fetchone()
        assert row is not None
        org = str(row["id"])
    if customer is not None:
        await link(pool, org, customer, double)
    return org


async def link(pool: Pool, org: str, customer: str, double: StripeDouble | None = None) -> None:
    if double is not None:
        double.customers[customer] = {"id": customer, "object": "customer"}
    async with as_service(pool, "test setup") as conn:
        await conn.execute(
            "insert into public.billing_customers (org_id, stripe_customer_id) values (%s, %s)"
            " on conflict (org_id) do update set stripe_customer_id = excluded.stripe_customer_id",
            (org, customer),
        )


async def add_usage(
    pool: Pool,
    org: str,
    meter: str,
    values: list[int],
    *,
    at: datetime | None = None,
    model: str = "",
) -> int:
    """Usage rows as the turn writer makes them; returns their sum."""
    rows: list[Any] = []
    for v in values:
        turn = uuid.uuid4().hex
        rows.append(
            (usage_id(turn, meter, model), org, "th", turn, str(uuid.uuid4()), meter, model,
             event_name(meter, model), v, at)
        )  # fmt: skip
    async with as_service(pool, "test setup") as conn, conn.cursor() as cur:
        await cur.executemany(
            "insert into public.usage_events (id, org_id, thread_id, turn_id, user_id, meter,"
            " model, event_name, value, occurred_at)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))",
            rows,
        )
    return sum(values)
