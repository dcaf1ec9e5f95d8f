"""Hostile model servers against the deadlines, through the real Anthropic SDK.

The deadlines are short and injected; nothing here measures time: each test
asserts *what* happens when a deadline expires (which error, which fallback,
that the server saw the client leave), never how long it took.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes import ScriptedLLM
from voco.agent.command_mode import CommandModeLLM
from voco.providers.anthropic_llm import AnthropicLLM
from voco.providers.base import ChatMessage, FallbackUsed, Finished, LLMEvent, ProviderError
from voco.providers.deadline import DeadlineLLM, with_deadlines
from voco.providers.fallback import FallbackLLM

from .doubles.anthropic import AnthropicDouble, Reply, Text

USER = [ChatMessage("user", "list the files")]


def anthropic(url: str, key: str = "sk-ant-test") -> AnthropicLLM:
    # the SDK's own per-read timeout is long, as in production: only ours can fire
    return AnthropicLLM(api_key=key, base_url=url, timeout=60, max_retries=2)


async def collect(llm: DeadlineLLM | FallbackLLM | AnthropicLLM) -> list[LLMEvent]:
    return [
        e async for e in llm.stream(system="You are Voco.", messages=USER, tools=[], tier="haiku")
    ]


async def wait_for_disconnect(double: AnthropicDouble) -> None:
    """Until the server saw the client leave (the test's timeout bounds it)."""
    while not double.disconnects:  # noqa: ASYNC110 (the double's counter has no event)
        await asyncio.sleep(0.01)


async def test_a_server_that_never_answers_fails_at_the_first_token_deadline(
    anthropic_double: AnthropicDouble,
) -> None:
    anthropic_double.replies.append(Reply(hang=True))
    llm = DeadlineLLM(anthropic(anthropic_double.url), first_token_s=0.3, total_s=30)
    with pytest.raises(ProviderError, match=r"no reply within 0\.3 s") as info:
        await collect(llm)
    assert info.value.retryable  # a fallback may answer
    await wait_for_disconnect(anthropic_double)
    assert len(anthropic_double.requests) == 1  # cut, not retried behind our back
    await llm.aclose()


async def test_a_server_dripping_pings_forever_fails_at_the_total_deadline(
    anthropic_double: AnthropicDouble,
) -> None:
    # a first word, then only SSE pings: the SDK's read timeout would never fire
    anthropic_double.replies.append(Reply([Text(["Let me", " see"])], drip_after=4))
    llm = DeadlineLLM(anthropic(anthropic_double.url), first_token_s=60, total_s=1)
    with pytest.raises(ProviderError, match="longer than 1 s"):
        await collect(llm)
    await wait_for_disconnect(anthropic_double)
    await llm.aclose()


async def test_pings_before_the_first_token_do_not_count_as_a_reply(
    anthropic_double: AnthropicDouble,
) -> None:
    anthropic_double.replies.append(Reply(drip_after=1))  # message_start, then pings only
    llm = DeadlineLLM(anthropic(anthropic_double.url), first_token_s=0.3, total_s=30)
    with pytest.raises(ProviderError, match="no reply within"):
        await collect(llm)
    await llm.aclose()


async def test_a_hanging_primary_falls_back_and_says_so(
    anthropic_double: AnthropicDouble,
) -> None:
    anthropic_double.replies.append(Reply(hang=True))
    chain = with_deadlines(
        FallbackLLM(anthropic(anthropic_double.url), CommandModeLLM()),
        first_token_s=0.3,
        total_s=30,
    )
    events = await collect(chain)  # type: ignore[arg-type]
    used = [e for e in events if isinstance(e, FallbackUsed)]
    assert len(used) == 1 and used[0].fallback == "command-mode"
    assert "no reply within" in used[0].reason
    finished = [e for e in events if isinstance(e, Finished)]
    assert finished and finished[-1].model == CommandModeLLM().model_id("haiku")
    await chain.aclose()


async def test_a_bad_key_is_never_hidden_by_the_fallback(
    anthropic_double: AnthropicDouble,
) -> None:
    fallback = ScriptedLLM()
    chain = FallbackLLM(anthropic(anthropic_double.url, key="sk-ant-wrong"), fallback)
    with pytest.raises(ProviderError, match="401") as info:
        await collect(chain)
    assert not info.value.retryable
    assert fallback.calls == []  # the fallback was never asked
    await chain.aclose()


async def test_a_server_error_still_falls_back(anthropic_double: AnthropicDouble) -> None:
    anthropic_double.replies.extend([Reply(status=500)] * 3)  # the SDK retries twice
    chain = FallbackLLM(anthropic(anthropic_double.url), ScriptedLLM())
    events = await collect(chain)
    assert any(isinstance(e, FallbackUsed) and "500" in e.reason for e in events)
    assert [e.model for e in events if isinstance(e, Finished)] == ["scripted-haiku"]
    await chain.aclose()


def test_with_deadlines_bounds_each_link_of_a_chain() -> None:
    chain = with_deadlines(
        FallbackLLM(ScriptedLLM(), FallbackLLM(ScriptedLLM(), CommandModeLLM())),
        first_token_s=1,
        total_s=2,
    )
    assert isinstance(chain, FallbackLLM) and isinstance(chain.primary, DeadlineLLM)
    assert isinstance(chain.fallback, FallbackLLM)
    assert isinstance(chain.fallback.fallback, DeadlineLLM)
    assert chain.model_id("sonnet") == "scripted-sonnet"
    with pytest.raises(ValueError):
        DeadlineLLM(ScriptedLLM(), first_token_s=0, total_s=1)


async def test_fallback_reports_a_retryable_failure_but_not_a_fatal_one() -> None:
    class Refused(ScriptedLLM):
        def __init__(self, retryable: bool) -> None:
            super().__init__(fail=ProviderError("p", "nope", retryable=retryable))

    events = await collect(FallbackLLM(Refused(True), ScriptedLLM()))
    assert isinstance(events[0], FallbackUsed) and events[0].primary == "scripted"
    with pytest.raises(ProviderError, match="nope"):
        await collect(FallbackLLM(Refused(False), ScriptedLLM()))
