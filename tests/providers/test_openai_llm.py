"""OpenAICompatibleLLM against the local chat-completions double, through the real SDK."""

from __future__ import annotations

import asyncio
import json

import pytest

from voco.agent.tools import MCP_TOOLS, tool_result_content
from voco.providers.base import (
    ChatMessage,
    Finished,
    LLMEvent,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolCallEvent,
)
from voco.providers.openai_llm import OpenAICompatibleLLM

from .doubles.net import black_hole, refused_port
from .doubles.openai import Call, OpenAIDouble, Reply

USER = [ChatMessage("user", "what is in src?")]


def make_llm(url: str, **kw: object) -> OpenAICompatibleLLM:
    opts: dict[str, object] = {
        "base_url": url,
        "api_key": "sk-local",
        "model": "qwen2.5-coder:7b",
        "max_retries": 0,
    }
    opts.update(kw)
    return OpenAICompatibleLLM(**opts)


async def collect(
    llm: OpenAICompatibleLLM, messages: list[ChatMessage], tier: str = "sonnet"
) -> list[LLMEvent]:
    return [
        e
        async for e in llm.stream(
            system="You are Voco.", messages=messages, tools=MCP_TOOLS, tier=tier
        )
    ]


async def test_text_stream(openai_double: OpenAIDouble) -> None:
    openai_double.replies.append(Reply(["It has ", "three files."]))
    llm = make_llm(openai_double.url)
    events = await collect(llm, USER)
    assert events == [
        TextDelta("It has "),
        TextDelta("three files."),
        Finished("end_turn", "qwen2.5-coder:7b"),
    ]
    body = openai_double.requests[0]
    assert openai_double.headers[0]["authorization"] == "Bearer sk-local"
    assert body["stream"] is True
    assert body["messages"][0] == {"role": "system", "content": "You are Voco."}
    assert body["tools"][0]["type"] == "function"
    assert body["tools"][0]["function"]["name"] == "read_file"
    assert body["tools"][0]["function"]["parameters"]["required"] == ["path"]
    await llm.aclose()


async def test_tool_calls_accumulated_by_index(openai_double: OpenAIDouble) -> None:
    openai_double.replies.append(
        Reply(
            ["Checking."],
            calls=[
                Call("call_a", "list_dir", {"path": "src"}, fragment=3),
                Call("call_b", "search_text", {"pattern": "TODO", "path": "."}, fragment=4),
            ],
        )
    )
    llm = make_llm(openai_double.url, haiku_model="small-model")
    events = await collect(llm, USER, tier="haiku")
    assert events == [
        TextDelta("Checking."),
        ToolCallEvent(ToolCall("call_a", "list_dir", {"path": "src"})),
        ToolCallEvent(ToolCall("call_b", "search_text", {"pattern": "TODO", "path": "."})),
        Finished("tool_use", "small-model"),
    ]
    await llm.aclose()


async def test_history_mapping_is_accepted(openai_double: OpenAIDouble) -> None:
    history = [
        ChatMessage("user", "show me the readme"),
        ChatMessage("assistant", "", tool_calls=(ToolCall("c1", "read_file", {"path": "README"}),)),
        ChatMessage(
            "tool",
            tool_result_content("error", error="not found", code="not_found"),
            tool_call_id="c1",
            is_error=True,
        ),
        ChatMessage("assistant", "There is no", interrupted=True),
        ChatMessage("user", "ok"),
        ChatMessage("assistant", "", tool_calls=(ToolCall("c2", "list_dir", {"path": "."}),)),
        ChatMessage("tool", "permission denied", tool_call_id="c2", is_error=True),
        ChatMessage("user", "and now?"),
    ]
    llm = make_llm(openai_double.url)
    events = await collect(llm, history)
    assert isinstance(events[-1], Finished)
    sent = openai_double.requests[0]["messages"][1:]
    assert sent[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "read_file", "arguments": json.dumps({"path": "README"})},
            }
        ],
    }
    assert sent[2]["role"] == "tool" and json.loads(sent[2]["content"])["code"] == "not_found"
    assert sent[3] == {"role": "assistant", "content": "There is no"}
    assert sent[6] == {"role": "tool", "tool_call_id": "c2", "content": "Error: permission denied"}
    await llm.aclose()


