"""The rule table (``voco.agent.command_rules``): every rule owns its examples.

The table is ordered, so a rule can shadow a later one. The guard against that
is here: each rule's example phrasings must be parsed *by that rule*, which
fails both when a new rule takes an earlier rule's phrasings and when a new rule
never fires because an earlier one takes its own.
"""

from __future__ import annotations

import re

import pytest

from voco.agent.command_intents import parse_utterance
from voco.agent.command_rules import RULES, Rule
from voco.agent.command_types import Intent


def shadowed(rules: tuple[Rule, ...]) -> list[tuple[str, str, str]]:
    """(rule, example, the rule that parsed it instead) for every misattributed example."""
    return [
        (rule.name, example, winner)
        for rule in rules
        for example in rule.examples
        if (winner := parse_utterance(example, rules).rule) != rule.name
    ]


def test_no_rule_is_shadowed() -> None:
    assert shadowed(RULES) == []


def test_rules_are_named_once_and_show_what_they_are_for() -> None:
    names = [r.name for r in RULES]
    assert len(set(names)) == len(names)
    assert all(len(r.examples) >= 2 for r in RULES), [r.name for r in RULES if len(r.examples) < 2]


def _at(rules: tuple[Rule, ...], name: str) -> int:
    return next(i for i, r in enumerate(rules) if r.name == name)


def test_a_rule_that_shadows_a_later_one_is_caught() -> None:
    greedy = Rule(
        "greedy_open",
        re.compile(r"^open (?P<t>.+)$"),
        lambda c, m: Intent("open", target=m.group("t")),
        ("Open sesame.", "Open the pod bay doors."),
    )
    i = _at(RULES, "named_folder")
    table = (*RULES[:i], greedy, *RULES[i:])
    found = shadowed(table)
    assert ("named_folder", "Open the docs folder.", "greedy_open") in found
    assert all(winner == "greedy_open" for _, _, winner in found)


def test_a_rule_that_never_fires_is_caught() -> None:
    late = Rule(
        "late_help",
        re.compile(r"^help( me)?$"),
        lambda c, m: Intent("help"),
        ("Help.", "Help me."),
    )
    assert shadowed((*RULES, late)) == [
        ("late_help", "Help.", "help"),
        ("late_help", "Help me.", "help"),
    ]


def test_a_guard_passes_the_clause_on() -> None:
    # make_target declines "make a file" (a write), so the next rule decides
    assert parse_utterance("Make lint.").kind == "run_command"
    assert parse_utterance("Make a new file.").rule == "refused_verb"
    # find_file declines what is not a file name, search takes it
    assert parse_utterance("Find the to-dos.").rule == "search"
    # open declines an empty target; nothing else fits, so the model is needed
    assert parse_utterance("Open.").kind == "needs_llm"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("What changed?", "git_diff"),
        ("What changed since the last commit?", "git_changes"),
        ("What was the last commit?", "git_log"),
        ("Show the last commits.", "git_log"),
    ],
)
def test_order_resolves_the_git_overlaps(text: str, rule: str) -> None:
    assert parse_utterance(text).rule == rule


def test_unmatched_is_needs_llm_without_a_rule() -> None:
    intent = parse_utterance("Why is the build failing?")
    assert intent.kind == "needs_llm" and intent.rule == "no rule"
