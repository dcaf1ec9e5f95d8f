"""Answers the engine's ``mcp.request``s — every one, exactly once.

The sandbox is synchronous (it may block on a person approving, or on a
process for up to 30 s), so each request runs on a worker thread; progress
(``awaiting_approval`` with the risk reason, ``running``) is forwarded to the
engine as it happens, and to an optional observer (the web UI's activity
list). On disconnect, outstanding work is cancelled. Every request, decision
and result lands in the hash-chained audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import weakref
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

from voco.local.sandbox import AuditLog, Sandbox
from voco.local.sandbox.audit import default_audit_path
from voco.local.sandbox.core import state_dirs, validate_roots
from voco.local.sandbox.display import describe_action, escape
from voco.local.sandbox.sensitive import secret_dir_reason
from voco.protocol import activity
from voco.protocol import messages as m
from voco.protocol import ui_messages as ui


class _Sender(Protocol):
    async def send(self, msg: m._Msg) -> None: ...


Approver = Callable[[m.McpRequest, str], bool]
Observer = Callable[[ui.Activity], Awaitable[None]]
_UNKNOWN = object()  # the text before a write could not be read
NAME_FOLDERS = 8  # top-level folders listed for session.start.project_names
SKIP_FOLDERS = frozenset({"node_modules", "__pycache__", "venv", "dist", "build", "target"})


def terminal_approver(request: m.McpRequest, reason: str) -> bool:
    """Ask on the terminal; anything but an explicit yes is a no.

    Everything shown is escaped (:mod:`voco.local.sandbox.display`): the engine
    chose the command and, through it, parts of the reason, and raw escape
    sequences would let it paint a different prompt over the real one.
    """
    detail = describe_action(request.action, request.payload).replace("\n", "\n  ")
    print(
        f"\nVoco wants to:\n  {detail}\n  risky because: {escape(reason)}\n  allow? [y/N] ",
        end="",
        file=sys.stderr,
        flush=True,
    )
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):
        return False
    return answer.strip().lower() in ("y", "yes")


def make_approver(mode: str) -> Approver | None:
    """``ask`` → terminal prompt; ``all`` → approve (tests only); ``deny`` → None,
    which the sandbox treats as refusal by policy without asking."""
    if mode == "ask":
        return terminal_approver
    if mode == "all":
        return lambda request, reason: True
    if mode == "deny":
        return None
    raise ValueError(f"--approve must be ask, deny or all, not {mode!r}")


def activity_status(response: m.McpResponse) -> tuple[str, str | None]:
    """(status, code) for an activity row: a command that exited non-zero or was
    killed is a failure, never "done" — `pytest` exiting 127 is not a success."""
    r = response.result if isinstance(response.result, dict) else {}
    if response.status == "success" and "exit_code" in r:
        if r.get("timed_out"):
            return "error", "timeout"
        if r.get("exit_code") != 0:
            return "error", "exit_status"
    return response.status, response.code


def summarize(response: m.McpResponse, request: m.McpRequest | None = None) -> str:
    """One short line for an activity list (``git status`` names the files)."""
    action = request.action if request is not None else ""
    payload = request.payload if request is not None else {}
    return activity.summarize(
        action, payload, response.status, response.result, response.error, response.code
    )


def activity_done(
    internal: str, request: m.McpRequest, response: m.McpResponse, before: object = _UNKNOWN
) -> ui.Activity:
    """The finished row: the runtime's verdict (a non-zero exit failed) and what
    the action did, capped and plain text (``voco.protocol.activity``)."""
    status, code = activity_status(response)
    known = before is not _UNKNOWN
    return ui.Activity(
        id=internal,
        action=request.action,
        payload=request.payload,
        display=describe_action(request.action, request.payload),
        stage="done",
        status=status,  # type: ignore[arg-type]
        code=code,
        summary=escape(
            activity.summarize(
                request.action, request.payload, status, response.result, response.error, code
            )
        ),
        detail=activity.detail(
            request.action,
            request.payload,
            response.result,
            before=before if isinstance(before, str) else None,
            before_known=known,
        ),
    )


class McpBridge:
    def __init__(
        self,
        roots: Sequence[Path],
        approve: str,
        *,
        approver: Approver | None = None,
        audit_path: Path | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.approve_mode = approve
        self._approver = approver if approver is not None else make_approver(approve)
        self._audit = AuditLog(audit_path or default_audit_path())
        try:
            # Refuse unsafe or missing roots now, not at the engine's first request.
            self.roots = validate_roots(list(roots), state=state_dirs(self._audit))
        except BaseException:
            self._audit.close()
            raise
        self._observer = observer
        self._sandbox: Sandbox | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Request ids are only unique within one engine session, and one bridge
        # serves every session of the runtime; inside it (sandbox, audit log,
        # UI) a request is known by "<session tag>.<id>".
        self._tags: weakref.WeakKeyDictionary[_Sender, str] = weakref.WeakKeyDictionary()
        self._next_tag = itertools.count(1)
        self._seen: set[str] = set()
        self._senders: dict[str, tuple[_Sender, str]] = {}  # internal id -> (session, wire id)

    def _get_sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = Sandbox(
                self.roots,
                self._approve if self._approver is not None else None,
                30.0,
                audit=self._audit,
                progress=self._progress,
            )
        return self._sandbox

    def _approve(self, request: m.McpRequest, reason: str) -> bool:
        assert self._approver is not None
        return self._approver(request, reason)

    def _progress(self, internal_id: str, stage: str, reason: str | None) -> None:
        """Called on the sandbox's worker thread."""
        loop, entry = self._loop, self._senders.get(internal_id)
        if loop is None or entry is None:
            return
        client, wire_id = entry
        msg = m.McpProgress(id=wire_id, stage=stage, reason=reason)  # type: ignore[arg-type]
        asyncio.run_coroutine_threadsafe(client.send(msg), loop)
        shown = escape(reason) if reason is not None else None
        row = ui.Activity(id=internal_id, stage=stage, reason=shown)  # type: ignore[arg-type]
        asyncio.run_coroutine_threadsafe(self._observe(row), loop)

    def _internal_id(self, client: _Sender, wire_id: str) -> str:
        tag = self._tags.get(client)
        if tag is None:
            tag = self._tags[client] = f"s{next(self._next_tag)}"
        return f"{tag}.{wire_id}"

    async def _observe(self, row: ui.Activity) -> None:
        if self._observer is not None:
            with contextlib.suppress(Exception):
                await self._observer(row)

    def submit(self, request: m.McpRequest, client: _Sender) -> None:
        internal = self._internal_id(client, request.id)
        if internal in self._seen:  # a replayed id is never executed twice
            return
        self._seen.add(internal)
        self._loop = asyncio.get_running_loop()
        task = asyncio.create_task(self._handle(request, client, internal))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, request: m.McpRequest, client: _Sender, internal: str) -> None:
        self._senders[internal] = (client, request.id)
        await self._observe(
            ui.Activity(
                id=internal,
                action=request.action,
                payload=request.payload,
                display=describe_action(request.action, request.payload),
                stage="requested",
            )
        )
        inner = request.model_copy(update={"id": internal})
        try:
            response, before = await asyncio.to_thread(self._run, inner)
        finally:
            self._senders.pop(internal, None)
        response = response.model_copy(update={"id": request.id})
        await self._observe(activity_done(internal, request, response, before))
        with contextlib.suppress(Exception):
            await client.send(response)

    def _run(self, inner: m.McpRequest) -> tuple[m.McpResponse, object]:
        """On a worker thread: for a write, first the file's current text (to
        show the diff; read through the sandbox, so it is audited), then the
        request itself."""
        sandbox = self._get_sandbox()
        before: object = _UNKNOWN
        path = inner.payload.get("path")
        if inner.action == "write_file" and isinstance(path, str) and self._observer is not None:
            old = sandbox.handle(
                m.McpRequest(id=f"{inner.id}.before", action="read_file", payload={"path": path})
            )
            result = old.result if isinstance(old.result, dict) else {}
            if old.status == "success" and "content" in result and not result.get("truncated"):
                before = str(result["content"])
            elif old.code == "not_found":
                before = None
        return sandbox.handle(inner), before

    async def project_names(self, limit: int = m.MAX_PROJECT_NAMES) -> list[str]:
        """The names ``session.start.project_names`` carries: the project root's
        entries, then those of its visible folders, listed through the sandbox
        (audited, with its secret rules) so the engine learns nothing a
        ``list_dir`` it could ask for would not show. Hidden and secret folders
        are never opened (that would need an approval nobody asked for); a
        listing that fails gives fewer names, never a failed session."""
        return await asyncio.to_thread(self._list_names, limit)

    def _list_names(self, limit: int) -> list[str]:
        sandbox = self._get_sandbox()
        tag = f"names{next(self._next_tag)}"
        top = _entries(sandbox, f"{tag}.0", ".")
        names = [name for name, _ in top]
        folders = [
            name
            for name, kind in top
            if kind == "dir"
            and not name.startswith(".")
            and name not in SKIP_FOLDERS
            and secret_dir_reason(name) is None
        ]
        for k, folder in enumerate(folders[:NAME_FOLDERS], 1):
            if len(names) >= limit:
                break
            names.extend(name for name, _ in _entries(sandbox, f"{tag}.{k}", folder))
        return list(dict.fromkeys(names))[:limit]

    def set_approve_mode(self, mode: str, approver: Approver | None) -> None:
        """Switch how risky actions are decided (the page's settings panel; the
        caller validates ``mode``). Requests already waiting keep their prompt."""
        self.approve_mode = mode
        self._approver = approver
        if self._sandbox is not None:
            self._sandbox.set_approver(self._approve if approver is not None else None)

    def cancel_pending(self, client: _Sender | None = None) -> None:
        """The session that sent these requests is gone: kill what they run and
        withdraw their approval prompts. ``None``: every session's."""
        for internal, (sender, _) in list(self._senders.items()):
            if client is None or sender is client:
                if self._sandbox is not None:
                    self._sandbox.cancel(internal)
                withdraw = getattr(self._approver, "withdraw", None)
                if withdraw is not None:
                    withdraw(internal)

    async def aclose(self) -> None:
        self.cancel_pending()
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t
        if self._sandbox is not None:
            self._sandbox.close()
        self._audit.close()


def _entries(sandbox: Sandbox, request_id: str, path: str) -> list[tuple[str, str]]:
    """(name, kind) of one sandboxed ``list_dir``; nothing if it failed."""
    res = sandbox.handle(m.McpRequest(id=request_id, action="list_dir", payload={"path": path}))
    result = res.result if res.status == "success" and isinstance(res.result, dict) else {}
    out: list[tuple[str, str]] = []
    for e in result.get("entries", ()):
        name = e.get("name") if isinstance(e, dict) else None
        if isinstance(name, str) and len(name) <= m.MAX_NAME_CHARS:
            out.append((name, str(e.get("kind", ""))))
    return out
