"""AnthropicLLM against the local Messages API double, through the real SDK."""

from __future__ import annotations

import asyncio
import json

import pytest

from voco.agent.tools import MCP_TOOLS, tool_result_content
from voco.providers.anthropic_llm import AnthropicLLM
from voco.providers.base import (
    ChatMessage,
    Finished,
    LLMEvent,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolCallEvent,
)

from .doubles.anthropic import AnthropicDouble, Reply, Text, ToolUse
from .doubles.net import black_hole, refused_port


def make_llm(url: str, **kw: object) -> AnthropicLLM:
    opts: dict[str, object] = {"api_key": "sk-ant-test", "base_url": url, "max_retries": 0}
    opts.update(kw)
    return AnthropicLLM(**opts)


async def collect(
    llm: AnthropicLLM, messages: list[ChatMessage], tier: str = "sonnet"
) -> list[LLMEvent]:
    return [
        e
        async for e in llm.stream(
            system="You are Voco.", messages=messages, tools=MCP_TOOLS, tier=tier
        )
    ]


USER = [ChatMessage("user", "list the files")]


async def test_text_stream_and_headers(anthropic_double: AnthropicDouble) -> None:
    anthropic_double.replies.append(Reply([Text(["Sure", ", here", " they are."])]))
    llm = make_llm(anthropic_double.url)
    events = await collect(llm, USER)
    assert events == [
        TextDelta("Sure"),
        TextDelta(", here"),
        TextDelta(" they are."),
        # the SDK's usage fields, relayed: message_start's input, message_delta's output
        Finished("end_turn", "claude-sonnet-5-5", input_tokens=25, output_tokens=12),
    ]
    headers = anthropic_double.headers[0]
    # The installed SDK sends the key as a Bearer token; older ones used x-api-key.
    assert "sk-ant-test" in (headers.get("x-api-key"), headers.get("authorization", "")[7:])
    assert headers["anthropic-version"]
    body = anthropic_double.requests[0]
    assert body["stream"] is True
    assert body["system"] == "You are Voco."
    assert body["model"] == "claude-sonnet-5-5"
    assert [t["name"] for t in body["tools"]] == [t.name for t in MCP_TOOLS]
    assert body["tools"][0]["input_schema"]["type"] == "object"
    await llm.aclose()


async def test_tool_use_is_emitted_at_block_stop(anthropic_double: AnthropicDouble) -> None:
    args = {"path": "src/main.py", "offset": 0, "length": 200}
    anthropic_double.replies.append(
        Reply([Text(["Let me look."]), ToolUse("toolu_01", "read_file", args, fragment=3)])
    )
    llm = make_llm(anthropic_double.url)
    events = await collect(llm, USER, tier="haiku")
    assert events == [
        TextDelta("Let me look."),
        ToolCallEvent(ToolCall("toolu_01", "read_file", args)),
        Finished("tool_use", "claude-haiku-5-5", input_tokens=25, output_tokens=12),
    ]
    await llm.aclose()


async def test_tool_call_arrives_before_the_stream_ends(anthropic_double: AnthropicDouble) -> None:
    """The call is usable as soon as its block closes, not only at message_stop."""
    anthropic_double.replies.append(
        Reply([ToolUse("toolu_1", "list_dir", {"path": "."}), Text(["and more text"])])
    )
    llm = make_llm(anthropic_double.url)
    events = await collect(llm, USER)
    assert isinstance(events[0], ToolCallEvent)
    assert events[1] == TextDelta("and more text")
    await llm.aclose()


async def test_history_mapping_is_accepted_by_the_api(anthropic_double: AnthropicDouble) -> None:
    history = [
        ChatMessage("user", "run the tests and show me setup.py"),
        ChatMessage(
            "assistant",
            "Running them.",
            tool_calls=(
                ToolCall("toolu_a", "execute_command", {"command": "pytest -q"}),
                ToolCall("toolu_b", "read_file", {"path": "setup.py"}),
            ),
        ),
        ChatMessage(
            "tool",
            tool_result_content("success", {"exit_code": 0, "stdout": "ok"}),
            tool_call_id="toolu_a",
        ),
        ChatMessage(
            "tool",
            tool_result_content("error", error="no such file", code="not_found"),
            tool_call_id="toolu_b",
            is_error=True,
        ),
        ChatMessage("user", "ok, anything else?"),
        ChatMessage("assistant", "", interrupted=True),  # cut off before anything was heard
        ChatMessage("user", "never mind"),
        ChatMessage("assistant", "All right, the", interrupted=True),
        ChatMessage("user", "stop"),
    ]
    llm = make_llm(anthropic_double.url)
    events = await collect(llm, history)
    assert isinstance(events[-1], Finished)
    sent = anthropic_double.requests[0]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user", "assistant", "user"]
    assert sent[1]["content"][1] == {
        "type": "tool_use",
        "id": "toolu_a",
        "name": "execute_command",
        "input": {"command": "pytest -q"},
    }
    results = sent[2]["content"]
    assert [b["type"] for b in results] == ["tool_result", "tool_result", "text", "text"]
    assert results[0]["tool_use_id"] == "toolu_a" and "is_error" not in results[0]
    assert results[1]["is_error"] is True
    assert json.loads(results[1]["content"])["code"] == "not_found"
    assert [b["text"] for b in results[2:]] == ["ok, anything else?", "never mind"]
    assert sent[3]["content"] == [{"type": "text", "text": "All right, the"}]
    await llm.aclose()


