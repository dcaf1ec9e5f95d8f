"""Command policy attacks from issue 12 (pure classification; the runs are in test_policy_runs)."""

from __future__ import annotations

import pytest

from voco.local.sandbox import classify_argv, classify_command

pytestmark = pytest.mark.timeout(10)

# ------------------------------------------------------------------ Medium 2: globs

GLOB_RISKY = [
    ("rg PWNED *", "glob '*'"),
    ("rg PWNED *.py", "glob '*.py'"),
    ("sort *", "glob '*'"),
    ("sort -k *", "glob '*'"),  # a glob as an option's value spills extra words
    ("grep -rn x [a-z]*", "glob '[a-z]*'"),
    ("git diff *", "glob '*'"),
    ("git log -p ?x", "glob '?x'"),
    ("git * log", "glob '*'"),
    ("uniq *", "glob '*'"),  # two matches: uniq IN OUT writes OUT
    ("uniq -- *", "glob '*'"),
    ("find *", "glob '*'"),
    ("find -- *", "glob '*'"),
    ("find . -name *.py", "glob '*.py'"),
    ("file *", "glob '*'"),
    ('tree ""*', "glob '*'"),
    ("rg x -*", "glob '-*'"),
    ("rg x --p*", "glob '--p*'"),
    ("sort '-'*", "glob '-*'"),
    ('sort "--"co*', "glob '--co*'"),
]


@pytest.mark.parametrize(("command", "why"), GLOB_RISKY)
def test_glob_that_can_expand_to_an_option_is_risky(command: str, why: str) -> None:
    a = classify_command(command)
    assert a.risky and any(why in r for r in a.reasons), a.reasons


GLOB_SAFE = [
    "rg PWNED ./*",
    "rg PWNED -- *",
    "rg PWNED src/*.py",
    "sort -- *.txt",
    "git diff -- *",
    "git status *",
    "cat *",
    "ls *",
    "head -n 3 *.md",
    "grep -rn x -- *",
    "rg 'a*' src",  # a quoted glob is a pattern, not a glob
    "rg \\*x src",
    "find . -name '*.py'",
    "echo *",
    "cat -- -*",
    "rg x src/-*",
]


@pytest.mark.parametrize("command", GLOB_SAFE)
def test_globs_that_cannot_become_options_stay_safe(command: str) -> None:
    a = classify_command(command)
    assert not a.risky, a.reasons


def test_argv_words_are_never_globs() -> None:
    assert not classify_argv(["rg", "PWNED", "*"]).risky


# ------------------------------------------------------------------ Low 9: option spellings

ABBREV_RISKY = [
    ("sort --o=out a", "`sort --output`"),
    ("sort --ou=out a", "`sort --output`"),
    ("sort --o out a", "`sort --output`"),
    ("sort --c=sh a", "`sort --compress-program`"),
    ("sort --comp=sh a", "`sort --compress-program`"),
    ("rg --pr=sh x", "`rg --pre"),
    ("git --exec=/x log", "`git --exec-path`"),
    ("git log --out=x", "`git --output`"),
    ("git log --ext", "`--ext-diff`"),
    ("git diff --textc", "`--textconv`"),
    ("grep --fil /etc/shadow x", "abbreviates an option that takes a value"),
    ("wc --files=x", "reads the list of files"),
]


@pytest.mark.parametrize(("command", "why"), ABBREV_RISKY)
def test_any_prefix_of_a_dangerous_long_option_is_risky(command: str, why: str) -> None:
    a = classify_command(command)
    assert a.risky and any(why in r for r in a.reasons), a.reasons


def test_optional_argument_options_do_not_swallow_the_next_word() -> None:
    a = classify_command("git log --abbrev --output=X")
    assert a.risky and any("writes to a file" in r for r in a.reasons), a.reasons
    a = classify_command("git log --pretty --output=X")
    assert a.risky and any("writes to a file" in r for r in a.reasons), a.reasons
    a = classify_command("git diff -U --output=X")
    assert a.risky and any("writes to a file" in r for r in a.reasons), a.reasons
    a = classify_command("git blame --abbrev /etc/shadow")
    assert "/etc/shadow" in a.paths
    a = classify_command("diff --unified /etc/shadow a")
    assert "/etc/shadow" in a.paths and "a" in a.paths
    a = classify_command("diff --unif /etc/shadow a")
    assert "/etc/shadow" in a.paths


def test_optional_short_and_status_options_do_not_swallow() -> None:
    assert "/etc/shadow" in classify_command("od -w /etc/shadow").paths
    assert "/etc/x" in classify_command("git status -u /etc/x").paths
    assert "/etc/x" in classify_command("git status --column /etc/x").paths


def test_an_exact_option_wins_over_an_abbreviation() -> None:
    assert not classify_command("git diff --text").risky  # -a, not --textconv


def test_attached_values_still_work() -> None:
    assert not classify_command("git log --abbrev=7 --pretty=oneline -U3 -n 5").risky
    assert not classify_command("diff --unified=5 a b").risky
    assert classify_command("diff -U 5 a b").paths == ("a", "b")
    assert not classify_command("grep --max-count=3 x f").risky
