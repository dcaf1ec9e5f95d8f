"""Tool results → short spoken sentences, for the offline command mode.

Everything here becomes speech, so the rules are the ear's: no markdown, names
said as words ("README dot md"), counts instead of lists ("12 entries; the first
ones are ..."), at most a few clauses (~40 words), and an honest sentence for
every failure code of the protocol (§5) plus the engine-side ones
(``runtime_disconnected``, a ``timeout`` waiting for the runtime).
"""

from __future__ import annotations

import re
from typing import Any

from voco.agent.command_types import (
    Ambiguous,
    LookupFailure,
    NotFound,
    ToolFailed,
    entries_of,
)
from voco.agent.spoken_names import speak_identifier, speak_name, speak_path, wordlist
from voco.common.project_layout import NOT_CONTENT_DIRS, project_language

LLM_SETUP = (
    "Set ANTHROPIC_API_KEY and run voco serve --llm anthropic, or use --llm openai with "
    "VOCO_OPENAI_BASE_URL for a local Ollama or vLLM server."
)
HELP_TEXT = (
    "In command mode I can open a file, list a folder, search the code, run the tests, "
    "and check git status, changes, commits or the branch. Try: open the readme, or run "
    "the tests."
)
GREETING_TEXT = (
    "Hi! I'm in command mode: ask me to open a file, list a folder, search, run the "
    "tests, or check git."
)
NO_RUNTIME_TEXT = "I can't reach your project right now; no local runtime is connected."
RUNTIME_GONE_TEXT = (
    "I've lost the connection to your computer, so I can't reach the project right now."
)

_VERBS = {
    "read_file": "open",
    "list_dir": "list",
    "search_text": "search",
    "execute_command": "run",
    "write_file": "write",
}
_ENGINE_SIDE = re.compile(
    r"runtime|disconnect|no response|did not answer|didn't answer|not respond|unreachable",
    re.IGNORECASE,
)