async def test_user_words_during_a_tool_call_follow_its_result(
    anthropic_double: AnthropicDouble,
) -> None:
    history = [
        ChatMessage("user", "list src"),
        ChatMessage(
            "assistant", "", tool_calls=(ToolCall("toolu_1", "list_dir", {"path": "src"}),)
        ),
        ChatMessage("user", "and be quick"),  # spoken while the tool ran
        ChatMessage(
            "tool", tool_result_content("success", {"entries": []}), tool_call_id="toolu_1"
        ),
    ]
    llm = make_llm(anthropic_double.url)
    await collect(llm, history)
    last = anthropic_double.requests[0]["messages"][-1]["content"]
    assert [b["type"] for b in last] == ["tool_result", "text"]
    await llm.aclose()


async def test_tool_history_without_tools_is_replayed_as_text(
    anthropic_double: AnthropicDouble,
) -> None:
    history = [
        ChatMessage("user", "read setup.py"),
        ChatMessage(
            "assistant", "", tool_calls=(ToolCall("t1", "read_file", {"path": "setup.py"}),)
        ),
        ChatMessage("tool", "no such file", tool_call_id="t1", is_error=True),
        ChatMessage("assistant", "There is no setup.py."),
        ChatMessage("user", "thanks"),
    ]
    llm = make_llm(anthropic_double.url)
    events = [e async for e in llm.stream(system="", messages=history, tools=[], tier="haiku")]
    assert isinstance(events[-1], Finished)
    sent = anthropic_double.requests[0]["messages"]
    assert "tools" not in anthropic_double.requests[0]
    assert sent[1]["content"] == [
        {"type": "text", "text": '[tool call read_file {"path": "setup.py"}]'}
    ]
    assert sent[2]["content"] == [{"type": "text", "text": "[tool error] no such file"}]
    await llm.aclose()


async def test_model_tiers_and_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.setenv("VOCO_ANTHROPIC_HAIKU", "claude-haiku-custom")
    monkeypatch.delenv("VOCO_ANTHROPIC_SONNET", raising=False)
    llm = AnthropicLLM()
    assert llm.model_id("sonnet") == "claude-sonnet-5-5"
    assert llm.model_id("haiku") == "claude-haiku-custom"
    assert llm.model_id("unknown") == "claude-sonnet-5-5"
    assert AnthropicLLM(sonnet_model="x").model_id("sonnet") == "x"
    await llm.aclose()


async def test_env_base_url_and_key(
    anthropic_double: AnthropicDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_double.url)
    llm = AnthropicLLM(max_retries=0)
    assert await llm.list_models() == ["claude-sonnet-5-5", "claude-haiku-5-5"]
    await llm.aclose()


def test_missing_key_is_a_non_retryable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ProviderError) as info:
        AnthropicLLM()
    assert not info.value.retryable


async def test_bad_key_is_not_retryable(anthropic_double: AnthropicDouble) -> None:
    llm = make_llm(anthropic_double.url, api_key="wrong")
    with pytest.raises(ProviderError) as info:
        await collect(llm, USER)
    assert info.value.provider == "anthropic"
    assert not info.value.retryable
    assert "401" in info.value.message
    await llm.aclose()


async def test_invalid_request_is_not_retryable(anthropic_double: AnthropicDouble) -> None:
    llm = make_llm(anthropic_double.url)
    with pytest.raises(ProviderError) as info:
        await collect(llm, [ChatMessage("tool", "{}", tool_call_id="toolu_nowhere")])
    assert not info.value.retryable
    assert "400" in info.value.message
    await llm.aclose()


async def test_connect_refused() -> None:
    llm = make_llm(f"http://127.0.0.1:{refused_port()}")
    with pytest.raises(ProviderError) as info:
        await collect(llm, USER)
    assert info.value.retryable
    assert "connection" in info.value.message
    await llm.aclose()


