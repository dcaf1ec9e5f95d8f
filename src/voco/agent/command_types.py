"""The command mode's vocabulary: what a request means (:class:`Intent`) and what
the planner decides (:data:`Decision`), as plain frozen data.

Every module of the command mode speaks these types and nothing else of each
other's, so the parser, the name lookup, the planner and the spoken summaries
stay independent: the lookup reports *what* went wrong (:class:`NotFound`,
:class:`Ambiguous`, :class:`ToolFailed`) and only the summaries decide how that
is said.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

IntentKind = Literal[
    "empty",
    "stop",
    "greeting",
    "thanks",
    "ack",  # "okay", "got it"
    "help",
    "open",  # read a file, or list it if it turns out to be a folder
    "list",
    "locate",  # where is a file
    "search",
    "define",  # where is a symbol defined
    "run_tests",
    "run_command",
    "git_status",
    "git_diff",
    "git_changes",  # what changed since the last commit: diff stat and files
    "git_log",
    "git_branch",
    "where_am_i",
    "needs_llm",
]
Want = Literal["", "file", "dir"]

# Intents that act on the project (the rest are answered with words alone).
ACTIONS: frozenset[str] = frozenset(
    {
        "open",
        "list",
        "locate",
        "search",
        "define",
        "run_tests",
        "run_command",
        "git_status",
        "git_diff",
        "git_changes",
        "git_log",
        "git_branch",
        "where_am_i",
    }
)


@dataclass(frozen=True)
class Intent:
    kind: IntentKind
    target: str = ""  # normalised spoken name ("utils/io.py") or search term
    want: Want = ""  # what kind of entry the target names, when the user said so
    scope: str = ""  # normalised folder a search is limited to
    command: str = ""  # run_command; test runner family for run_tests
    count: int = 0  # git log length
    action: str = ""  # needs_llm: what was asked, as a sentence subject
    rule: str = field(default="", compare=False)  # the parsing rule that matched (for logs)


# ---------------------------------------------------------------------------- planning


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
class Calls:
    """Independent calls made in one step (the engine runs them concurrently)."""

    calls: tuple[Call, ...]


@dataclass(frozen=True)
class Reply:
    text: str


@dataclass(frozen=True)
class Progress:
    """Say what the earlier requests of the turn found, then make the next calls."""

    say: str
    then: Call | Calls


Decision = Call | Calls | Reply | Progress


@dataclass(frozen=True)
class Resolved:
    path: str
    is_dir: bool


@dataclass(frozen=True)
class NotFound:
    spoken: str  # the normalised name that was looked for
    closest: tuple[str, ...] = ()  # real paths that came near


@dataclass(frozen=True)
class Ambiguous:
    options: tuple[str, ...]  # real paths, best first


@dataclass(frozen=True)
class ToolFailed:
    """A tool the lookup needed did not succeed; the result says why."""

    tool: str
    arguments: dict[str, Any]
    result: dict[str, Any]


LookupFailure = NotFound | Ambiguous | ToolFailed
Lookup = Resolved | Call | Calls | LookupFailure


# ---------------------------------------------------------------------------- steps


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


def entries_of(result: dict[str, Any]) -> list[tuple[str, bool]]:
    """(name, is_dir) pairs from a list_dir result, in the order given."""
    out = []
    for e in (result.get("result") or {}).get("entries") or []:
        if isinstance(e, dict) and e.get("name"):
            out.append((str(e["name"]), str(e.get("kind", "")).lower() in ("dir", "directory")))
    return out


def calls_or_one(calls: list[Call]) -> Call | Calls:
    return calls[0] if len(calls) == 1 else Calls(tuple(calls))