async def test_env_configuration(
    openai_double: OpenAIDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOCO_OPENAI_BASE_URL", openai_double.url)
    monkeypatch.setenv("VOCO_OPENAI_API_KEY", "sk-local")
    monkeypatch.setenv("VOCO_OPENAI_MODEL", "llama3.1:8b")
    monkeypatch.setenv("VOCO_OPENAI_MODEL_SONNET", "llama3.1:70b")
    monkeypatch.delenv("VOCO_OPENAI_MODEL_HAIKU", raising=False)
    llm = OpenAICompatibleLLM(max_retries=0)
    assert llm.model_id("sonnet") == "llama3.1:70b"
    assert llm.model_id("haiku") == "llama3.1:8b"
    events = await collect(llm, USER, tier="haiku")
    assert events[-1] == Finished("end_turn", "llama3.1:8b")
    await llm.aclose()


async def test_bad_key_is_not_retryable(openai_double: OpenAIDouble) -> None:
    llm = make_llm(openai_double.url, api_key="wrong")
    with pytest.raises(ProviderError) as info:
        await collect(llm, USER)
    assert not info.value.retryable and "401" in info.value.message
    await llm.aclose()


async def test_connect_refused() -> None:
    llm = make_llm(f"http://127.0.0.1:{refused_port()}/v1")
    with pytest.raises(ProviderError) as info:
        await collect(llm, USER)
    assert info.value.provider == "openai"
    assert info.value.retryable
    await llm.aclose()


async def test_timeout() -> None:
    async with black_hole() as port:
        llm = make_llm(f"http://127.0.0.1:{port}/v1", timeout=0.3)
        with pytest.raises(ProviderError) as info:
            await collect(llm, USER)
        assert info.value.retryable and "timed out" in info.value.message
        await llm.aclose()


async def test_http_5xx_with_bounded_retries(openai_double: OpenAIDouble) -> None:
    openai_double.replies += [Reply(status=503), Reply(status=503), Reply(status=503)]
    llm = make_llm(openai_double.url, max_retries=1)
    with pytest.raises(ProviderError) as info:
        await collect(llm, USER)
    assert info.value.retryable and "503" in info.value.message
    assert len(openai_double.requests) == 2
    await llm.aclose()


async def test_error_object_in_stream(openai_double: OpenAIDouble) -> None:
    openai_double.replies.append(Reply(["partial", "rest"], error_event_after=2))
    llm = make_llm(openai_double.url)
    events: list[LLMEvent] = []
    with pytest.raises(ProviderError) as info:
        async for e in llm.stream(system="", messages=USER, tools=[], tier="sonnet"):
            events.append(e)
    assert events == [TextDelta("partial")]
    assert "model crashed" in info.value.message
    await llm.aclose()


async def test_dropped_mid_stream(openai_double: OpenAIDouble) -> None:
    openai_double.replies.append(Reply(["a", "b", "c"], drop_after=3))
    llm = make_llm(openai_double.url)
    with pytest.raises(ProviderError) as info:
        await collect(llm, USER)
    assert info.value.retryable and "interrupted" in info.value.message
    await llm.aclose()


async def test_stream_ending_without_finish_reason(openai_double: OpenAIDouble) -> None:
    openai_double.replies.append(Reply(["a", "b"], truncate_after=3))
    llm = make_llm(openai_double.url)
    with pytest.raises(ProviderError) as info:
        await collect(llm, USER)
    assert info.value.retryable and "finish_reason" in info.value.message
    await llm.aclose()


async def test_stall_mid_stream_times_out(openai_double: OpenAIDouble) -> None:
    openai_double.replies.append(Reply(["a", "b"], stall_after=2))
    llm = make_llm(openai_double.url, timeout=0.3)
    with pytest.raises(ProviderError) as info:
        await collect(llm, USER)
    assert info.value.retryable and "timed out" in info.value.message
    await llm.aclose()


async def test_cancellation_releases_the_stream(openai_double: OpenAIDouble) -> None:
    openai_double.replies.append(Reply(["first", "second"], stall_after=2))
    llm = make_llm(openai_double.url, timeout=30)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in llm.stream(system="", messages=USER, tools=[], tier="sonnet"):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    # until the server notices the closed connection (the test's timeout bounds it)
    while not openai_double.disconnects:  # noqa: ASYNC110 (the double's counter has no event)
        await asyncio.sleep(0.01)
    assert openai_double.disconnects == 1
    await llm.aclose()
