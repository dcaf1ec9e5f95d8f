"""The offline command mode end to end: spoken phrasings through ``CommandModeLLM``
against a fake project tree, looping model → tools → model as the engine does."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, get_args

import pytest

from tests.agent.command_drive import (
    AGENT_WALK,
    GIT_STATUS,
    README,
    Drive,
    L,
    R,
    S,
    X,
    make_tree,
    run,
    simple,
)
from voco.agent.command_intents import parse_request
from voco.agent.command_mode import CommandModeLLM, current_turn, decide
from voco.agent.command_types import Call, IntentKind, Reply
from voco.agent.tools import MCP_TOOLS
from voco.providers.base import (
    ChatMessage,
    Finished,
    LLMEvent,
    ToolCall,
    ToolCallEvent,
)

# Spoken phrasing (as a recogniser writes it) → the exact tool calls, in order.
PHRASES: list[tuple[str, list[tuple[str, dict[str, Any]]]]] = [
    # open / read / show a file
    ("Open the readme.", [L("."), R(README)]),
    ("Open the README.", [L("."), R(README)]),
    ("Read the read me.", [L("."), R(README)]),
    ("Okay, can you please open the readme?", [L("."), R(README)]),
    ("Show me main dot py.", [L("."), R("main.py")]),
    ("main dot py", [L("."), R("main.py")]),
    ("Main.py.", [L("."), R("main.py")]),
    ("Show me the main dot pie file.", [L("."), R("main.py")]),
    # misheard: no strong match anywhere, so the walk goes on; main.py is still the best
    ("Open mane dot py.", [*AGENT_WALK, L("src/voco/agent"), R("main.py")]),
    ("Show me setup dot cfg.", [L("."), R("setup.cfg")]),
    ("Read the first lines of main dot py.", [L("."), R("main.py")]),
    ("What does main dot py say?", [L("."), R("main.py")]),
    ("Open set up dot c f g.", [L("."), R("setup.cfg")]),
    ("Read the file utils slash io dot py.", [L("."), L("utils"), R("utils/io.py")]),
    ("Open utils slash I O dot py.", [L("."), L("utils"), R("utils/io.py")]),
    ("Open the config.", [L("."), R("config.toml")]),
    ("Look at the git ignore.", [L("."), R(".gitignore")]),
    ("Open router dot py.", [*AGENT_WALK, L("src/voco/agent"), R("src/voco/agent/router.py")]),
    ("Show me the guide in docs.", [L("."), L("docs"), R("docs/guide.md")]),
    ("Open the guide in the docs folder.", [L("."), L("docs"), R("docs/guide.md")]),
    # list a folder
    ("List the files in src.", [L("."), L("src")]),
    ("List the files in source.", [L("."), L("src")]),
    ("What's in the tests folder?", [L("."), L("tests")]),
    ("Show the directory.", [L(".")]),
    ("List files.", [L(".")]),
    ("What files are in this project?", [L(".")]),
    ("List the files in the repo.", [L(".")]),
    ("Show me the files in here.", [L(".")]),
    ("What files are there?", [L(".")]),
    ("How many files are there?", [L(".")]),
    ("Open the docs folder.", [L("."), L("docs")]),
    ("List the files in source slash voco.", [L("."), L("src"), L("src/voco")]),
    ("What's in the agent folder?", [*AGENT_WALK, L("src/voco/agent")]),
    # run the tests
    ("Run the tests.", [L("."), X("pytest -q")]),
    ("Hey Voco, run the tests please.", [L("."), X("pytest -q")]),
    ("Run the unit tests.", [L("."), X("pytest -q")]),
    ("Are the tests passing?", [L("."), X("pytest -q")]),
    ("Make test.", [L("."), X("make test")]),
    ("Run the JavaScript tests.", [L("."), X("npm test")]),
    # explicit commands
    ("Run pytest dash dash verbose.", [X("pytest --verbose")]),
    ("Run npm install.", [X("npm install")]),
    # git
    ("Git status.", [X(GIT_STATUS)]),
    ("What's the status of the repo?", [X(GIT_STATUS)]),
    ("Do I have uncommitted changes?", [X(GIT_STATUS)]),
    ("What changed?", [X("git diff --stat")]),
    ("Show me the diff.", [X("git diff --stat")]),
    ("Show the last commits.", [X("git log --oneline -n 5")]),
    ("Show me the last three commits.", [X("git log --oneline -n 3")]),
    ("What was the last commit?", [X("git log --oneline -n 1")]),
    ("What branch am I on?", [X("git branch --show-current")]),
    ("Which branch is this?", [X("git branch --show-current")]),
    # search
    ("Search for TODO.", [S("TODO")]),
    ("Find the to-dos.", [S("TODO")]),
    (
        "Grep for route model.",
        [S("route_model"), S("routeModel"), S("RouteModel"), S("route model")],
    ),
    (
        "Find where parse config is defined.",
        [S("parse_config"), S("parseConfig"), S("ParseConfig"), S("parse config")],
    ),
    ("Where is RouterPolicy defined?", [S("RouterPolicy")]),
    (
        "Search for read text in utils.",
        [L("."), *(S(p, "utils") for p in ("read_text", "readText", "ReadText", "read text"))],
    ),
    (
        "Where is route model used?",
        [S("route_model"), S("routeModel"), S("RouteModel"), S("route model")],
    ),
    # locate
    ("Where is the config file?", [L(".")]),
    ("Find main dot py.", [L(".")]),
    # where am I
    ("Where am I?", [L("."), ("read_file", {"path": README, "length": 4000})]),
    ("What project is this?", [L("."), ("read_file", {"path": README, "length": 4000})]),
    # no tools
    ("Stop.", []),
    ("Never mind.", []),
    ("Cancel that.", []),
    ("Hello.", []),
    ("Thank you!", []),
    ("What can you do?", []),
    ("Create a file called notes dot txt.", []),
    ("Delete the build folder.", []),
    ("Why is the build failing?", []),
    ("Okay.", []),
    ("", []),
    # several requests in one turn, in order
    ("Open the readme and run the tests.", [L("."), R(README), X("pytest -q")]),
    ("List src then open main dot py.", [L("."), L("src"), R("main.py")]),
    # the changes since the last commit: their size and the files, asked at once
    (
        "What changed since the last commit?",
        [X("git diff --stat HEAD"), X("git status --porcelain")],
    ),
]


def test_phrases_drive_every_intent_kind() -> None:
    """Every kind of request the parser knows is driven end to end below (a new
    kind without a phrasing here fails)."""
    reached = {i.kind for text, _ in PHRASES for i in parse_request(text)}
    assert reached == set(get_args(IntentKind))


@pytest.mark.parametrize(("text", "expected"), PHRASES)
def test_spoken_phrasings(project: Path, text: str, expected: list[Any]) -> None:
    commands = {}
    if "JavaScript" in text or "Make test" in text:
        make_tree(project, {"package.json": "{}", "Makefile": "test:\n"})
    calls, reply = run(Drive(project, commands), text)
    assert simple(calls) == expected, reply
    assert reply
    assert len(reply.split()) <= 42, reply
    assert not re.search(r"[#*`]|\n", reply), reply  # TTS-friendly: no markdown


def test_needs_language_model_answers(project: Path) -> None:
    for text, start in [
        ("Create a file called notes dot txt.", "Creating or writing files needs a language"),
        ("Delete the build folder.", "Deleting files needs a language model"),
        ("Refactor the router.", "Editing code needs a language model"),
        ("Commit my changes.", "Changing the git repository needs a language model"),
        ("Why is the build failing?", "I can't do that in command mode"),
        ("Run the server.", "Running that needs a language model"),
    ]:
        calls, reply = run(Drive(project), text)
        assert calls == []
        assert reply.startswith(start), reply
        assert "ANTHROPIC_API_KEY" in reply and "voco serve --llm anthropic" in reply
        assert "--llm openai" in reply and "VOCO_OPENAI_BASE_URL" in reply


def test_small_talk_replies(project: Path) -> None:
    drive = Drive(project)
    assert run(drive, "Stop.")[1] == "Okay."
    assert run(drive, "Thanks, that's all.")[1] == "You're welcome."
    assert run(drive, "Hello.")[1].startswith("Hi! I'm in command mode")
    assert "run the tests" in run(drive, "What can you do?")[1]
    assert run(drive, "")[1] == "I didn't catch that. Could you say it again?"


def test_stream_shape_and_model_id(project: Path) -> None:
    llm = CommandModeLLM()
    assert llm.model_id("sonnet") == llm.model_id("haiku") == "command-mode"
    assert llm.name == "command-mode" and llm.capabilities.tool_calling

    async def collect(messages: list[ChatMessage]) -> list[LLMEvent]:
        return [
            e async for e in llm.stream(system="", messages=messages, tools=MCP_TOOLS, tier="x")
        ]

    events = asyncio.run(collect([ChatMessage("user", "Open the readme.")]))
    assert len(events) == 2
    assert isinstance(events[0], ToolCallEvent) and events[0].call.name == "list_dir"
    assert events[1] == Finished("tool_use", "command-mode")

    events = asyncio.run(collect([ChatMessage("user", "What can you do?")]))
    assert events[-1] == Finished("end_turn", "command-mode")
    assert len(events) >= 3  # several clauses, streamed


def test_call_ids_are_deterministic_and_per_turn(project: Path) -> None:
    drive = Drive(project)
    a, _, history = asyncio.run(drive.turn("Open the readme."))
    b, _, _ = asyncio.run(Drive(project).turn("Open the readme."))
    assert [c.id for c in a] == [c.id for c in b]
    assert len({c.id for c in a}) == len(a)
    assert all(re.fullmatch(r"cm_[0-9a-f]{20}", c.id) for c in a)
    # the same words in a later turn get new ids
    c, _, _ = asyncio.run(drive.turn("Open the readme.", history=history))
    assert not {x.id for x in c} & {x.id for x in a}


def test_later_turn_ignores_earlier_tool_calls(project: Path) -> None:
    drive = Drive(project)
    _, _, history = asyncio.run(drive.turn("Open the readme."))
    calls, reply, _ = asyncio.run(drive.turn("Show the directory.", history=history))
    assert simple(calls) == [L(".")]
    assert reply.startswith("The project root has")
    turn = current_turn(history)
    assert turn.index == 0 and len(turn.steps) == 2


def test_decide_is_pure() -> None:
    messages = [ChatMessage("user", "Git status.")]
    assert decide(messages) == Call("execute_command", {"command": GIT_STATUS})
    assert decide(messages) == decide(list(messages))
    assert isinstance(decide([]), Reply)


def test_missing_tool_result_is_an_error() -> None:
    call = ToolCall("c1", "execute_command", {"command": GIT_STATUS})
    messages = [ChatMessage("user", "Git status."), ChatMessage("assistant", tool_calls=(call,))]
    decision = decide(messages)
    assert isinstance(decision, Reply) and decision.text.startswith("That didn't work")
