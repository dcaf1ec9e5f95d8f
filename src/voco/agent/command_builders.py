"""What a rule's match means: the builders of :mod:`voco.agent.command_rules`.

Each builder gets the clause and the rule's match and returns the
:class:`~voco.agent.command_types.Intent` it means, or ``None`` to decline (the
rule's guard: "make a file" is not a make target, "find the to-dos" is not a
file), in which case the next rule of the table is tried.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from voco.agent.command_targets import (
    commit_count,
    folder,
    looks_like_file,
    runner_said,
    spoken_command,
    target,
    term,
)
from voco.agent.command_types import Intent, IntentKind
from voco.agent.spoken_names import wordlist
from voco.agent.utterance import VERBS


@dataclass(frozen=True)
class Clause:
    """One clause as the rules see it: ``s`` lowercase, ``cased`` as recognised
    (same positions), so search terms keep the case code needs ("MyClass")."""

    s: str
    cased: str

    def said(self, m: re.Match[str], group: str = "t") -> str:
        return self.cased[m.start(group) : m.end(group)]


Build = Callable[[Clause, re.Match[str]], Intent | None]


def says(kind: IntentKind) -> Build:
    return lambda c, m: Intent(kind)


PROGRAMS = frozenset(
    wordlist(
        "ls pwd git make npm npx yarn pnpm pytest python python3 uv pip cargo go node ruff "
        "mypy tox cat echo tree du wc which docker just"
    )
)
# Programs a bare utterance may start with ("npm run build") and still mean "run it".
BARE_PROGRAMS = frozenset(wordlist("ls pwd pytest npm npx yarn pnpm cargo uv ruff mypy tox"))
READ_ONLY_GIT = frozenset(wordlist("show remote tag shortlog blame"))
_NOT_MAKE_TARGETS = frozenset(wordlist("a an the new it this that sure me sense"))
# A first word that makes a sentence a question about code, not a file name.
NOT_A_NAME = frozenset(
    wordlist(
        "explain why how what describe summarize summarise tell review analyze analyse "
        "document debug is does can should"
    )
)


def refuses(action: str) -> Build:
    return lambda c, m: Intent("needs_llm", action=action)


def run_tests(c: Clause, m: re.Match[str]) -> Intent:
    return Intent("run_tests", command=runner_said(c.s))


def make_target(c: Clause, m: re.Match[str]) -> Intent | None:
    if m.group("t") in _NOT_MAKE_TARGETS:
        return None  # "make a file" is a write
    return Intent("run_command", command=spoken_command(c.s))


def refused_verb(c: Clause, m: re.Match[str]) -> Intent | None:
    verb = VERBS.get(m.group("v"))
    return Intent("needs_llm", action=verb.offline) if verb and verb.offline else None


def git_log(c: Clause, m: re.Match[str]) -> Intent:
    return Intent("git_log", count=commit_count(c.s))


def run_program(c: Clause, m: re.Match[str]) -> Intent:
    cmd = spoken_command(m.group("cmd"))
    if cmd.split()[0] in PROGRAMS:
        return Intent("run_command", command=cmd)
    return Intent("needs_llm", action="Running that")


def program_if(programs: frozenset[str]) -> Build:
    def build(c: Clause, m: re.Match[str]) -> Intent | None:
        if m.group("p") not in programs:
            return None
        return Intent("run_command", command=spoken_command(c.s))

    return build


def define(c: Clause, m: re.Match[str]) -> Intent:
    return Intent("define", target=term(c.said(m)))


def usage(c: Clause, m: re.Match[str]) -> Intent:
    return Intent("search", target=term(c.said(m)))


def where_is(c: Clause, m: re.Match[str]) -> Intent:
    if looks_like_file(m.group("t")):
        name, want = target(m.group("t"))
        return Intent("locate", target=name, want=want)
    return Intent("define", target=term(c.said(m)))  # "where is RouterPolicy"


def find_file(c: Clause, m: re.Match[str]) -> Intent | None:
    if not looks_like_file(m.group("t")):
        return None  # "find the to-dos" is a search
    name, want = target(m.group("t"))
    return Intent("locate", target=name, want=want)


def search(c: Clause, m: re.Match[str]) -> Intent:
    scope = folder(m.group("scope") or "") if m.group("scope") else ""
    return Intent("search", target=term(c.said(m)), scope=scope)


def listing(c: Clause, m: re.Match[str]) -> Intent:
    return Intent("list", target=folder(m.group("t") or ""), want="dir")


def open_target(c: Clause, m: re.Match[str]) -> Intent | None:
    name, want = target(m.group("t"))
    return Intent("open", target=name, want=want) if name else None


def bare_name(c: Clause, m: re.Match[str]) -> Intent | None:
    name, want = target(c.s)
    words = c.s.split()
    if want != "file" or len(words) > 6 or words[0] in NOT_A_NAME:
        return None
    return Intent("open", target=name, want=want)  # just a file name: "main dot py"
