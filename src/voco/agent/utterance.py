"""The words of a spoken request that the model router and the command mode share.

Both read a transcript the way a recogniser writes it ("Okay, can you please
open the readme and run the tests?"): the same fillers carry no meaning, the
same leading verbs say what a clause wants, and a request is cut into clauses at
the same places. Keeping that vocabulary here, once, means the router's guess
("this needs a write") and the command mode's answer ("editing code needs a
language model") cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ToolKind = Literal["read", "list", "search", "command", "write"]


def phrases(text: str) -> tuple[str, ...]:
    """ "a, b c, d" → ("a", "b c", "d"): long vocabularies stay readable."""
    return tuple(p.strip() for p in text.split(",") if p.strip())


# Words a request may start with that carry no meaning ("Can you please open ..."
# is the same request as "open ..."). Longest first, so "i want you to" is tried
# before "i want to".
LEADING_FILLERS: tuple[str, ...] = tuple(
    sorted(
        set(
            phrases(
                "hey voco, voco, okay, ok, alright, all right, um, uh, so, now, also, then, "
                "please, can you, could you, would you, will you, can i, could i, i want to, "
                "i'd like to, i would like to, i want you to, i'd like you to, i need you to, "
                "i need to, let's, let me, go ahead and, just, quickly, and"
            )
        ),
        key=lambda f: (-len(f), f),
    )
)
TRAILING_FILLERS: tuple[str, ...] = phrases(
    "please, for me, now, thanks, thank you, real quick, again"
)


@dataclass(frozen=True)
class Verb:
    """What a clause's first word means: the tool it needs (for the router) and,
    when the command mode cannot do it, what to call it in the honest refusal."""

    kind: ToolKind
    offline: str = ""  # "" = the command mode's rules handle it


def _verbs(text: str, kind: ToolKind, offline: str = "") -> dict[str, Verb]:
    return dict.fromkeys(phrases(text), Verb(kind, offline))


_CREATE = "Creating or writing files"
_BUILD = "Installing, building or deploying"
VERBS: dict[str, Verb] = {
    **_verbs("open, read, show, display, view, cat, print, see", "read"),
    **_verbs("list, ls", "list"),
    **_verbs("search, find, grep, locate, look", "search"),
    **_verbs("run, execute, test, lint, check, git", "command"),
    # "make test" runs a target; "make a file" is a write the rules send here
    **_verbs("make", "command", _CREATE),
    **_verbs("install, uninstall, deploy, build, compile", "command", _BUILD),
    **_verbs(
        "create, write, add, generate, insert, append, save, copy, paste, new", "write", _CREATE
    ),
    **_verbs("delete, remove, rm, erase", "write", "Deleting files"),
    **_verbs("rename, move, mv", "write", "Renaming or moving files"),
    **_verbs(
        "edit, change, modify, update, fix, replace, refactor, implement, rewrite, format, "
        "revert, undo, reset, comment, uncomment, bump",
        "write",
        "Editing code",
    ),
    **_verbs(
        "commit, push, pull, merge, rebase, stash, checkout", "write", "Changing the git repository"
    ),
}

# Where one request becomes several: sentence ends, commas, "and", "then".
_CLAUSE_SPLIT = re.compile(
    r"\s*(?:[.;!?]+\s+|,\s*|\band then\b|\bthen\b|\band\b)\s*", re.IGNORECASE
)


def split_clauses(text: str) -> list[str]:
    """ "Open the readme and run the tests." → ["Open the readme", "run the tests."]."""
    return [c for c in _CLAUSE_SPLIT.split(text) if c.strip()]


def clean_utterance(text: str, *, lower: bool = True) -> str:
    """Words without sentence punctuation; dots inside names ("main.py") survive."""
    s = text.lower() if lower else text
    s = s.replace("\u2019", "'").replace("\u2018", "'")
    s = re.sub(r"[\"“”`,!?;:()]", " ", s)
    s = re.sub(r"\.(?=\s|$)", " ", s)
    s = re.sub(r"(?<=\s)'|'(?=\s|$)", " ", s)
    return " ".join(s.split())


def filler_span(s: str, *, trailing: bool = True) -> tuple[int, int]:
    """The span of ``s`` (cleaned, lowercase) left once fillers are removed."""
    start, end = 0, len(s)
    changed = True
    while changed:
        changed = False
        for f in LEADING_FILLERS:
            rest = s[start:end]
            if rest == f or rest.startswith(f + " "):
                start, changed = min(end, start + len(f) + 1), True
        for f in TRAILING_FILLERS if trailing else ():
            if s[start:end].endswith(" " + f):
                end, changed = end - len(f) - 1, True
    return start, end


def strip_leading_fillers(s: str) -> str:
    start, end = filler_span(s, trailing=False)
    return s[start:end]
