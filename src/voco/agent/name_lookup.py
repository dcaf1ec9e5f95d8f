"""Spoken names → real paths, by walking real directory listings.

A spoken name is only a guess ("the config", "router dot py", "utils slash io"),
so the command mode resolves it against what ``list_dir`` really returns: a
breadth-first walk from the project root, one whole level per step (the engine
runs a step's calls concurrently), source folders before tests and docs, at most
a few levels and listings, stopping at the first strong match and asking when two
names are equally good. Like the planner, it is a pure function of the steps
already taken in the turn: it returns either the listings it still needs or its
answer.

Also home to the planner's small vocabulary (:class:`Step`, :class:`Call`,
:class:`Calls`, :class:`Reply`) so both modules share it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voco.agent.command_intents import Want
from voco.agent.spoken_names import (
    ACCEPT_MATCH,
    AMBIGUITY_MARGIN,
    STRONG_MATCH,
    Entry,
    rank_entries,
    speak_name,
    speak_path,
    split_components,
    wordlist,
)
from voco.agent.summaries import entries_of, error_text, join_words

MAX_LISTINGS = 10  # list_dir calls spent looking for one spoken name
MAX_DEPTH = 3  # so a name lookup takes at most 4 rounds (one per level)
SKIP_DIRS = frozenset(
    wordlist("node_modules __pycache__ venv env target dist build coverage site-packages")
)
# Within one depth, look where code usually lives first and in side folders last.
_SOURCE_DIRS = frozenset(wordlist("src lib app pkg packages source internal cmd"))
_SIDE_DIRS = frozenset(wordlist("tests test docs doc examples scripts fixtures benchmarks"))


@dataclass(frozen=True)
class Step:
    """A tool call already made in this turn, with its parsed result."""

    name: str
    arguments: dict[str, Any]
    result: dict[str, Any]


@dataclass(frozen=True)
class Call:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    text: str


@dataclass(frozen=True)
class Calls:
    """Independent calls made in one step (the engine runs them concurrently)."""

    calls: tuple[Call, ...]


Decision = Call | Calls | Reply


@dataclass(frozen=True)
class Resolved:
    path: str
    is_dir: bool


# ---------------------------------------------------------------------------- helpers


def join_path(parent: str, name: str) -> str:
    return name if parent in ("", ".") else f"{parent}/{name}"


def is_ok(result: dict[str, Any]) -> bool:
    return result.get("status") == "success"


def find_step(steps: list[Step], name: str, arguments: dict[str, Any]) -> Step | None:
    for step in reversed(steps):
        if step.name == name and step.arguments == arguments:
            return step
    return None


def listings(steps: list[Step]) -> dict[str, dict[str, Any]]:
    """Every directory listed in this turn, by path."""
    return {str(s.arguments.get("path", ".")): s.result for s in steps if s.name == "list_dir"}


# ---------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class _Candidate:
    score: float
    depth: int
    path: str
    is_dir: bool


def _choose(spoken: str, candidates: list[_Candidate]) -> Resolved | Reply:
    candidates.sort(key=lambda c: (-c.score, c.depth, c.path))
    said = speak_name(spoken)
    if not candidates or candidates[0].score < ACCEPT_MATCH:
        closest = list(dict.fromkeys(speak_path(c.path) for c in candidates[:3] if c.score >= 0.5))
        text = f"I couldn't find anything called {said}."
        if closest:
            text += f" The closest {'is' if len(closest) == 1 else 'are'} {join_words(closest)}."
        return Reply(text)
    best = candidates[0]
    rivals = [
        c
        for c in candidates[1:]
        if c.depth == best.depth and c.score >= best.score - AMBIGUITY_MARGIN and best.score < 1
    ]
    if rivals:
        options = [speak_path(c.path) for c in [best, *rivals[:2]]]
        return Reply(f"Did you mean {', '.join(options[:-1])} or {options[-1]}?")
    return Resolved(best.path, best.is_dir)


def _dir_priority(name: str) -> tuple[int, str]:
    return (0 if name in _SOURCE_DIRS else 2 if name in _SIDE_DIRS else 1, name)


def calls_or_one(calls: list[Call]) -> Decision:
    return calls[0] if len(calls) == 1 else Calls(tuple(calls))


def _search_tree(spoken: str, want: Want, base: str, steps: list[Step]) -> Decision | Resolved:
    """Breadth-first over real listings from ``base``, one whole level per step,
    until a strong match (or the depth or listing budget runs out)."""
    seen = listings(steps)
    candidates: list[_Candidate] = []
    level = [base]
    for depth in range(MAX_DEPTH + 1):
        missing = [d for d in level if d not in seen]
        room = MAX_LISTINGS - len(seen)
        if missing and room > 0:
            return calls_or_one([Call("list_dir", {"path": d}) for d in missing[:room]])
        next_level: list[str] = []
        for directory in level:
            result = seen.get(directory)
            if result is None:
                continue  # over the listing budget
            if not is_ok(result):
                if directory == base:
                    return Reply(error_text("list_dir", {"path": directory}, result))
                continue
            entries = [Entry(name, is_dir) for name, is_dir in entries_of(result)]
            for m in rank_entries(spoken, entries, want):
                path = join_path(directory, m.entry.name)
                candidates.append(_Candidate(m.score, depth, path, m.entry.is_dir))
            next_level.extend(
                join_path(directory, e.name)
                for e in entries
                if e.is_dir and e.name not in SKIP_DIRS and not e.name.startswith(".")
            )
        if any(c.score >= STRONG_MATCH for c in candidates) or not next_level:
            break
        level = sorted(next_level, key=lambda p: _dir_priority(p.rsplit("/", 1)[-1]))
    return _choose(spoken, candidates)


def resolve(spoken: str, want: Want, steps: list[Step], base: str = ".") -> Decision | Resolved:
    """A normalised spoken path → a real one, or the ``list_dir`` needed to get there.

    The first component is searched for anywhere (breadth-first), the following
    ones inside the folder found: "utils slash io dot py" works whether ``utils``
    is at the root or under ``src``.
    """
    components = split_components(spoken)
    if not components:
        return Resolved(base, True)
    found = _search_tree(components[0], "dir" if len(components) > 1 else want, base, steps)
    for i, component in enumerate(components[1:], start=2):
        if not isinstance(found, Resolved):
            return found
        result = listings(steps).get(found.path)
        if result is None:
            return Call("list_dir", {"path": found.path})
        if not is_ok(result):
            return Reply(error_text("list_dir", {"path": found.path}, result))
        entries = [Entry(name, is_dir) for name, is_dir in entries_of(result)]
        last_want: Want = want if i == len(components) else "dir"
        candidates = [
            _Candidate(m.score, 0, join_path(found.path, m.entry.name), m.entry.is_dir)
            for m in rank_entries(component, entries, last_want)
        ]
        found = _choose(component, candidates)
    return found
