"""Spoken names → real paths, by walking real directory listings.

A spoken name is only a guess ("the config", "router dot py", "utils slash io"),
so the command mode resolves it against what ``list_dir`` really returns: a
breadth-first walk from the project root, one whole level per step (the engine
runs a step's calls concurrently), source folders before tests and docs, at most
a few levels and listings, stopping at the first strong match and asking when two
names are equally good. Like the planner, it is a pure function of the steps
already taken in the turn: it returns either the listings it still needs or its
answer.

Failures come back as data (:class:`~voco.agent.command_types.NotFound`,
``Ambiguous``, ``ToolFailed``); :mod:`voco.agent.summaries` says them.
"""

from __future__ import annotations

from dataclasses import dataclass

from voco.agent.command_types import (
    Ambiguous,
    Call,
    Lookup,
    NotFound,
    Resolved,
    Step,
    ToolFailed,
    Want,
    calls_or_one,
    entries_of,
    is_ok,
    join_path,
    listings,
)
from voco.agent.spoken_names import (
    ACCEPT_MATCH,
    AMBIGUITY_MARGIN,
    STRONG_MATCH,
    Entry,
    rank_entries,
    split_components,
    wordlist,
)
from voco.common.project_layout import WALK_SKIP_DIRS

MAX_LISTINGS = 10  # list_dir calls spent looking for one spoken name
MAX_DEPTH = 3  # so a name lookup takes at most 4 rounds (one per level)
# Within one depth, look where code usually lives first and in side folders last.
_SOURCE_DIRS = frozenset(wordlist("src lib app pkg packages source internal cmd"))
_SIDE_DIRS = frozenset(wordlist("tests test docs doc examples scripts fixtures benchmarks"))


# ---------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class _Candidate:
    score: float
    depth: int
    path: str
    is_dir: bool


def _choose(spoken: str, candidates: list[_Candidate]) -> Resolved | NotFound | Ambiguous:
    candidates.sort(key=lambda c: (-c.score, c.depth, c.path))
    if not candidates or candidates[0].score < ACCEPT_MATCH:
        closest = tuple(dict.fromkeys(c.path for c in candidates[:3] if c.score >= 0.5))
        return NotFound(spoken, closest)
    best = candidates[0]
    rivals = [
        c
        for c in candidates[1:]
        if c.depth == best.depth and c.score >= best.score - AMBIGUITY_MARGIN and best.score < 1
    ]
    if rivals:
        return Ambiguous(tuple(c.path for c in [best, *rivals[:2]]))
    return Resolved(best.path, best.is_dir)


def _dir_priority(name: str) -> tuple[int, str]:
    return (0 if name in _SOURCE_DIRS else 2 if name in _SIDE_DIRS else 1, name)


def _search_tree(spoken: str, want: Want, base: str, steps: list[Step]) -> Lookup:
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
                    return ToolFailed("list_dir", {"path": directory}, result)
                continue
            entries = [Entry(name, is_dir) for name, is_dir in entries_of(result)]
            for m in rank_entries(spoken, entries, want):
                path = join_path(directory, m.entry.name)
                candidates.append(_Candidate(m.score, depth, path, m.entry.is_dir))
            next_level.extend(
                join_path(directory, e.name)
                for e in entries
                if e.is_dir and e.name not in WALK_SKIP_DIRS and not e.name.startswith(".")
            )
        if any(c.score >= STRONG_MATCH for c in candidates) or not next_level:
            break
        level = sorted(next_level, key=lambda p: _dir_priority(p.rsplit("/", 1)[-1]))
    return _choose(spoken, candidates)


def resolve(spoken: str, want: Want, steps: list[Step], base: str = ".") -> Lookup:
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
            return ToolFailed("list_dir", {"path": found.path}, result)
        entries = [Entry(name, is_dir) for name, is_dir in entries_of(result)]
        last_want: Want = want if i == len(components) else "dir"
        candidates = [
            _Candidate(m.score, 0, join_path(found.path, m.entry.name), m.entry.is_dir)
            for m in rank_entries(component, entries, last_want)
        ]
        found = _choose(component, candidates)
    return found
