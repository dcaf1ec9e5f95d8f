"""The shared request vocabulary (``voco.agent.utterance``): one splitter, one
filler list, one verb table, read the same way by the router and the command mode."""

from __future__ import annotations

import pytest

from voco.agent.command_intents import parse_utterance
from voco.agent.router import extract_features, route_messages
from voco.agent.utterance import VERBS, clean_utterance, filler_span, split_clauses
from voco.providers.base import ChatMessage


@pytest.mark.parametrize(
    ("text", "clauses"),
    [
        ("Open the readme and run the tests.", ["Open the readme", "run the tests."]),
        ("List src then open main dot py.", ["List src", "open main dot py."]),
        ("Git status. Then the log", ["Git status", "the log"]),
        ("Okay, open README.md.", ["Okay", "open README.md."]),
        ("Run go test ./...", ["Run go test ./..."]),
        ("Open the readme AND run the tests", ["Open the readme", "run the tests"]),
        ("", []),
    ],
)
def test_split_clauses(text: str, clauses: list[str]) -> None:
    assert split_clauses(text) == clauses


def test_fillers_come_off_both_ends() -> None:
    s = clean_utterance("Okay, so could you please open the readme for me, thanks?")
    start, end = filler_span(s)
    assert s[start:end] == "open the readme"
    start, end = filler_span(s, trailing=False)
    assert s[start:end] == "open the readme for me thanks"
    assert clean_utterance("Open main.py.") == "open main.py"


@pytest.mark.parametrize("verb", sorted(w for w, v in VERBS.items() if v.offline))
def test_a_refused_verb_is_refused_by_name_and_routed_by_kind(verb: str) -> None:
    """Both readers of the table agree: the command mode names what it cannot do,
    the router counts the same word as the tool kind the table gives it."""
    text = f"{verb} the parser"
    intent = parse_utterance(text)
    assert intent.kind == "needs_llm" and intent.action == VERBS[verb].offline
    features = extract_features([ChatMessage("user", text)], True)
    assert features.tool_kinds == {VERBS[verb].kind}
    if VERBS[verb].kind == "write":
        assert route_messages([ChatMessage("user", text)], True).tier == "sonnet"


def test_router_counts_each_clause_the_command_mode_runs() -> None:
    text = "Open the readme and run the tests, then list src."
    features = extract_features([ChatMessage("user", text)], True)
    assert features.tool_steps == len(split_clauses(text)) == 3
