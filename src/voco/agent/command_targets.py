"""The parts of a spoken request that name something: a file, a search term, a
command line, a commit count. Pure helpers for the rules in
:mod:`voco.agent.command_rules`.

A name is only normalised here ("utils slash io dot py" → ``utils/io.py``), never
checked: :mod:`voco.agent.name_lookup` matches it against real listings later.
"""

from __future__ import annotations

import re

from voco.agent.command_types import Want
from voco.agent.spoken_names import NUMBER_WORDS, has_extension, normalise_spoken_name, wordlist

# Words before a spoken name that are not part of it ("the file", "contents of").
_TARGET_LEAD = frozenset(
    wordlist(
        "the a an my our this that file files folder directory dir contents content of in "
        "inside under called named all me up"
    )
)
_FOLDER_WORDS = frozenset(wordlist("folder directory dir"))
# Names that are files though said without an extension.
_FILE_WORDS = frozenset(
    wordlist(
        "readme makefile dockerfile license licence changelog gitignore pyproject contributing"
    )
)
_TODO = {
    **dict.fromkeys(("to do", "to dos", "todos", "todo", "to-do", "to-dos", "to do's"), "TODO"),
    **dict.fromkeys(("fix me", "fixme", "fix-me"), "FIXME"),
}
# Ways of saying "the project root" where a folder name would go.
ROOT_NAMES = frozenset(
    (
        "project",
        "repo",
        "repository",
        "codebase",
        "here",
        "root",
        "workspace",
        "this",
        "current directory",
        "current folder",
        "top level",
        "root folder",
        "root directory",
    )
)


def target(raw: str) -> tuple[str, Want]:
    """ "the file utils slash io dot py" → ("utils/io.py", "file");
    "the guide in the docs folder" → ("docs/guide", "")."""
    m = re.match(r"^(?P<name>.+?) (?:in|inside|under) (?P<dir>.+)$", raw)
    if m:
        name, name_want = target(m.group("name"))
        folder, _ = target(m.group("dir"))
        if name and folder:
            return f"{folder}/{name}", name_want
    raw = re.sub(r"^(?:the )?(?:first (?:few )?lines|top|beginning|start) of ", "", raw)
    words = raw.split()
    want: Want = ""
    while words and words[0] in _TARGET_LEAD:
        w = words.pop(0)
        want = "dir" if w in _FOLDER_WORDS else ("file" if w == "file" else want)
    while words and words[-1] in {*_FOLDER_WORDS, "file", "please"}:
        w = words.pop()
        want = "file" if w == "file" else ("dir" if w != "please" else want)
    normalised = normalise_spoken_name(" ".join(words))
    if has_extension(normalised) and not want:
        want = "file"
    return normalised, want


def folder(raw: str) -> str:
    """A folder as said, with "the project" / "here" meaning the root ("")."""
    name, _ = target(raw)
    return "" if name.lower() in ROOT_NAMES else name


def looks_like_file(raw: str) -> bool:
    name, want = target(raw)
    return bool(want) or name.replace(" ", "") in _FILE_WORDS


def term(raw: str) -> str:
    """A search term as said: fillers and articles off, TODO spelled as in code."""
    words = raw.split()
    skip = {"the", "a", "an", "all", "any", "for", "word", "string", "text"}
    while words and words[0].lower() in skip:
        words.pop(0)
    said = " ".join(words).strip("'")
    said = re.sub(r"(?<=\w) (?:dot) (?=\w)", ".", said)  # "self dot path" → "self.path"
    said = re.sub(r"(?<=\w) underscore (?=\w)", "_", said)
    return _TODO.get(said.lower(), said)


def commit_count(s: str) -> int:
    """How many commits "the last three commits" asks for (1..20, default 5)."""
    m = re.search(r"\b(last|recent|latest|previous|past) (\w+) commits\b", s)
    if m:
        word = m.group(2)
        n = int(word) if word.isdigit() else NUMBER_WORDS.get(word, 5)
        return max(1, min(n, 20))
    return 1 if re.search(r"\b(last|latest|previous) commit\b", s) else 5


_RUNNER_WORDS: tuple[tuple[str, str], ...] = (
    (r"\bpy ?test\b|\bpython\b", "python"),
    (r"\bnpm\b|\bjest\b|\bvitest\b|\bjavascript\b|\bnode\b|\byarn\b", "node"),
    (r"\bcargo\b|\brust\b", "rust"),
    (r"\bgo test\b|\bgolang\b|\bgo tests\b", "go"),
    (r"\bmake\b", "make"),
)


def runner_said(s: str) -> str:
    """The test runner family a request names ("run the rust tests"), or ""."""
    return next((family for pat, family in _RUNNER_WORDS if re.search(pat, s)), "")


def spoken_command(s: str) -> str:
    """ "pytest dash dash verbose" → "pytest --verbose"; "ls src slash voco" → "ls src/voco"."""
    s = re.sub(r"\bdash dash\s+", "--", s)
    s = re.sub(r"\b(?:dash|hyphen|minus)\s+", "-", s)
    s = re.sub(r"\s*\b(?:dot)\b\s*", ".", s)
    s = re.sub(r"\s*\b(?:slash)\b\s*", "/", s)
    s = re.sub(r"\s*\bunderscore\b\s*", "_", s)
    s = re.sub(r"\bpython three\b", "python3", s)
    return " ".join(s.split())