def needs_llm_text(action: str = "") -> str:
    """The honest answer for anything command mode cannot do, with how to fix it."""
    if action:
        return f"{action} needs a language model, and none is configured. {LLM_SETUP}"
    return f"I can't do that in command mode; it needs a language model. {LLM_SETUP}"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def join_words(items: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def trim_words(text: str, limit: int) -> str:
    words = text.split()
    return " ".join(words[:limit]) + ("..." if len(words) > limit else "")


def _capital(text: str) -> str:
    """Sentence case for prose subjects ("the project"); file names keep their case."""
    return text[:1].upper() + text[1:] if text.startswith(("the ", "that")) else text


def speak_folder(path: str) -> str:
    """ "src/voco/agent" → "the agent folder"; "." → "the project root"."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return "the project root" if name in ("", ".") else f"the {speak_name(name)} folder"


def _subject(tool: str, args: dict[str, Any]) -> str:
    if tool in ("read_file", "list_dir", "write_file") and args.get("path"):
        return speak_path(str(args["path"]))
    if tool == "search_text":
        return "the project"
    return "that"


def is_runtime_gone(result: dict[str, Any], tool: str = "") -> bool:
    """The runtime did not answer (as opposed to the action failing on it)."""
    code = result.get("code")
    if code == "runtime_disconnected":
        return True
    if code == "timeout":
        # A command can time out on the runtime; a file read cannot, so a read
        # that timed out means the engine gave up waiting for the runtime.
        return tool != "execute_command" or bool(_ENGINE_SIDE.search(str(result.get("error", ""))))
    return False


def error_text(tool: str, args: dict[str, Any], result: dict[str, Any]) -> str:
    """One honest sentence for a failed or refused tool call."""
    status, code = result.get("status"), result.get("code")
    verb = _VERBS.get(tool, "do")
    subject = _subject(tool, args)
    if status == "rejected":
        if code == "denied_by_policy":
            return f"Your local runtime's policy doesn't allow that, so I didn't {verb} it."
        return f"Okay, I won't {verb} that."
    if code == "interrupted":
        return f"Okay, I stopped before I could {verb} that."
    if is_runtime_gone(result, tool):
        return RUNTIME_GONE_TEXT
    if code == "scope_violation":
        return f"{_capital(subject)} is outside the folders you've shared, so I can't {verb} it."
    if code == "not_found":
        return f"I couldn't find {subject}." if subject != "that" else "That wasn't found."
    if code == "too_large":
        return f"{_capital(subject)} is too large for me to {verb}."
    if code == "timeout":
        return "That command took too long, so it was stopped after 30 seconds."
    if code in ("invalid_request", "unknown_action"):
        return f"Your local runtime couldn't {verb} that; it rejected the request as invalid."
    detail = trim_words(str(result.get("error") or "").split("\n")[0], 12)
    return f"That didn't work: {detail}" if detail else "That didn't work."


def lookup_failure_text(failure: LookupFailure) -> str:
    """Why a spoken name did not become one real path, said."""
    if isinstance(failure, ToolFailed):
        return error_text(failure.tool, failure.arguments, failure.result)
    if isinstance(failure, Ambiguous):
        options = [speak_path(p) for p in failure.options]
        return f"Did you mean {', '.join(options[:-1])} or {options[-1]}?"
    assert isinstance(failure, NotFound)
    text = f"I couldn't find anything called {speak_name(failure.spoken)}."
    closest = list(dict.fromkeys(speak_path(p) for p in failure.closest))
    if closest:
        text += f" The closest {'is' if len(closest) == 1 else 'are'} {join_words(closest)}."
    return text


# ---------------------------------------------------------------------------- read_file

_MARKUP = re.compile(r"^\s*(?:#+!?|//+|/\*+|\*+/?|\"\"\"|'''|<!--|-->|--|;+|>|[-=*_]{3,}$)\s*")
_SKIP_LINE = re.compile(
    r"^(?:#!|# -\*-|from __future__|\[!\[|!\[|<img|<p|</|---$|copyright|spdx|license)",
    re.IGNORECASE,
)
_DEFINITION = re.compile(
    r"^(?:export\s+)?(?:default\s+)?(?:async\s+)?(?:pub\s+)?"
    r"(?:def|class|function|func(?:\s*\([^)]*\))?|fn|struct|enum|interface|trait)\s+(\w+)",
    re.MULTILINE,
)
_CODE_LINE = re.compile(
    r"[=;{}()]|^\s*(?:def|class|function|fn|func|const|let|var|return|if|for|while|async)\b"
)
_CODE_EXT = frozenset(wordlist("py js ts tsx jsx go rs rb java kt c h cpp hpp cs swift sh"))


def line_count(content: str) -> int:
    return content.count("\n") + (0 if not content or content.endswith("\n") else 1)


def first_meaningful(content: str, max_words: int = 14) -> str:
    """The first line(s) a person would read: titles and docstrings, not shebangs,
    badges, imports or markup. Up to two lines when the first is a short title."""
    picked: list[str] = []
    for raw in content.splitlines()[:60]:
        line = raw.strip()
        if not line or _SKIP_LINE.match(line) or re.match(r"^(import|from|package|use)\s", line):
            continue
        text = re.sub(r"<[^>]*>", "", line)  # HTML in READMEs: <h1>Title</h1>
        text = _MARKUP.sub("", text).strip().strip("\"'`*_").strip()
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # markdown links → their text
        text = re.sub(r"^\[([\w.\- \"']+)\]$", r"the \1 section", text)  # INI/TOML header
        if not re.search(r"[A-Za-z]", text):
            continue
        if picked and _CODE_LINE.search(line):
            break  # a title may be followed by prose, not by code
        picked.append(text.rstrip(".:"))
        if len(picked) == 2 or len(" ".join(picked).split()) >= 6:
            break
    return trim_words(". ".join(picked), max_words)


def definitions(content: str, limit: int = 3) -> tuple[list[str], int]:
    """Top-level definitions (def/class/function/fn ...) of a source file."""
    names = [m.group(1) for m in _DEFINITION.finditer(content) if not m.group(1).startswith("_")]
    return [speak_identifier(n) for n in names[:limit]], len(names)


def read_summary(path: str, result: dict[str, Any]) -> str:
    name = _capital(speak_path(path))
    res = result.get("result") or {}
    if "content_b64" in res and "content" not in res:
        size = int(res.get("size") or 0)
        return f"{name} is a binary file of {max(1, round(size / 1024))} kilobytes."
    content = str(res.get("content") or "")
    if not content.strip():
        return f"{name} is empty."
    n = line_count(content)
    lines = f"over {n} lines" if res.get("truncated") else plural(n, "line")
    out = f"{name} has {lines}."
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    first = first_meaningful(content)
    if first and not (ext in _CODE_EXT and _CODE_LINE.search(first)):
        out += f" It starts: {first}."  # prose only; code is described by its definitions
    if ext in _CODE_EXT:
        names, total = definitions(content)
        if names:
            more = f" and {total - len(names)} more" if total > len(names) else ""
            out += f" It defines {join_words(names) if not more else ', '.join(names)}{more}."
    return out


# ---------------------------------------------------------------------------- list_dir


def content_entries(result: dict[str, Any]) -> list[tuple[str, bool]]:
    """A listing's entries without version-control and cache folders (``.git``),
    which are nobody's idea of "the files here"."""
    return [(n, d) for n, d in entries_of(result) if not (d and n in NOT_CONTENT_DIRS)]


def list_summary(path: str, result: dict[str, Any], shown: int = 5) -> str:
    """Counts, then the first names, then how many were left unsaid ("and 3 more")."""
    where = _capital(speak_folder(path))
    entries = content_entries(result)
    if not entries:
        return f"{where} is empty."
    dirs = sorted(n for n, d in entries if d)
    files = sorted(n for n, d in entries if not d)
    visible = [n for n in dirs + files if not n.startswith(".")] or dirs + files
    counts = " and ".join(
        plural(n, word) for n, word in ((len(dirs), "folder"), (len(files), "file")) if n
    )
    names = [speak_name(n) for n in visible[:shown]]
    left = len(entries) - len(names)
    if left:
        return f"{where} has {counts}: {', '.join(names)} and {left} more."
    return f"{where} has {counts}: {join_words(names)}."


# ---------------------------------------------------------------------------- search_text

DEFINITION_LINE = re.compile(
    r"^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?(?:pub(?:\([^)]*\))?\s+)?"
    r"(?:def|class|function|func|fn|struct|enum|interface|type|trait|const|let|var|impl)\b"
)


def matches_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    raw = (result.get("result") or {}).get("matches") or []
    return [m for m in raw if isinstance(m, dict) and m.get("path")]


def _at(match: dict[str, Any]) -> str:
    line = match.get("line")
    return speak_path(str(match["path"])) + (f", line {line}" if line else "")


def search_summary(term: str, result: dict[str, Any]) -> str:
    matches = matches_of(result)
    said = speak_identifier(term)
    if not matches:
        return f"I found no matches for {said}."
    files = list(dict.fromkeys(str(m["path"]) for m in matches))
    some = "at least " if (result.get("result") or {}).get("truncated") else ""
    if len(matches) == 1:
        return f"I found one match for {said}, in {_at(matches[0])}."
    return (
        f"I found {some}{plural(len(matches), 'match', 'matches')} for {said} in "
        f"{plural(len(files), 'file')}. The first is in {_at(matches[0])}."
    )


def definition_summary(term: str, result: dict[str, Any], pattern: str) -> str:
    matches = matches_of(result)
    said = speak_identifier(term)
    for m in matches:
        text = str(m.get("text", ""))
        if DEFINITION_LINE.match(text) or re.match(rf"^\s*{re.escape(pattern)}\s*(:[^=]*)?=", text):
            return f"{_capital(said)} is defined in {_at(m)}."
    if not matches:
        return f"I couldn't find {said} anywhere in the project."
    return (
        f"I didn't find a definition of {said}, but it appears "
        f"{plural(len(matches), 'time')}; the first is in {_at(matches[0])}."
    )


# ---------------------------------------------------------------------------- project


def where_am_i_summary(root: dict[str, Any], readme: dict[str, Any] | None) -> str:
    entries = content_entries(root)
    names = {n for n, _ in entries}
    dirs = sum(1 for _, d in entries if d)
    counts = f"{plural(dirs, 'folder')} and {plural(len(entries) - dirs, 'file')} at the root"
    kind = project_language(names)
    title = ""
    if readme is not None and readme.get("status") == "success":
        title = first_meaningful(str((readme.get("result") or {}).get("content") or ""), 12)
    out = f"This is {title}. " if title else ""
    if kind:
        return out + f"It looks like a {kind} project, with {counts}."
    return out + f"The project has {counts}."
