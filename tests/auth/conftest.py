"""Fixtures for the auth tests: a JWKS double, a manual clock, a Supabase verifier."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.auth.doubles import JwksDouble
from voco.auth import Verifier, supabase_verifier


class ManualClock:
    """Monotonic time that moves only when a test says so."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


@pytest.fixture
def double() -> Iterator[JwksDouble]:
    d = JwksDouble()
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def mono() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def verifier(double: JwksDouble, mono: ManualClock) -> AsyncIterator[Verifier]:
    v = supabase_verifier(double.url, monotonic=mono)
    try:
        yield v
    finally:
        await v.aclose()
