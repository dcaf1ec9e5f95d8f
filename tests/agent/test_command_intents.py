"""Spoken turns → intents (``voco.agent.command_intents``): clauses, continuation,
small talk, and the case of search terms."""

from __future__ import annotations

import pytest

from voco.agent.command_intents import parse_request, parse_utterance
from voco.agent.command_types import Intent


def test_intents_keep_case_of_search_terms() -> None:
    assert parse_utterance("Grep for MyClass.").target == "MyClass"
    assert parse_utterance("Search for self dot path.").target == "self.path"
    assert parse_utterance("Search for max underscore steps.").target == "max_steps"
    assert parse_utterance("Show me the last twenty commits.").count == 20
    assert parse_utterance("Search for token in source.").scope == "source"


def kinds(text: str) -> list[tuple[str, str]]:
    return [(i.kind, i.target or i.command) for i in parse_request(text)]


# Tuning set for several requests in one turn (the held-out set is elsewhere).
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Open the readme and run the tests.", [("open", "readme"), ("run_tests", "")]),
        ("List src then open main dot py.", [("list", "src"), ("open", "main.py")]),
        ("Git status. Then show the last three commits.", [("git_status", ""), ("git_log", "")]),
        (
            "Search for TODO, and then run pytest.",
            [("search", "TODO"), ("run_command", "pytest")],
        ),
        # a bare name continues the request before it
        (
            "What's in the tests folder and the docs folder?",
            [("open", "tests"), ("list", "docs")],
        ),
        ("Open the readme and the makefile.", [("open", "readme"), ("open", "makefile")]),
        ("List tests and src.", [("list", "tests"), ("list", "src")]),
        # ... but a request of its own does not (moved here from the held-out set)
        ("Open the readme, and explain what it does.", [("open", "readme"), ("needs_llm", "")]),
        ("Open the readme and summarize it.", [("open", "readme"), ("needs_llm", "")]),
        # what cannot be done is kept, in order, so the reply can say so
        (
            "Run the tests and then fix whatever fails.",
            [("run_tests", ""), ("needs_llm", "")],
        ),
        # small talk around a request is dropped
        ("Okay, can you please open the readme?", [("open", "readme")]),
        ("Hey Voco, run the tests please.", [("run_tests", "")]),
        ("Thanks. Now git status.", [("git_status", "")]),
        # the same request twice is done once
        ("Git status and git status.", [("git_status", "")]),
        # no clause acts on the project: the turn is one clause after all
        ("Thanks, that's all.", [("thanks", "")]),
        ("What's the difference between the sync and async clients?", [("needs_llm", "")]),
        # changing one's mind
        ("Run the tests. No, wait.", [("stop", "")]),
        ("Stop, open the readme.", [("open", "readme")]),
        # one clause is one intent, exactly as parse_utterance has it
        ("Run go test ./...", [("run_tests", "go")]),
    ],
)
def test_requests_in_one_turn(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(text) == expected


def test_refusal_keeps_its_reason() -> None:
    intents = parse_request("Open the readme and commit it.")
    assert [i.kind for i in intents] == ["open", "needs_llm"]
    assert intents[1].action == "Changing the git repository"


def test_intents_record_the_rule_that_parsed_them() -> None:
    assert [i.rule for i in parse_request("List src then open main dot py.")] == [
        "list_verb",
        "open",
    ]
    assert parse_utterance("List src.") == Intent(
        "list", target="src", want="dir"
    )  # rule: not compared
