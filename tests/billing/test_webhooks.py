from __future__ import annotations

import json
import time

import pytest

from tests.providers.doubles.stripe import sign_webhook
from voco.billing.webhooks import MAX_BODY, WebhookRejected, secrets_from, verify

SECRET = "whsec_test_voco"
BODY = json.dumps(
    {"id": "evt_1", "object": "event", "type": "invoice.paid", "created": 1, "data": {"object": {}}}
).encode()


def test_a_stripe_signed_event_verifies() -> None:
    event = verify(BODY, sign_webhook(BODY, SECRET), [SECRET])
    assert event["id"] == "evt_1" and event["type"] == "invoice.paid"


def test_rotation_any_configured_secret_and_any_v1_signature() -> None:
    assert verify(BODY, sign_webhook(BODY, SECRET), secrets_from(f"whsec_new, {SECRET}"))
    ts = int(time.time())
    both = (
        sign_webhook(BODY, "whsec_other", ts) + "," + sign_webhook(BODY, SECRET, ts).split(",")[1]
    )
    assert verify(BODY, both, [SECRET])["id"] == "evt_1"


@pytest.mark.parametrize(
    ("body", "header", "status", "words"),
    [
        (BODY, None, 400, "missing"),
        (BODY, sign_webhook(BODY, "whsec_wrong"), 400, "signature"),
        (BODY + b" ", sign_webhook(BODY, SECRET), 400, "signature"),
        (BODY, sign_webhook(BODY, SECRET, int(time.time()) - 3600), 400, "signature"),
        (b"x" * (MAX_BODY + 1), "t=1,v1=00", 413, "too large"),
    ],
)
def test_bad_webhooks_are_refused_clearly(
    body: bytes, header: str | None, status: int, words: str
) -> None:
    with pytest.raises(WebhookRejected) as info:
        verify(body, header, [SECRET])
    assert info.value.status == status and words in str(info.value)


def test_unconfigured_webhooks_say_so() -> None:
    with pytest.raises(WebhookRejected, match="STRIPE_WEBHOOK_SECRET"):
        verify(BODY, sign_webhook(BODY, SECRET), [])
