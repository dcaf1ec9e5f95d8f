"""The one module that talks to Stripe: the official SDK, async over httpx.

Errors are sorted into the two kinds the job queue acts on:
:class:`RetryableStripeError` (429, 5xx, connection failures and timeouts —
retried with backoff by the job) and :class:`PermanentStripeError` (a bad key,
a missing customer, a bad parameter — retrying would only repeat it, so the
job fails loudly and stays visible). A meter event whose identifier Stripe
already has is *success*: that is exactly the resend after a crash between
the Stripe call and the mark, and Stripe counted it the first time.

``api_base`` (``VOCO_STRIPE_API_BASE``) points the SDK at a proxy or a test
double; nothing else differs from production.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import stripe

from voco.billing.aggregate import PlannedReport

ENV_KEY = "STRIPE_SECRET_KEY"
ENV_WEBHOOK_SECRET = "STRIPE_WEBHOOK_SECRET"  # noqa: S105 (a variable name)
ENV_API_BASE = "VOCO_STRIPE_API_BASE"


class StripeFailure(Exception):
    """Base of the two kinds below; the message is Stripe's, made readable."""


class RetryableStripeError(StripeFailure):
    pass


class PermanentStripeError(StripeFailure):
    pass


@dataclass(frozen=True)
class BillingConfig:
    secret_key: str
    webhook_secret: str | None
    api_base: str | None = None

    @classmethod
    def from_env(cls) -> BillingConfig | None:
        """None when billing is off (no ``STRIPE_SECRET_KEY``)."""
        key = os.environ.get(ENV_KEY)
        if not key:
            return None
        return cls(key, os.environ.get(ENV_WEBHOOK_SECRET) or None, os.environ.get(ENV_API_BASE))


def _classify(exc: stripe.StripeError) -> StripeFailure:
    status = exc.http_status or 0
    text = (
        f"Stripe: {exc.user_message or exc._message or type(exc).__name__} (HTTP {status or '—'})"
    )
    if isinstance(exc, stripe.APIConnectionError) or status == 429 or status >= 500:
        return RetryableStripeError(text)
    return PermanentStripeError(text)


class StripeBilling:
    def __init__(self, config: BillingConfig, *, timeout_s: float = 10.0) -> None:
        base = {"api": config.api_base} if config.api_base else None
        # retries are the job queue's (with backoff, visible); none hidden here
        self._client = stripe.StripeClient(
            config.secret_key,
            base_addresses=base,  # type: ignore[arg-type]
            http_client=stripe.HTTPXClient(timeout=timeout_s),
            max_network_retries=0,
        )

    async def report(self, r: PlannedReport) -> None:
        """Send one meter event; returns once Stripe has it (now or from before).

        The identifier doubles as the idempotency key: within Stripe's 24 h
        window a resend is replayed, and after it the identifier itself is
        refused as a duplicate — both mean "already counted"."""
        try:
            await self._client.v1.billing.meter_events.create_async(
                params=r.stripe_params(),  # type: ignore[arg-type]
                options={"idempotency_key": r.identifier},
            )
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_already_exists":
                return
            raise _classify(exc) from exc
        except stripe.StripeError as exc:
            raise _classify(exc) from exc

    async def set_seats(self, item_id: str, quantity: int, *, proration: str, key: str) -> int:
        """Set the seat item's quantity; ``key`` makes a retried update a replay."""
        try:
            item = await self._client.v1.subscription_items.update_async(
                item_id,
                params={"quantity": quantity, "proration_behavior": proration},
                options={"idempotency_key": key},
            )
        except stripe.StripeError as exc:
            raise _classify(exc) from exc
        return int(item.quantity or 0)

    async def seat_quantity(self, item_id: str) -> int:
        try:
            item = await self._client.v1.subscription_items.retrieve_async(item_id)
        except stripe.StripeError as exc:
            raise _classify(exc) from exc
        return int(item.quantity or 0)
