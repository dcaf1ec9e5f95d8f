"""End to end over the real protocol: org A's text turn produces usage, the
job reports exactly that to Stripe, a signed ``customer.subscription.deleted``
makes A's next session 4402 while org B is unaffected."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes import ScriptedLLM
from tests.providers.doubles.stripe import API_KEY, StripeDouble, sign_webhook
from voco.billing.reporting import aggregate, send_pending
from voco.billing.stripe_api import BillingConfig, StripeBilling
from voco.local.engine_client import EngineClient, SessionRefused
from voco.protocol import messages as m
from voco.providers.base import ChatMessage, Finished, LLMEvent, TextDelta, ToolSpec
from voco.store import open_store
from voco.store.db import as_service

pytestmark = pytest.mark.timeout(180)
SECRET = "whsec_e2e"


class GatedLLM(ScriptedLLM):
    """A first sentence, then the rest only once the test has received audio,
    so the turn is recorded with audio actually sent."""

    def __init__(self) -> None:
        super().__init__()
        self.heard = asyncio.Event()
        self.answered = ""

    async def stream(
        self, *, system: str, messages: list[ChatMessage], tools: list[ToolSpec], tier: str
    ) -> AsyncIterator[LLMEvent]:
        yield TextDelta("Hello there, this is Voco. ")
        await asyncio.wait_for(self.heard.wait(), 30)
        yield TextDelta("That is all.")
        # the provider's own count of this call (the Anthropic adapter relays the SDK's)
        self.answered = self.model_id(tier)
        yield Finished("end_turn", self.answered, input_tokens=321, output_tokens=45)


@pytest.fixture
async def store(db_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    monkeypatch.setenv("STRIPE_SECRET_KEY", API_KEY)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    async with open_store(db_url) as s:
        yield s


async def hook(base: str, etype: str, obj: dict[str, Any], created: int) -> None:
    body = json.dumps(
        {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": etype,
         "created": created, "data": {"object": obj}}
    ).encode()  # fmt: skip
    async with httpx.AsyncClient() as client:
        r = await client.post(
            f"{base}/v1/billing/stripe/webhook",
            content=body,
            headers={"Stripe-Signature": sign_webhook(body, SECRET)},
        )
    assert r.status_code == 200, r.text


async def org_of(store: Any, user: str) -> str:
    async with as_service(store.pool, "test") as conn:
        cur = await conn.execute(
            "select org_id::text as org from public.org_members where user_id = %s", (user,)
        )
        row = await cur.fetchone()
    assert row is not None
    return str(row["org"])


async def test_usage_reported_and_a_cancelled_org_is_4402(
    engine_factory: Any, store: Any, stripe_double: StripeDouble
) -> None:
    llm = GatedLLM()
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    async with engine_factory(llm, checkpointer=store.checkpointer, tenants=store.tenants) as eng:
        base = eng.url.replace("ws://", "http://").removesuffix("/v1/session")
        store.tenants.billing = False  # first contact makes each user's organisation
        for u in (alice, bob):
            await (await EngineClient.connect(eng.url, m.SessionStart(token=eng.token(u)))).close()
        now = int(time.time())
        for u, cus in ((alice, "cus_a"), (bob, "cus_b")):
            stripe_double.customers[cus] = {"id": cus}
            org = await org_of(store, u)
            await hook(base, "checkout.session.completed",
                       {"client_reference_id": org, "customer": cus}, now)  # fmt: skip
            sub = {"id": f"sub_{cus}", "customer": cus, "status": "active",
                   "items": {"data": [{"id": f"si_{cus}", "quantity": 1}]}}  # fmt: skip
            await hook(base, "customer.subscription.created", sub, now)
        store.tenants.billing = True

        a = await EngineClient.connect(eng.url, m.SessionStart(token=eng.token(alice)))
        await a.send(m.TextInput(text="hi"))
        while True:
            got = await a.recv()
            if got.audio is not None:
                llm.heard.set()
            if isinstance(got.message, m.AgentDone):
                break
        while (await a.recv()).message != m.State(value="listening"):
            pass  # played out: the turn (and its usage) is recorded when its audio ends
        await a.close()
        await store.tenants.flush()

        async with as_service(store.pool, "test") as conn:
            cur = await conn.execute(
                "select event_name, sum(value)::bigint as v from public.usage_events group by 1"
            )
            recorded = {("cus_a", r["event_name"]): int(r["v"]) for r in await cur.fetchall()}
        assert recorded.get(("cus_a", "voco_assistant_audio_ms"), 0) > 0
        # the model call's tokens, per model, written with the turn
        slug = llm.answered.replace("-", "_")
        assert {k: v for k, v in recorded.items() if "_llm_" in k[1]} == {
            ("cus_a", f"voco_llm_input_tokens__{slug}"): 321,
            ("cus_a", f"voco_llm_output_tokens__{slug}"): 45,
        }
        await aggregate(store.pool)
        await send_pending(
            store.pool, StripeBilling(BillingConfig(API_KEY, None, stripe_double.url))
        )
        assert stripe_double.totals() == recorded

        cancelled = {"id": "sub_cus_a", "customer": "cus_a", "status": "canceled"}
        await hook(base, "customer.subscription.deleted", cancelled, now + 5)
        with pytest.raises(SessionRefused) as refused:
            await EngineClient.connect(eng.url, m.SessionStart(token=eng.token(alice)))
        assert refused.value.code == 4402
        assert refused.value.error is not None and "canceled" in refused.value.error.message
        b = await EngineClient.connect(eng.url, m.SessionStart(token=eng.token(bob)))
        await b.close()
