"""The Stripe double on 127.0.0.1 for billing tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.providers.doubles.stripe import StripeDouble


@pytest.fixture
async def stripe_double() -> AsyncIterator[StripeDouble]:
    async with StripeDouble().running() as double:
        yield double
