"""Who may start a session: the subscription state, decided as a pure function.

Kept apart from the database and the webhook handler so the rule a customer
meets at ``session.start`` (4402 or not) is one small, testable function with
an injected ``now``: active and trialing subscriptions are admitted,
``past_due`` only within the grace period, everything else is refused with a
message that says why and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

DEFAULT_GRACE = timedelta(days=7)
ADMITTED = frozenset({"active", "trialing"})


@dataclass(frozen=True)
class Subscription:
    status: str  # Stripe's: active, trialing, past_due, canceled, unpaid, incomplete…
    past_due_since: datetime | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


def decide(
    sub: Subscription | None,
    *,
    billing_enabled: bool,
    now: datetime,
    grace: timedelta = DEFAULT_GRACE,
) -> Decision:
    if not billing_enabled:
        return Decision(True, "billing is off")
    if sub is None:
        return Decision(
            False,
            "your organisation has no subscription: an owner or admin can subscribe "
            "in the billing portal, then reconnect",
        )
    if sub.status in ADMITTED:
        return Decision(True)
    if sub.status == "past_due":
        since = sub.past_due_since or now
        if now - since <= grace:
            return Decision(True, "payment past due, within the grace period")
        return Decision(
            False,
            "the organisation's last payment failed and the grace period is over: "
            "update the payment method in the billing portal, then reconnect",
        )
    return Decision(
        False,
        f"the organisation's subscription is {sub.status}: an owner or admin can "
        "renew it in the billing portal, then reconnect",
    )


# SQLSTATE of the ``org_members_seats`` trigger's refusal (migration
# ``billing_seats``): a member beyond a fixed-seat plan's seats
SEATS_FULL = "VS409"


class _Diag(Protocol):
    @property
    def message_primary(self) -> str | None: ...
    @property
    def message_hint(self) -> str | None: ...


class _DbError(Protocol):
    @property
    def sqlstate(self) -> str | None: ...
    @property
    def diag(self) -> _Diag: ...


def seat_refusal(exc: _DbError) -> str | None:
    """The fixed-seat refusal as one sentence (why, then what to do), or None
    if ``exc`` is another database error."""
    if exc.sqlstate != SEATS_FULL:
        return None
    why = exc.diag.message_primary or "the organisation's plan has no free seat"
    hint = exc.diag.message_hint
    return f"{why}: {hint}" if hint else why
