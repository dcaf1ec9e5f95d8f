"""``POST /v1/billing/stripe/webhook``: the engine's one billing route.

Stripe expects a 2xx for every event it should stop resending (including the
types Voco does not use and replays), and a 4xx for a request that is not a
genuine event (bad signature, stale timestamp, oversized body) — those change
nothing. With billing off, or without a database, the route answers 503 and
says why.
"""

from __future__ import annotations

import logging
import os

from starlette.requests import Request
from starlette.responses import JSONResponse

from voco.billing.stripe_api import ENV_WEBHOOK_SECRET, BillingConfig
from voco.billing.webhook_store import apply_event
from voco.billing.webhooks import MAX_BODY, WebhookRejected, secrets_from, verify
from voco.store.tenancy import TenantStore

log = logging.getLogger("voco.billing")


async def _capped_body(request: Request) -> bytes:
    """The body, refused as soon as it grows past the cap (never read whole)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise WebhookRejected(413, "webhook body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise WebhookRejected(413, "webhook body too large")
        chunks.append(chunk)
    return b"".join(chunks)


async def stripe_webhook(request: Request, tenants: TenantStore) -> JSONResponse:
    from voco.store.pg_tenants import PostgresTenantStore

    if BillingConfig.from_env() is None:
        return JSONResponse(
            {"error": "billing is off on this engine (STRIPE_SECRET_KEY is not set)"},
            status_code=503,
        )
    if not isinstance(tenants, PostgresTenantStore):
        return JSONResponse(
            {"error": "billing needs the Postgres store (this engine runs --database memory)"},
            status_code=503,
        )
    try:
        body = await _capped_body(request)
        event = verify(
            body,
            request.headers.get("stripe-signature"),
            secrets_from(os.environ.get(ENV_WEBHOOK_SECRET)),
        )
    except WebhookRejected as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    if not isinstance(event.get("id"), str) or not isinstance(event.get("data"), dict):
        return JSONResponse({"error": "not a Stripe event object"}, status_code=400)
    try:
        handled = await apply_event(tenants.pool, event)
    except (KeyError, TypeError, ValueError) as exc:
        # signed by Stripe but not the shape Voco knows: say so, change nothing
        log.warning("webhook %s not applied: %r", event.get("id"), exc)
        return JSONResponse({"error": f"event not understood: {exc!r}"}, status_code=400)
    return JSONResponse({"received": True, "outcome": handled.outcome}, status_code=handled.status)
