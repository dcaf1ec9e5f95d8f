"""The command mode planner (``voco.agent.command_plan``): next steps from the turn so far."""

from __future__ import annotations

from pathlib import Path

from tests.agent.command_drive import (
    Drive,
    S,
    run,
    simple,
)
from voco.agent.command_mode import decide
from voco.agent.command_plan import pattern_variants
from voco.agent.command_types import Reply
from voco.agent.tools import tool_result_content
from voco.providers.base import (
    ChatMessage,
    ToolCall,
)


def test_round_limit_stops_a_runaway_turn() -> None:
    user = ChatMessage("user", "Git status.")
    messages = [user]
    for i in range(6):
        call = ToolCall(f"c{i}", "list_dir", {"path": f"x{i}"})
        messages += [
            ChatMessage("assistant", tool_calls=(call,)),
            ChatMessage(
                "tool", tool_result_content("success", {"entries": []}), tool_call_id=call.id
            ),
        ]
    decision = decide(messages)
    assert isinstance(decision, Reply) and "too many steps" in decision.text


def test_search_tries_spellings_then_gives_up(project: Path) -> None:
    calls, reply = run(Drive(project), "Search for missing thing.")
    assert simple(calls) == [
        S("missing_thing"),
        S("missingThing"),
        S("MissingThing"),
        S("missing thing"),
    ]
    assert reply == "I found no matches for missing thing."


def test_search_falls_back_to_camel_case(project: Path) -> None:
    calls, reply = run(Drive(project), "Find where router policy is defined.")
    assert simple(calls) == [
        S("router_policy"),
        S("routerPolicy"),
        S("RouterPolicy"),
        S("router policy"),
    ]
    assert reply == "RouterPolicy is defined in router dot py in the agent folder, line 1."


def test_no_tools_means_no_runtime(project: Path) -> None:
    calls, reply = run(Drive(project), "Open the readme.", tools=[])
    assert calls == []
    assert reply == "I can't reach your project right now; no local runtime is connected."
    # text-only intents still answer
    assert run(Drive(project), "Stop.", tools=[])[1] == "Okay."


def test_pattern_variants() -> None:
    assert pattern_variants("parse config") == [
        "parse_config",
        "parseConfig",
        "ParseConfig",
        "parse config",
    ]
    assert pattern_variants("TODO") == ["TODO"]
    assert pattern_variants("Token") == ["Token", "token"]
