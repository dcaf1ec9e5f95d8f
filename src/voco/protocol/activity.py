"""What an MCP action did, in a form a person can read (docs/ui-protocol.md).

Pure functions of an action, its payload and its result, shared by the local
runtime's activity rows and the engine's thread history, so a row looks the
same live and after a reload. Everything shown is capped and made plain text
(ANSI escapes and control characters removed): command output is untrusted
and a terminal escape must never reach a page or a log as markup.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from voco.common.safe_text import escape

TEXT_CAP = 4000  # characters of a file excerpt, stdout, stderr or a diff
LIST_CAP = 200  # entries of a listing shown
MATCH_CAP = 100  # search hits shown
FILES_CAP = 50  # files named for git status

# CSI / OSC / other ESC sequences, then every C0/C1 control except \t and \n.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]")
_VIEW_KEEPS = frozenset("\n\t\\")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(text: str, cap: int = TEXT_CAP) -> tuple[str, bool]:
    """``text`` without ANSI sequences and control characters, cut to ``cap``;
    True if cut. What else could reorder or hide text (bidi overrides,
    zero-width and format characters) is shown as a visible escape by the same
    rule as the sandbox's approval prompts (:mod:`voco.common.safe_text`);
    newlines, tabs and backslashes stay, since this is a multi-line view.
    """
    clean = _CONTROL.sub("", _ANSI.sub("", text.replace("\r\n", "\n")))
    clean = escape(clean, keep=_VIEW_KEEPS)
    if len(clean) <= cap:
        return clean, False
    return clean[:cap], True


class ListEntry(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    kind: str
    size: int = 0


class SearchHit(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str
    line: int
    text: str


DetailKind = Literal["file", "listing", "search", "command", "write"]


class ActivityDetail(BaseModel):
    """The expandable part of an activity row; which fields are set depends on
    ``kind``. ``*_truncated`` says the runtime cut what it shows (not the action)."""

    model_config = ConfigDict(frozen=True)
    kind: DetailKind
    path: str | None = None
    # file
    excerpt: str | None = None
    size: int | None = None
    binary: bool | None = None
    # listing
    entries: list[ListEntry] | None = None
    # search
    matches: list[SearchHit] | None = None
    # command
    command: str | None = None
    exit_code: int | None = None
    stdout: str | None = None
    stderr: str | None = None
    timed_out: bool | None = None
    duration_ms: int | None = None
    changed_files: list[str] | None = None
    # write
    diff: str | None = None
    bytes_written: int | None = None
    # any kind: the action's own result was cut (file longer, listing capped…)
    truncated: bool | None = None
    # the runtime cut what it shows here
    shown_truncated: bool = False
    more: int = Field(default=0, ge=0)


def command_text(payload: dict[str, Any]) -> str:
    command = payload.get("command")
    if isinstance(command, str):
        return command
    argv = payload.get("argv")
    if isinstance(argv, list):
        return " ".join(str(a) for a in argv)
    return ""


def is_git_status(payload: dict[str, Any]) -> bool:
    return bool(re.match(r"\s*git\s+status\b", command_text(payload)))


_LONG_STATUS = re.compile(
    r"^\s+(?:(new file|modified|deleted|renamed|typechange|both modified):\s+)?(\S.*)$"
)


def git_changed_files(stdout: str) -> list[str]:
    """File names in ``git status`` output (porcelain v1 or the long format)."""
    files: list[str] = []
    section = False
    for line in stdout.splitlines():
        if line.startswith("## "):
            continue
        m = re.match(r"^([ MADRCU?!]{2}) (.+)$", line)
        if m and not section:
            files.append(m.group(2).split(" -> ")[-1].strip('"'))
            continue
        if line.startswith(("Changes ", "Untracked files:", "Unmerged paths:")):
            section = True
            continue
        if section:
            lm = _LONG_STATUS.match(line)
            if lm and not lm.group(2).startswith("(use "):
                files.append(lm.group(2).split(" -> ")[-1].strip())
    seen: dict[str, None] = {}
    for f in files:
        seen.setdefault(f, None)
    return list(seen)


def command_failed(result: Any) -> bool:
    """A command that ran and exited non-zero failed, whatever the wire status."""
    return (
        isinstance(result, dict)
        and isinstance(result.get("exit_code"), int)
        and (result["exit_code"] != 0)
    )


def summarize(
    action: str,
    payload: dict[str, Any],
    status: str,
    result: Any,
    error: str | None = None,
    code: str | None = None,
) -> str:
    """One short line for an activity row or a history entry."""
    if status != "success" and not isinstance(result, dict):
        return error or code or status
    r = result if isinstance(result, dict) else {}
    if "exit_code" in r:
        line = f"exit {r['exit_code']}" + (" (timed out)" if r.get("timed_out") else "")
        if status == "success" and r.get("exit_code") == 0 and is_git_status(payload):
            files = git_changed_files(str(r.get("stdout", "")))
            if not files:
                return "clean: nothing changed"
            shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
            return f"{len(files)} changed: {shown}"
        if status == "success" or code == "exit_status":
            return line
        return f"{error or code or status} · {line}"
    if status != "success":
        return error or code or status
    if "entries" in r:
        return f"{len(r['entries'])} entries" + (" (more not listed)" if r.get("truncated") else "")
    if "matches" in r:
        n = len(r["matches"])
        return f"{n} match{'es' if n != 1 else ''}"
    if "size" in r:
        return f"{r['size']} bytes"
    if "bytes_written" in r:
        return f"wrote {r['bytes_written']} bytes"
    return "done"


def detail(
    action: str,
    payload: dict[str, Any],
    result: Any,
    *,
    before: str | None = None,
    before_known: bool = True,
) -> ActivityDetail | None:
    """The expandable detail of an action's result. ``before``: the file's text
    before a ``write_file`` (the diff is against it; None = a new file); with
    ``before_known=False`` (history: the old text was never stored) the written
    text is shown as the excerpt instead of a diff."""
    r = result if isinstance(result, dict) else {}
    path = payload.get("path") if isinstance(payload.get("path"), str) else None
    if action == "read_file" and ("content" in r or "content_b64" in r):
        text, cut = plain(str(r.get("content", "")))
        return ActivityDetail(
            kind="file",
            path=path,
            excerpt=text if "content" in r else None,
            binary="content_b64" in r or None,
            size=r.get("size"),
            truncated=bool(r.get("truncated")),
            shown_truncated=cut,
        )
    if action == "list_dir" and isinstance(r.get("entries"), list):
        entries = [
            ListEntry(
                name=plain(str(e.get("name", "")), 300)[0],
                kind=str(e.get("kind", "")),
                size=int(e.get("size", 0) or 0),
            )
            for e in r["entries"]
            if isinstance(e, dict)
        ]
        return ActivityDetail(
            kind="listing",
            path=path or ".",
            entries=entries[:LIST_CAP],
            truncated=bool(r.get("truncated")),
            shown_truncated=len(entries) > LIST_CAP,
            more=max(0, len(entries) - LIST_CAP),
        )
    if action == "search_text" and isinstance(r.get("matches"), list):
        hits = [
            SearchHit(
                path=plain(str(h.get("path", "")), 500)[0],
                line=int(h.get("line", 0) or 0),
                text=plain(str(h.get("text", "")), 300)[0],
            )
            for h in r["matches"]
            if isinstance(h, dict)
        ]
        return ActivityDetail(
            kind="search",
            path=path,
            matches=hits[:MATCH_CAP],
            truncated=bool(r.get("truncated")),
            shown_truncated=len(hits) > MATCH_CAP,
            more=max(0, len(hits) - MATCH_CAP),
        )
    if action == "execute_command" and "exit_code" in r:
        out, out_cut = plain(str(r.get("stdout", "")))
        err, err_cut = plain(str(r.get("stderr", "")))
        files = git_changed_files(out)[:FILES_CAP] if is_git_status(payload) else None
        return ActivityDetail(
            kind="command",
            command=plain(command_text(payload), 2000)[0],
            exit_code=r.get("exit_code"),
            stdout=out,
            stderr=err,
            timed_out=bool(r.get("timed_out")),
            duration_ms=r.get("duration_ms"),
            changed_files=files,
            shown_truncated=out_cut or err_cut,
        )
    if action == "write_file" and "bytes_written" in r:
        content = payload.get("content")
        new = content if isinstance(content, str) else ""
        if not before_known:
            text, cut = plain(new)
            return ActivityDetail(
                kind="write",
                path=path,
                excerpt=text,
                bytes_written=r.get("bytes_written"),
                shown_truncated=cut,
            )
        text, cut = plain(unified_diff(before, new, path or "file"))
        return ActivityDetail(
            kind="write",
            path=path,
            diff=text,
            bytes_written=r.get("bytes_written"),
            shown_truncated=cut,
        )
    return None


def unified_diff(before: str | None, after: str, path: str) -> str:
    import difflib

    old = (before or "").splitlines(keepends=True)
    new = after.splitlines(keepends=True)
    src = "/dev/null" if before is None else f"a/{path}"
    lines = difflib.unified_diff(old, new, src, f"b/{path}", n=2)
    return "".join(x if x.endswith("\n") else x + "\n" for x in lines)
