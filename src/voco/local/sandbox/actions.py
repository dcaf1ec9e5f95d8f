"""The five MCP actions (protocol §5), each a function ``(ctx, payload) -> result``.

Every file is opened through :class:`~voco.local.sandbox.paths.Resolver` and
every decision (type, link count, size) is made on the opened fd with
``fstat`` — the name is never looked at twice. Refusals are raised as
:class:`~voco.local.sandbox.errors.ActionError`; the caller turns them into
the one ``mcp.response``.
"""

from __future__ import annotations

import base64
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from voco.common.project_layout import SEARCH_SKIP_DIRS
from voco.local.sandbox.errors import (
    INTERNAL,
    TIMEOUT,
    TOO_LARGE,
    ActionError,
    invalid,
    scope,
)
from voco.local.sandbox.execute import MAX_TIMEOUT_S, Mount, run_sandboxed, sandbox_status
from voco.local.sandbox.operands import operand_reasons
from voco.local.sandbox.paths import Location, Resolver, fd_path, map_oserror
from voco.local.sandbox.risk import Assessment, classify_argv, classify_command
from voco.local.sandbox.sensitive import first_secret, secret_dir_reason, secret_reason
from voco.local.sandbox.sizing import CONTENT_BUDGET, cut_text, fitting_prefix, json_cost
from voco.local.sandbox.toolpath import ToolEnv

READ_CAP = 1 << 20  # bytes returned by one read_file
WRITE_CAP = 8 << 20  # bytes accepted by one write_file
LIST_CAP = 5000  # entries returned by one list_dir
COMMAND_CAP = 64 << 10  # characters in a command line
SEARCH_PATTERN_CAP = 1000
SEARCH_FILE_CAP = 2 << 20  # larger files are skipped
SEARCH_MATCH_CAP = 500
SEARCH_FILES_CAP = 20000
SEARCH_BYTES_CAP = 64 << 20
SEARCH_TIME_S = 10.0
SEARCH_LINE_CHARS = 400
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY
_GLOB_FIRST = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class ActionContext:
    """What an action may use. ``gate`` records the policy decision and, given a
    reason, asks for approval (raising if refused); ``running`` reports progress."""

    resolver: Resolver
    timeout_s: float
    gate: Callable[[str | None], None]
    running: Callable[[], None]
    cancelled: threading.Event = field(default_factory=threading.Event)
    tools: ToolEnv | None = None


# ------------------------------------------------------------------ payload helpers


