"""A tool call left open by a crash (or a barge-in) is closed *right after its
call*, before the user's next message — the order chat APIs require. Checked
against the OpenAI-compatible double, which rejects any other order."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from tests.agent.test_graph import RecordingEmitter, ScriptedPort
from tests.providers.doubles.openai import OpenAIDouble, Reply
from voco.agent.context import AgentContext
from voco.agent.graph import build_graph
from voco.agent.state import merge_messages, message
from voco.providers.base import ChatMessage, ToolCall
from voco.providers.openai_llm import OpenAICompatibleLLM

CFG = {"configurable": {"thread_id": "t1"}}


async def crashed_mid_call(graph: Any, flag: dict[str, Any]) -> None:
    """A thread whose last run died after the model asked for a tool."""
    call = ToolCall("c1", "execute_command", {"command": "make"})
    await graph.aupdate_state(
        CFG,
        {
            "messages": [
                message(ChatMessage("user", "build it"), "u1"),
                message(ChatMessage("assistant", "", tool_calls=(call,)), "a1"),
            ],
            **flag,
        },
        as_node="model",
    )


async def next_turn(graph: Any, llm: Any) -> list[dict[str, Any]]:
    ctx = AgentContext(llm, RecordingEmitter(), ScriptedPort({}), "system")
    user = message(ChatMessage("user", "did it work?"), "u2")
    await graph.ainvoke(
        {"messages": [user], "thread_id": "t1", "user_id": "a", "project_id": "p"},
        CFG,
        context=ctx,
    )
    return list((await graph.aget_state(CFG)).values["messages"])


@pytest.mark.parametrize(
    "flag,code",
    [
        ({"pending_mcp_action": {"id": "c1", "name": "execute_command"}}, "runtime_disconnected"),
        ({"barge_in_detected": True}, "interrupted"),
    ],
    ids=["engine_crash", "barge_in"],
)
async def test_the_closing_result_follows_its_call(flag: dict[str, Any], code: str) -> None:
    async with OpenAIDouble().running() as double:
        double.replies.append(Reply(text=["It is unknown whether the build ran."]))
        llm = OpenAICompatibleLLM(base_url=double.url, api_key="sk-local", model="m", max_retries=0)
        graph = build_graph(InMemorySaver())
        await crashed_mid_call(graph, flag)
        msgs = await next_turn(graph, llm)
        await llm.aclose()
    assert [(m["role"], m["id"]) for m in msgs][:3] == [
        ("user", "u1"),
        ("assistant", "a1"),
        ("tool", msgs[2]["id"]),
    ]
    assert msgs[2]["tool_call_id"] == "c1" and json.loads(msgs[2]["content"])["code"] == code
    assert msgs[3]["id"] == "u2" and msgs[4]["role"] == "assistant"
    assert "before" not in msgs[2]  # the placement hint is not stored
    # the API accepted the conversation (the double answers 400 to a bad order)
    assert "unknown whether" in msgs[4]["content"]


def test_merge_places_a_late_message_before_the_named_one() -> None:
    left = [{"id": "a"}, {"id": "u2"}]
    out = merge_messages(left, [{"id": "t", "before": "u2"}, {"id": "z", "before": "gone"}])
    assert out == [{"id": "a"}, {"id": "t"}, {"id": "u2"}, {"id": "z"}]
    assert merge_messages(out, [{"id": "t", "x": 1, "before": "a"}])[1] == {"id": "t", "x": 1}
