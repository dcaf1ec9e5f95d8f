"""Usage is written with the turn, in its transaction, once, under RLS."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from psycopg import errors

from tests.billing.conftest import link
from tests.providers.doubles.stripe import API_KEY, StripeDouble
from voco.auth.tokens import Principal
from voco.billing.meters import ASSISTANT_AUDIO_MS, STT_AUDIO_MS, TOOL_ACTIONS, USER_SPEECH_MS
from voco.billing.reporting import aggregate, send_pending
from voco.billing.stripe_api import BillingConfig, StripeBilling
from voco.store.db import Pool, as_service, as_user
from voco.store.pg_tenants import PostgresTenantStore
from voco.store.tenancy import ToolActionRecord, TurnRecord

pytestmark = pytest.mark.timeout(120)


def record(turn: str) -> TurnRecord:
    action = ToolActionRecord("req1", "read_file", "auto", "success", None, 10, "ab" * 32)
    return TurnRecord(
        turn, "resp", "hi", "hello", False, "claude-haiku",
        tool_actions=(action, action), user_speech_ms=1500, assistant_audio_ms=3200,
        stt_audio_ms=1900, llm_tokens={"claude-haiku": (800, 40)},
    )  # fmt: skip


async def usage_rows(pool: Pool, claims: dict[str, Any] | None = None) -> dict[str, int]:
    ctx = as_user(pool, claims) if claims else as_service(pool, "test")
    async with ctx as conn:
        cur = await conn.execute("select event_name, value from public.usage_events")
        return {r["event_name"]: int(r["value"]) for r in await cur.fetchall()}


async def test_a_turn_writes_its_usage_once(pool: Pool, stripe_double: StripeDouble) -> None:
    tenants = PostgresTenantStore(pool)
    await tenants.start()
    user = str(uuid.uuid4())
    claims = {"sub": user, "aud": "authenticated"}
    grant = await tenants.open_session(
        Principal(user, None, claims), project_id="p", thread_id=None, session_id="s1"
    )
    grant.record_turn(record("turn-1"))
    grant.record_turn(record("turn-1"))  # the same turn again (a retried write)
    await tenants.flush()
    expected = {
        USER_SPEECH_MS: 1500, ASSISTANT_AUDIO_MS: 3200, STT_AUDIO_MS: 1900, TOOL_ACTIONS: 2,
        "voco_llm_input_tokens__claude_haiku": 800, "voco_llm_output_tokens__claude_haiku": 40,
    }  # fmt: skip
    assert await usage_rows(pool) == expected
    assert await usage_rows(pool, claims) == expected  # the member reads their org's usage
    stranger = {"sub": str(uuid.uuid4()), "aud": "authenticated"}
    assert await usage_rows(pool, stranger) == {}  # RLS: another tenant sees nothing
    # and a member cannot mark (or change) usage themselves
    for sql in ("update public.usage_events set value = 1", "delete from public.usage_events"):
        with pytest.raises(errors.InsufficientPrivilege):
            async with as_user(pool, claims) as conn:
                await conn.execute(sql)
    await grant.release()
    # what the job then reports is exactly what was recorded
    assert grant.org_id is not None
    await link(pool, grant.org_id, "cus_u", stripe_double)
    await aggregate(pool)
    await send_pending(pool, StripeBilling(BillingConfig(API_KEY, None, stripe_double.url)))
    assert stripe_double.totals() == {("cus_u", k): v for k, v in expected.items()}
    await tenants.aclose()
