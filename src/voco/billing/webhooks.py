"""Checking a Stripe webhook before anything is believed.

``stripe.Webhook.construct_event`` verifies the ``Stripe-Signature`` header
(HMAC-SHA256 over ``t.payload``; any of several ``v1=`` signatures may match,
which is how Stripe signs during a secret roll) and the timestamp tolerance
(replays of an old, validly signed body are refused). Voco accepts a list of
secrets too (``STRIPE_WEBHOOK_SECRET=whsec_new,whsec_old``) for its own side of
a rotation. The body is capped before it is read whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import stripe

MAX_BODY = 256 * 1024  # Stripe's event payloads are far below this
TOLERANCE_S = 300  # Stripe's default


@dataclass(frozen=True)
class WebhookRejected(Exception):
    status: int
    message: str

    def __str__(self) -> str:
        return self.message


def secrets_from(value: str | None) -> list[str]:
    return [s.strip() for s in (value or "").split(",") if s.strip()]


def verify(
    payload: bytes, signature: str | None, secrets: Sequence[str], *, tolerance_s: int = TOLERANCE_S
) -> dict[str, Any]:
    """The verified event as a plain dict, or :class:`WebhookRejected` (4xx)."""
    if not secrets:
        raise WebhookRejected(503, "webhooks are not configured (STRIPE_WEBHOOK_SECRET)")
    if len(payload) > MAX_BODY:
        raise WebhookRejected(413, "webhook body too large")
    if not signature:
        raise WebhookRejected(400, "missing Stripe-Signature header")
    last: Exception | None = None
    for secret in secrets:
        try:
            event = stripe.Webhook.construct_event(payload, signature, secret, tolerance_s)
        except stripe.SignatureVerificationError as exc:
            last = exc
            continue
        except ValueError as exc:
            raise WebhookRejected(400, f"webhook body is not a Stripe event: {exc}") from exc
        result: dict[str, Any] = event.to_dict()
        return result
    raise WebhookRejected(400, f"bad webhook signature: {last}")
