"""Held-out phrasings for the offline command mode's parser.

HELD OUT: these phrasings were written down (and committed) *before* the rule
table was tuned, and they were not used to tune it. Do not add rules or words to
make one of ``HELD_OUT`` pass; add the phrasing to the examples of a rule in
``voco.agent.command_rules`` (the tuning set) instead and write a new held-out
phrasing here. So the overall score is a measure, asserted only as a floor,
while ``NEGATIVE`` (the mis-parses issue 13 reported) must each parse right.

Record: the first run scored 35/42 (83%). One miss, "Open the readme, and
explain what it does.", showed that a clause continuing the one before it
(:func:`~voco.agent.command_intents.parse_request`) was not limited to bare
names as documented; that was fixed, the phrasing moved to the tuning tests
(``test_command_intents.py``) and replaced here by a new one. The other misses
are left as they are: they are the measure.
"""

from __future__ import annotations

import pytest

from voco.agent.command_intents import Intent, parse_request

Shape = list[tuple[str, str]]

# What the accuracy over HELD_OUT may not fall below (fixed before the first run).
FLOOR = 0.8


def shape(intents: tuple[Intent, ...]) -> Shape:
    """Each intent as (kind, the one field that says what it is about)."""
    out: Shape = []
    for i in intents:
        if i.kind == "search":
            key = f"{i.target} in {i.scope}" if i.scope else i.target
        elif i.kind in ("run_command", "run_tests"):
            key = i.command
        elif i.kind == "git_log":
            key = str(i.count)
        elif i.kind in ("open", "list", "locate", "define"):
            key = i.target
        else:
            key = ""
        out.append((i.kind, key))
    return out


HELD_OUT: list[tuple[str, Shape]] = [
    ("Could you show me the contents of pyproject dot toml?", [("open", "pyproject.toml")]),
    ("Pull up the change log.", [("open", "changelog")]),
    ("List everything in the docs directory.", [("list", "docs")]),
    ("Read the makefile, then run the tests.", [("open", "makefile"), ("run_tests", "")]),
    ("Check git status and show me the branch.", [("git_status", ""), ("git_branch", "")]),
    ("What's changed since my last commit?", [("git_changes", "")]),
    ("Show me what changed since the previous commit.", [("git_changes", "")]),
    ("Execute the test suite.", [("run_tests", "")]),
    ("Do the tests pass?", [("run_tests", "")]),
    ("Where's the dockerfile?", [("locate", "dockerfile")]),
    ("Find where route model is called.", [("search", "route model")]),
    ("Look for fix me in the source folder.", [("search", "FIXME in source")]),
    ("What's inside the scripts folder?", [("list", "scripts")]),
    ("Show me the last two commits.", [("git_log", "2")]),
    ("Which branch are we on?", [("git_branch", "")]),
    ("Is the working tree clean?", [("git_status", "")]),
    ("Hi there!", [("greeting", "")]),
    ("Thanks a lot.", [("thanks", "")]),
    ("Hold on.", [("stop", "")]),
    ("How do I use this?", [("help", "")]),
    ("What are we working on?", [("where_am_i", "")]),
    (
        "Open the license and then list the tests folder.",
        [("open", "license"), ("list", "tests")],
    ),
    (
        "List the source folder, then read config dot py.",
        [("list", "source"), ("open", "config.py")],
    ),
    ("Run npm run build.", [("run_command", "npm run build")]),
    ("Run git log.", [("git_log", "5")]),
    ("Write a new test for the parser.", [("needs_llm", "")]),
    ("Explain the router to me.", [("needs_llm", "")]),
    ("Rename main dot py to app dot py.", [("needs_llm", "")]),
    ("Read the changelog and summarize it.", [("open", "changelog"), ("needs_llm", "")]),
    ("Show me the diff and then the status.", [("git_diff", ""), ("git_status", "")]),
    ("Go to the utils folder.", [("open", "utils")]),
    ("Search the code for parse config.", [("search", "parse config")]),
    ("Run the tests in the tests folder.", [("run_tests", "")]),
    ("What files are in the src folder?", [("list", "src")]),
    ("Cat setup dot py.", [("open", "setup.py")]),
    ("Find the readme.", [("locate", "readme")]),
    ("okay so what branch is this", [("git_branch", "")]),
    ("Can you run cargo test for me?", [("run_tests", "rust")]),
    (
        "List src and open main dot py and run the tests.",
        [("list", "src"), ("open", "main.py"), ("run_tests", "")],
    ),
    ("Show me the last commit message.", [("git_log", "1")]),
    ("Thanks, that's all.", [("thanks", "")]),
    ("What's the difference between the sync and async clients?", [("needs_llm", "")]),
]

# The mis-parses issue 13 reported; each must parse right (not a score).
NEGATIVE: list[tuple[str, Shape, Shape]] = [
    # (text, what it must be, what it used to be)
    (
        "Open the readme and run the tests.",
        [("open", "readme"), ("run_tests", "")],
        [("run_tests", "")],
    ),
    (
        "List src then open main dot py.",
        [("list", "src"), ("open", "main.py")],
        [("list", "src then open main.py")],
    ),
    ("What changed since the last commit?", [("git_changes", "")], [("git_log", "1")]),
]


def test_held_out_accuracy_floor() -> None:
    misses = [(text, got) for text, want in HELD_OUT if (got := shape(parse_request(text))) != want]
    accuracy = 1 - len(misses) / len(HELD_OUT)
    assert accuracy >= FLOOR, f"{accuracy:.0%} < {FLOOR:.0%}; misses: {misses}"


@pytest.mark.parametrize(("text", "want", "old"), NEGATIVE)
def test_reported_misparses(text: str, want: Shape, old: Shape) -> None:
    got = shape(parse_request(text))
    assert got != old
    assert got == want
