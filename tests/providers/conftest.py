"""Fixtures: each vendor double running on 127.0.0.1 for the duration of a test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .doubles.anthropic import AnthropicDouble
from .doubles.cartesia import CartesiaDouble
from .doubles.deepgram import DeepgramDouble
from .doubles.openai import OpenAIDouble


@pytest.fixture
async def anthropic_double() -> AsyncIterator[AnthropicDouble]:
    async with AnthropicDouble().running() as double:
        yield double


@pytest.fixture
async def openai_double() -> AsyncIterator[OpenAIDouble]:
    async with OpenAIDouble().running() as double:
        yield double


@pytest.fixture
async def deepgram_double() -> AsyncIterator[DeepgramDouble]:
    async with DeepgramDouble().running() as double:
        yield double


@pytest.fixture
async def cartesia_double() -> AsyncIterator[CartesiaDouble]:
    async with CartesiaDouble().running() as double:
        yield double
