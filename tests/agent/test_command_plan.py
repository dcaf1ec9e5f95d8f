"""The command mode planner (``voco.agent.command_plan``): next steps from the turn so far."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.agent.command_drive import (
    GIT_STATUS,
    README,
    Drive,
    L,
    R,
    Result,
    S,
    X,
    run,
    run_result,
    simple,
)
from voco.agent.command_intents import parse_request
from voco.agent.command_mode import decide
from voco.agent.command_plan import CHANGES_COMMANDS, pattern_variants, plan_request
from voco.agent.command_types import Call, Calls, Progress, Reply, Step
from voco.agent.summaries import RUNTIME_GONE_TEXT
from voco.agent.tools import TOOL_NAMES, tool_result_content
from voco.providers.base import ChatMessage, ToolCall


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


# ---------------------------------------------------------------------------- several requests


def test_requests_run_in_order_and_each_result_is_said_as_it_comes(project: Path) -> None:
    drive = Drive(project, {"pytest -q": run_result("....\n4 passed in 0.05s\n")})
    calls, reply, messages = asyncio.run(drive.turn("Open the readme and run the tests."))
    assert simple(calls) == [L("."), R(README), X("pytest -q")]
    readme = "README dot md has 7 lines. It starts: Voco. A voice coding assistant."
    # the readme's summary is said with the call to run the tests (before any approval) ...
    asked = [m for m in messages if m.role == "assistant" and m.tool_calls]
    assert asked[-1].content == readme + " "
    assert asked[-1].tool_calls[0].arguments == {"command": "pytest -q"}
    # ... and not again at the end
    assert messages[-1].content == "Tests passed: 4 passed."
    assert reply == readme + " Tests passed: 4 passed."


def test_list_then_open_reuses_the_listing(project: Path) -> None:
    calls, reply = run(Drive(project), "List src then open main dot py.")
    assert simple(calls) == [L("."), L("src"), R("main.py")]
    assert reply.startswith("The src folder has 1 folder: voco. main dot py has 5 lines.")


def test_refusal_after_a_request_is_said_last(project: Path) -> None:
    drive = Drive(project, {GIT_STATUS: run_result("## main\n")})
    calls, reply = run(drive, "Git status and then commit everything.")
    assert simple(calls) == [X(GIT_STATUS)]
    assert reply.startswith("You're on main. The working tree is clean. Changing the git")
    assert "Changing the git repository needs a language model" in reply


def test_runtime_gone_ends_the_turn(project: Path) -> None:
    def gone(call: ToolCall) -> Result | None:
        return {"status": "error", "code": "runtime_disconnected", "error": "gone"}

    calls, reply = run(Drive(project), "Git status and run the tests.", respond=gone)
    assert simple(calls) == [X(GIT_STATUS)]  # the tests are not tried against a dead link
    assert reply == RUNTIME_GONE_TEXT


def test_plan_request_is_a_pure_function_of_the_steps() -> None:
    intents = parse_request("Git status and git branch.")
    status = Step(
        "execute_command",
        {"command": GIT_STATUS},
        {"status": "success", "result": {"exit_code": 0, "stdout": "## main\n", "stderr": ""}},
    )
    first = plan_request(intents, [], TOOL_NAMES)
    assert first == Call("execute_command", {"command": GIT_STATUS})
    second = plan_request(intents, [status], TOOL_NAMES)
    assert isinstance(second, Progress)
    assert second.say == "You're on main. The working tree is clean."
    assert second.then == Call("execute_command", {"command": "git branch --show-current"})
    # once said, it is not said again
    said = plan_request(intents, [status], TOOL_NAMES, said=second.say)
    assert said == second.then


def test_round_limit_counts_the_whole_turn(project: Path) -> None:
    drive = Drive(project)
    calls, reply = run(drive, "Open router dot py and open utils slash io dot py and git status.")
    assert len(drive.rounds) <= 6
    assert reply.endswith("I couldn't finish that in command mode; it took too many steps.")
    assert reply.startswith("router dot py in the agent folder has 7 lines.")


# ---------------------------------------------------------------------------- changes


def _changes(diff: Result, status: Result) -> dict[str, Result]:
    return dict(zip(CHANGES_COMMANDS, (diff, status), strict=True))


def test_changes_since_the_last_commit_asks_both_at_once(project: Path) -> None:
    diff = run_result(
        " src/a.py | 12 +++++-----\n 1 file changed, 7 insertions(+), 5 deletions(-)\n"
    )
    status = run_result(" M src/a.py\n?? notes.txt\n")
    drive = Drive(project, _changes(diff, status))
    calls, reply = run(drive, "What changed since the last commit?")
    assert [simple(r) for r in drive.rounds] == [[X(c) for c in CHANGES_COMMANDS]]
    assert reply == (
        "Since the last commit, 1 file changed: 7 lines added and 5 removed. "
        "It is a dot py in src. 1 new file is untracked: notes dot txt."
    )


def test_changes_without_commits_or_repository(project: Path) -> None:
    bad_head = run_result("", "fatal: bad revision 'HEAD'\n", exit_code=128)
    drive = Drive(project, _changes(bad_head, run_result("?? a.py\n")))
    assert run(drive, "What changed since my last commit?")[1] == (
        "There are no commits yet, so there is nothing to compare with."
    )
    no_repo = run_result("", "fatal: not a git repository (or any parent)\n", exit_code=128)
    drive = Drive(project, _changes(no_repo, no_repo))
    assert run(drive, "What changed since the last commit?")[1] == (
        "This folder isn't a git repository."
    )


def test_changes_refused_by_the_runtime(project: Path) -> None:
    def refuse(call: ToolCall) -> Result | None:
        return {"status": "rejected", "code": "denied_by_policy", "error": "no"}

    _, reply = run(Drive(project), "What changed since the last commit?", respond=refuse)
    assert reply == "Your local runtime's policy doesn't allow that, so I didn't run it."


def test_plain_what_changed_is_still_the_unstaged_diff() -> None:
    assert decide([ChatMessage("user", "What changed?")]) == Call(
        "execute_command", {"command": "git diff --stat"}
    )
    assert isinstance(decide([ChatMessage("user", "What changed since HEAD?")]), Calls)