async def test_timeout() -> None:
    async with black_hole() as port:
        llm = make_llm(f"http://127.0.0.1:{port}", timeout=0.3)
        with pytest.raises(ProviderError) as info:
            await collect(llm, USER)
        assert info.value.retryable
        assert "timed out" in info.value.message
        await llm.aclose()


async def test_stall_mid_stream_times_out(anthropic_double: AnthropicDouble) -> None:
    anthropic_double.replies.append(Reply([Text(["a", "b", "c"])], stall_after=4))
    llm = make_llm(anthropic_double.url, timeout=0.3)
    events: list[LLMEvent] = []
    with pytest.raises(ProviderError) as info:
        async for e in llm.stream(system="", messages=USER, tools=[], tier="sonnet"):
            events.append(e)
    assert events == [TextDelta("a")]
    assert info.value.retryable
    await llm.aclose()


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [(500, "api_error", True), (529, "overloaded_error", True), (429, "rate_limit_error", True)],
)
async def test_http_error_status(
    anthropic_double: AnthropicDouble, status: int, kind: str, retryable: bool
) -> None:
    anthropic_double.replies.append(Reply(status=status, error=(kind, "nope")))
    llm = make_llm(anthropic_double.url)
    with pytest.raises(ProviderError) as info:
        await collect(llm, USER)
    assert info.value.retryable is retryable
    assert str(status) in info.value.message and kind in info.value.message
    await llm.aclose()


async def test_sdk_retries_are_bounded(anthropic_double: AnthropicDouble) -> None:
    for _ in range(3):
        anthropic_double.replies.append(
            Reply(status=529, error=("overloaded_error", "Overloaded"), retry_after_ms=10)
        )
    llm = make_llm(anthropic_double.url, max_retries=1)
    with pytest.raises(ProviderError):
        await collect(llm, USER)
    assert len(anthropic_double.requests) == 2
    await llm.aclose()


async def test_sdk_retry_then_success(anthropic_double: AnthropicDouble) -> None:
    anthropic_double.replies.append(Reply(status=500, retry_after_ms=10))
    anthropic_double.replies.append(Reply([Text(["recovered"])]))
    llm = make_llm(anthropic_double.url, max_retries=1)
    events = await collect(llm, USER)
    assert events[0] == TextDelta("recovered")
    await llm.aclose()


@pytest.mark.parametrize(
    ("kind", "retryable"), [("overloaded_error", True), ("invalid_request_error", False)]
)
async def test_error_event_mid_stream(
    anthropic_double: AnthropicDouble, kind: str, retryable: bool
) -> None:
    anthropic_double.replies.append(
        Reply([Text(["partial", "more"])], cut_after=4, error_event=(kind, "Overloaded"))
    )
    llm = make_llm(anthropic_double.url)
    events: list[LLMEvent] = []
    with pytest.raises(ProviderError) as info:
        async for e in llm.stream(system="", messages=USER, tools=[], tier="sonnet"):
            events.append(e)
    assert events == [TextDelta("partial")]
    assert info.value.retryable is retryable
    assert kind in info.value.message
    await llm.aclose()


async def test_connection_dropped_mid_stream(anthropic_double: AnthropicDouble) -> None:
    anthropic_double.replies.append(Reply([Text(["one", "two", "three"])], drop_after=5))
    llm = make_llm(anthropic_double.url)
    events: list[LLMEvent] = []
    with pytest.raises(ProviderError) as info:
        async for e in llm.stream(system="", messages=USER, tools=[], tier="sonnet"):
            events.append(e)
    assert events == [TextDelta("one"), TextDelta("two")]
    assert info.value.retryable
    await llm.aclose()


async def test_stream_ending_without_message_stop(anthropic_double: AnthropicDouble) -> None:
    anthropic_double.replies.append(
        Reply([ToolUse("toolu_1", "list_dir", {"path": "."})], truncate_after=4)
    )
    llm = make_llm(anthropic_double.url)
    with pytest.raises(ProviderError) as info:
        await collect(llm, USER)
    assert info.value.retryable
    await llm.aclose()


async def test_cancellation_closes_the_stream(anthropic_double: AnthropicDouble) -> None:
    """Barge-in: cancelling the consumer releases the HTTP stream promptly."""
    anthropic_double.replies.append(Reply([Text(["first", "second"])], stall_after=4))
    llm = make_llm(anthropic_double.url, timeout=30)
    got_first = asyncio.Event()

    async def consume() -> None:
        async for e in llm.stream(system="", messages=USER, tools=[], tier="sonnet"):
            if isinstance(e, TextDelta):
                got_first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    # until the server notices the closed connection (the test's timeout bounds it)
    while not anthropic_double.disconnects:  # noqa: ASYNC110 (the double's counter has no event)
        await asyncio.sleep(0.01)
    assert anthropic_double.disconnects == 1
    await llm.aclose()
