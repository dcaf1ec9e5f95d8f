"""The engine's plain HTTP routes: liveness, readiness, ``/metrics``, the JWKS
of the embedded issuer, and the Stripe webhook.

Apart from :mod:`voco.engine.server` (the WebSocket adapter) because none of
them touches a session: they read the admission gate, the metrics registry and
the runtime, which the app hands in (``runtime`` is a getter: the app builds its
runtime at start-up, after the routes exist).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from voco.auth.tokens import JWKS_PATH
from voco.engine.admission import Admission
from voco.engine.metrics import EngineMetrics
from voco.engine.runtime import EngineRuntime
from voco.protocol import PROTOCOL_VERSION


def http_routes(
    runtime: Callable[[], EngineRuntime], gate: Admission, metrics: EngineMetrics
) -> list[Route]:
    async def metrics_endpoint(request: Request) -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    async def health(request: Request) -> JSONResponse:
        """Liveness: the process answers (its event loop runs)."""
        return JSONResponse({"ok": True, "protocol": PROTOCOL_VERSION})

    async def ready(request: Request) -> JSONResponse:
        """Readiness: 503 while draining or at capacity, so a balancer stops
        sending new sessions here (open ones go on)."""
        decision = gate.decide(time.monotonic(), rate=False)  # capacity, not the ramp
        body: dict[str, Any] = {"ready": decision.admit, "sessions": gate.sessions}
        if not decision.admit:
            body.update(reason=decision.reason, retry_after_ms=decision.retry_after_ms)
        if decision.admit:
            return JSONResponse(body)
        retry_s = str(-(-decision.retry_after_ms // 1000))  # whole seconds, rounded up
        return JSONResponse(body, status_code=503, headers={"retry-after": retry_s})

    async def jwks(request: Request) -> JSONResponse:
        # local mode publishes its public key like a Supabase project; Supabase mode has none
        doc = runtime().auth.public_jwks()
        if doc is None:
            return JSONResponse({"error": "this engine does not issue tokens"}, status_code=404)
        return JSONResponse(doc, headers={"cache-control": "public, max-age=300"})

    async def stripe_webhook(request: Request) -> JSONResponse:
        from voco.billing.http import stripe_webhook as handle

        return await handle(request, runtime().tenants)

    return [
        Route("/health", health),
        Route("/healthz", health),  # the original name, kept as an alias
        Route("/health/ready", ready),
        Route("/metrics", metrics_endpoint),
        Route(JWKS_PATH, jwks),
        Route("/v1/billing/stripe/webhook", stripe_webhook, methods=["POST"]),
    ]