def _str(payload: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = payload.get(key)
    if value is None:
        if required:
            raise invalid(f"payload.{key} is required")
        return None
    if not isinstance(value, str):
        raise invalid(f"payload.{key} must be a string")
    return value


def _req_str(payload: Mapping[str, Any], key: str) -> str:
    value = _str(payload, key)
    assert value is not None
    if not value:
        raise invalid(f"payload.{key} must not be empty")
    return value


def _int(payload: Mapping[str, Any], key: str) -> int | None:
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid(f"payload.{key} must be a non-negative integer")
    return value


def _require_regular(st: os.stat_result, shown: str) -> None:
    """Only plain, singly-linked files are readable or writable."""
    mode = st.st_mode
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise scope(f"{shown!r} is a device file: it gives access beyond the allowed roots")
    if stat.S_ISDIR(mode):
        raise invalid(f"{shown!r} is a directory")
    if not stat.S_ISREG(mode):
        raise invalid(f"{shown!r} is not a regular file (FIFO or socket)")
    if st.st_nlink != 1:
        raise scope(f"{shown!r} is hard-linked: its other names may be outside the allowed roots")


def _pread(fd: int, want: int, offset: int) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < want:
        try:
            data = os.pread(fd, min(want - got, 1 << 20), offset + got)
        except BlockingIOError:
            break
        if not data:
            break
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


# ------------------------------------------------------------------ read_file


def read_file(ctx: ActionContext, payload: Mapping[str, Any]) -> dict[str, Any]:
    path = _req_str(payload, "path")
    offset = _int(payload, "offset") or 0
    length = _int(payload, "length")
    want = READ_CAP if length is None else min(length, READ_CAP)
    fd, _ = ctx.resolver.open_path(path, _READ_FLAGS)
    try:
        st = os.fstat(fd)
        _require_regular(st, path)
        secret = first_secret(path, fd_path(fd))
        ctx.gate(f"`read_file` {path!r}: {secret}" if secret else None)
        data = _pread(fd, want, offset)
    finally:
        os.close(fd)
    size = st.st_size
    result: dict[str, Any] = {"size": size}
    # Cut to what fits in one message *once JSON-escaped* (sizing.py).
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        # A cut may have split the last character: text if only that is wrong.
        cut = len(data) - next((i for i in range(1, 4) if _utf8_ok(data[:-i])), 0)
        text = data[:cut].decode("utf-8") if cut < len(data) and _utf8_ok(data[:cut]) else None
        if text is not None:
            data = data[:cut]
    if text is not None:
        n = fitting_prefix(data, CONTENT_BUDGET)
        data = data[:n]
        result["content"] = data.decode("utf-8")
    else:
        data = data[: CONTENT_BUDGET // 4 * 3]
        result["content_b64"] = base64.b64encode(data).decode("ascii")
    result["truncated"] = offset + len(data) < size
    return result


def _utf8_ok(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(data)


# ------------------------------------------------------------------ list_dir


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _safe_name(name: str) -> str:
    """Undecodable bytes become ``\\xNN`` so the result is always valid JSON text."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _names(fd: int, limit: int) -> tuple[list[str], bool]:
    """Up to ``limit`` entry names, sorted; True if there were more."""
    names: list[str] = []
    with os.scandir(fd) as it:
        for entry in it:
            if len(names) >= limit:
                return sorted(names), True
            names.append(entry.name)
    return sorted(names), False


def list_dir(ctx: ActionContext, payload: Mapping[str, Any]) -> dict[str, Any]:
    path = _str(payload, "path", required=False) or "."
    pfd, _ = ctx.resolver.open_path(path, os.O_PATH)
    try:
        if not stat.S_ISDIR(os.fstat(pfd).st_mode):
            raise invalid(f"{path!r} is not a directory")
        secret = secret_dir_reason(path) or secret_dir_reason(fd_path(pfd))
        # Re-open the very inode we checked ("." of the O_PATH fd), not the name.
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd)
    finally:
        os.close(pfd)
    entries: list[dict[str, Any]] = []
    try:
        ctx.gate(f"`list_dir` {path!r}: {secret}" if secret else None)
        names, truncated = _names(fd, LIST_CAP)
        for name in names:
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while listing
            kind = _kind(st.st_mode)
            entries.append(
                {
                    "name": _safe_name(name),
                    "kind": kind,
                    "size": st.st_size if kind == "file" else 0,
                }
            )
    finally:
        os.close(fd)
    return {"entries": entries, "truncated": truncated}


# ------------------------------------------------------------------ search_text


@dataclass
class _Search:
    pattern: str
    matches: list[dict[str, Any]]
    files: int = 0
    bytes_read: int = 0
    truncated: bool = False
    deadline: float = 0.0
    skipped_secrets: int = 0

    def full(self) -> bool:
        if (
            len(self.matches) >= SEARCH_MATCH_CAP
            or self.files >= SEARCH_FILES_CAP
            or self.bytes_read >= SEARCH_BYTES_CAP
            or time.monotonic() > self.deadline
        ):
            self.truncated = True
        return self.truncated


def search_text(ctx: ActionContext, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Literal (fixed-string) search in Python over fds opened beneath the roots.

    Literal rather than regex on purpose: a regex from an untrusted engine can
    backtrack for hours (ReDoS) in a thread we cannot interrupt.
    """
    pattern = _req_str(payload, "pattern")
    if len(pattern) > SEARCH_PATTERN_CAP:
        raise invalid("payload.pattern is too long")
    path = _str(payload, "path", required=False) or "."
    fd, loc = ctx.resolver.open_path(path, _READ_FLAGS)
    s = _Search(pattern, [], deadline=time.monotonic() + SEARCH_TIME_S)
    try:
        st = os.fstat(fd)
        secret = first_secret(path, fd_path(fd))
        ctx.gate(f"`search_text` in {path!r}: {secret}" if secret else None)
        if stat.S_ISDIR(st.st_mode):
            _search_dir(ctx.resolver, s, fd, loc, depth=0)
        else:
            _require_regular(st, path)
            _search_fd(ctx.resolver, s, fd, st, loc)
    finally:
        os.close(fd)
    out: dict[str, Any] = {"matches": s.matches, "truncated": s.truncated}
    if s.skipped_secrets:
        # Walking a folder never reads secret-looking files; name one to search it.
        out["skipped_secret_files"] = s.skipped_secrets
    return out


def _search_dir(resolver: Resolver, s: _Search, dfd: int, loc: Location, depth: int) -> None:
    if depth > 40 or s.full():
        s.truncated = s.truncated or depth > 40
        return
    try:
        names, more = _names(dfd, LIST_CAP)
    except OSError:
        return
    s.truncated = s.truncated or more
    for name in names:
        if s.full():
            return
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except OSError:
            continue
        # Symlinks are never followed: a link can only point somewhere we
        # would have to re-check, and the target, if inside, is searched anyway.
        if secret_reason(name) is not None:
            s.skipped_secrets += 1
            continue
        if stat.S_ISDIR(st.st_mode):
            if name in SEARCH_SKIP_DIRS:
                continue
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
            try:
                child = os.open(name, flags, dir_fd=dfd)
            except OSError:
                continue
            try:
                _search_dir(resolver, s, child, loc.join(name), depth + 1)
            finally:
                os.close(child)
        elif stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_size <= SEARCH_FILE_CAP:
            flags = _READ_FLAGS | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                ffd = os.open(name, flags, dir_fd=dfd)
            except OSError:
                continue
            try:
                fst = os.fstat(ffd)  # decide on the fd: the name may have been swapped
                if stat.S_ISREG(fst.st_mode) and fst.st_nlink == 1:
                    _search_fd(resolver, s, ffd, fst, loc.join(name))
            finally:
                os.close(ffd)


def _search_fd(resolver: Resolver, s: _Search, fd: int, st: os.stat_result, loc: Location) -> None:
    if st.st_size > SEARCH_FILE_CAP:
        s.truncated = True
        return
    data = _pread(fd, SEARCH_FILE_CAP, 0)
    s.files += 1
    s.bytes_read += len(data)
    if b"\x00" in data[:8192] or s.pattern.encode("utf-8", "surrogateescape") not in data:
        return
    shown = resolver.display(loc)
    for lineno, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if s.pattern in line:
            s.matches.append({"path": shown, "line": lineno, "text": line[:SEARCH_LINE_CHARS]})
            if len(s.matches) >= SEARCH_MATCH_CAP:
                s.truncated = True
                return


# ------------------------------------------------------------------ write_file


def write_file(ctx: ActionContext, payload: Mapping[str, Any]) -> dict[str, Any]:
    path = _req_str(payload, "path")
    content = _str(payload, "content")
    assert content is not None
    data = content.encode("utf-8", "surrogatepass")
    if len(data) > WRITE_CAP:
        raise ActionError(TOO_LARGE, f"content is {len(data)} bytes; the limit is {WRITE_CAP}")
    loc = ctx.resolver.locate(path)
    parts = loc.rel.split("/")
    name = parts[-1]
    if name in ("", ".", ".."):
        raise invalid(f"{path!r} does not name a file")
    parent = ctx.resolver.open(Location(loc.root, "/".join(parts[:-1])), os.O_PATH | os.O_DIRECTORY)
    try:
        existing = _precheck_target(parent, name, path)
        verb = "overwrites" if existing else "creates"
        ctx.gate(f"`write_file` {verb} {path!r} ({len(data)} bytes)")
        ctx.running()
        flags = (
            os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        )
        try:
            fd = os.open(name, flags, 0o644, dir_fd=parent)
        except OSError as exc:
            raise map_oserror(exc, path) from None
        try:
            # No O_TRUNC at open: a hard-linked target must be refused
            # *before* a single byte of it changes.
            _require_regular(os.fstat(fd), path)
            os.ftruncate(fd, 0)
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        finally:
            os.close(fd)
    finally:
        os.close(parent)
    return {"bytes_written": len(data)}


def _precheck_target(parent: int, name: str, shown: str) -> bool:
    """Refuse symlinks, hard links and special files before asking the user."""
    try:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise map_oserror(exc, shown) from None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if stat.S_ISLNK(st.st_mode):
        raise scope(f"{shown!r} is a symlink; write_file never writes through links")
    _require_regular(st, shown)
    return True


# ------------------------------------------------------------------ execute_command


def _command_payload(payload: Mapping[str, Any]) -> tuple[str | None, list[str] | None]:
    command, argv = payload.get("command"), payload.get("argv")
    if (command is None) == (argv is None):
        raise invalid("payload needs exactly one of command (string) or argv (list)")
    if command is not None:
        if not isinstance(command, str) or not command.strip():
            raise invalid("payload.command must be a non-empty string")
        if len(command) > COMMAND_CAP or "\x00" in command:
            raise invalid("payload.command is too long or contains NUL")
        return command, None
    if (
        not isinstance(argv, list)
        or not argv
        or len(argv) > 4096
        or not all(isinstance(a, str) and "\x00" not in a for a in argv)
        or not argv[0]
        or sum(len(a) for a in argv) > COMMAND_CAP
    ):
        raise invalid("payload.argv must be a non-empty list of strings without NUL")
    return None, list(argv)


def _timeout(ctx: ActionContext, payload: Mapping[str, Any]) -> float:
    limit = min(MAX_TIMEOUT_S, ctx.timeout_s)
    value = payload.get("timeout_s")
    if value is None:
        return limit
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise invalid("payload.timeout_s must be a positive number")
    return min(limit, float(value))


def _worth_checking(arg: str) -> bool:
    """Is a heuristic "maybe path" of an unknown command really path-like?

    Absolute arguments count when their first component exists on this
    machine or is a glob (``/etc/x``, ``/*``) — ``sed '/^#/d'`` does not.
    """
    if not arg.startswith("/"):
        return True
    first = arg.lstrip("/").split("/", 1)[0]
    return not first or bool(_GLOB_FIRST.search(first)) or os.path.lexists("/" + first)


def check_paths(resolver: Resolver, assessment: Assessment, cwd: Location) -> list[str]:
    """Scope-check the paths; returns fd-level reasons to ask (``operands``)."""
    for p in assessment.paths:
        resolver.check_within(p, cwd)
    for p in assessment.maybe_paths:
        if _worth_checking(p):
            resolver.check_within(p, cwd)
    if assessment.risky:
        return []  # the user is asked anyway; the reasons above say why
    return operand_reasons(resolver, assessment, cwd)


def execute_command(ctx: ActionContext, payload: Mapping[str, Any]) -> dict[str, Any]:
    command, argv = _command_payload(payload)
    timeout_s = _timeout(ctx, payload)
    cwd_arg = _str(payload, "cwd", required=False) or "."
    resolver = ctx.resolver
    cwd_fd, cwd = resolver.open_path(cwd_arg, os.O_PATH | os.O_DIRECTORY)
    try:
        assessment = classify_command(command) if command is not None else classify_argv(argv or [])
        extra = check_paths(resolver, assessment, cwd)
        if extra:
            assessment = replace(assessment, risky=True, reasons=assessment.reasons + tuple(extra))
        usable, why, _ = sandbox_status()
        if not usable:
            # Refuse rather than run an LLM's command unconfined (documented).
            raise ActionError(INTERNAL, f"refusing to run commands: no usable OS sandbox ({why})")
        ctx.gate(assessment.reason if assessment.risky else None)
        inside = fd_path(cwd_fd)
        real = cwd.root.real
        if inside != real and not inside.startswith(real + "/"):
            raise scope(f"working directory {cwd_arg!r} moved outside the allowed roots")
        ctx.running()
        run_argv = ["bash", "--noprofile", "--norc", "-c", command] if command is not None else argv
        assert run_argv is not None
        res = run_sandboxed(
            run_argv,
            mounts=[Mount(r.fd, r.real, r.given) for r in resolver.roots],
            cwd=inside,
            writable=assessment.risky,
            timeout_s=timeout_s,
            cancel=ctx.cancelled,
            tools=ctx.tools,
        )
    finally:
        os.close(cwd_fd)
    stdout, stderr, cut = _fit_output(res.stdout, res.stderr)
    result: dict[str, Any] = {
        "exit_code": res.exit_code,
        "stdout": stdout,
        "stderr": stderr,
        "timed_out": res.timed_out,
        "duration_ms": res.duration_ms,
    }
    if cut:
        result["truncated"] = True
    if res.cancelled:
        raise ActionError(
            INTERNAL, "cancelled: the session ended; its processes were killed", result=result
        )
    if res.timed_out:
        raise ActionError(
            TIMEOUT,
            f"command timed out after {timeout_s:g} s; its processes were killed",
            result=result,
        )
    return result


_CUT_MARK = "\n[voco: output truncated to fit one message]"


def _fit_output(stdout: str, stderr: str) -> tuple[str, str, bool]:
    """Both streams within one message's JSON budget; the smaller keeps up to half."""
    costs = [json_cost(x.encode("utf-8", "surrogatepass")) for x in (stdout, stderr)]
    if sum(costs) <= CONTENT_BUDGET:
        return stdout, stderr, False
    half = CONTENT_BUDGET // 2
    small = min(costs)
    budgets = [half, half] if small > half else [CONTENT_BUDGET - small] * 2
    budgets = [min(c, b) for c, b in zip(costs, budgets, strict=True)]
    outs = []
    for text, budget in zip((stdout, stderr), budgets, strict=True):
        cut, was_cut = cut_text(text, budget - len(_CUT_MARK) - 8)
        outs.append(cut + _CUT_MARK if was_cut else text)
    return outs[0], outs[1], True


ACTIONS: dict[str, Callable[[ActionContext, Mapping[str, Any]], dict[str, Any]]] = {
    "read_file": read_file,
    "list_dir": list_dir,
    "search_text": search_text,
    "write_file": write_file,
    "execute_command": execute_command,
}
