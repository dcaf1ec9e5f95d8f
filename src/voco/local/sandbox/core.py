"""``Sandbox``: the single entry point that answers an ``McpRequest`` exactly once.

It owns the order of operations that makes the zero-trust promise hold:
validate → scope-check (kernel) → classify risk → ask (or refuse by policy)
→ run under the OS sandbox → record. Every step is written to the audit log
*before* the next one happens, so the log shows what was asked even if the
process dies mid-way. ``handle`` never raises: anything unexpected becomes
``code: internal`` and is logged.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from voco.local.sandbox.actions import ACTIONS, COMMAND_CAP, ActionContext
from voco.local.sandbox.audit import AuditLog, default_audit_path, voco_home
from voco.local.sandbox.errors import (
    DENIED_BY_POLICY,
    DENIED_BY_USER,
    INTERNAL,
    NEEDS_CONFIRMED_TURN,
    UNKNOWN_ACTION,
    ActionError,
    RootRefused,
)
from voco.local.sandbox.execute import MAX_TIMEOUT_S
from voco.local.sandbox.paths import Resolver
from voco.local.sandbox.sizing import fit_response
from voco.local.sandbox.toolpath import ToolEnv, tools_from_environment
from voco.protocol.messages import McpRequest, McpResponse

log = logging.getLogger(__name__)

Approver = Callable[[McpRequest, str], bool]
Progress = Callable[[str, str, str | None], None]

# Request strings (commands, paths, patterns) are what was *asked*: kept whole up
# to the command cap — a longer one is refused anyway. What was *read or
# produced* (file contents, command output, matching lines) is never logged:
# only its size and SHA-256, whatever its length (a 40-byte .env is a secret).
_REQUEST_STR = COMMAND_CAP
_REQUEST_ITEMS = 4096  # argv may have up to 4096 words
_CONTENT_KEYS = frozenset({"content", "content_b64", "stdout", "stderr", "text"})
_META_STR = 4096
LIST_LOGGED = 64  # longer result lists (entries, matches) are logged as a count


def _digest(value: str) -> dict[str, Any]:
    raw = value.encode("utf-8", "surrogatepass")
    return {"sha256": hashlib.sha256(raw).hexdigest(), "len": len(raw)}


def _summarise(value: Any, limit: int, items: int = 64, depth: int = 0) -> Any:
    """Keep the audit log free of bulk content: strings under content keys become
    their hash and length; other strings over ``limit``, too; long lists their length."""
    if isinstance(value, str):
        return value if len(value) <= limit else _digest(value)
    if isinstance(value, Mapping):
        if depth > 3:
            return "…"
        return {
            str(k): _digest(v)
            if k in _CONTENT_KEYS and isinstance(v, str)
            else _summarise(v, limit, items, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        if len(value) > items or depth > 3:
            return {"items": len(value)}
        return [_summarise(v, limit, items, depth + 1) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return repr(value)[:limit]


def _within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def validate_roots(
    roots: Sequence[Path], *, home: str | None = None, state: Iterable[Path] = ()
) -> list[Path]:
    """Refuse roots that do not exist or that would put secrets in scope.

    ``$HOME`` and its ancestors (``/`` included) cover ``~/.ssh``, cloud keys
    and Voco's own secrets; a folder holding Voco's state (``$VOCO_HOME``, the
    audit log's folder, the audit key's) would let the engine read the tokens
    or the log that is meant to catch it. ``state[0]`` is Voco's home, which a
    root may not lie inside either. Raises :class:`RootRefused` with one line
    the CLI prints as is.
    """
    if not roots:
        raise RootRefused("at least one root is required")
    home_real = os.path.realpath(home if home is not None else os.path.expanduser("~"))
    state_real = [os.path.realpath(s) for s in state]
    out = []
    for r in roots:
        shown = os.fspath(r)
        real = os.path.realpath(os.path.abspath(shown))
        if not os.path.exists(real):
            raise RootRefused(f"root {shown!r} does not exist")
        if not os.path.isdir(real):
            raise RootRefused(f"root {shown!r} is not a directory")
        if real == "/" or _within(home_real, real):
            what = "/" if real == "/" else "your home folder" if real == home_real else None
            what = what or f"an ancestor of your home folder ({home_real})"
            raise RootRefused(
                f"refusing root {shown!r}: it is {what}, which holds your keys and "
                "Voco's own secrets; pass a project folder with --root"
            )
        # A root may not cover a state folder, nor lie inside Voco's home (the
        # first state folder: tokens, keys, pgdata). Inside a log's folder is fine.
        for i, s in enumerate(state_real):
            if _within(s, real) or (i == 0 and _within(real, s)):
                raise RootRefused(
                    f"refusing root {shown!r}: it overlaps Voco's own state ({s}); "
                    "pass a project folder with --root"
                )
        out.append(Path(real))
    return out


def state_dirs(audit: AuditLog | None = None) -> list[Path]:
    """Folders holding Voco's own state, which no root may cover; Voco's home
    first (no root may lie inside it either)."""
    dirs = [voco_home(), default_audit_path().parent]
    if audit is not None:
        dirs += [audit.path.parent, audit.key_path.parent]
    return dirs


class Sandbox:
    """Answers MCP requests for the given roots. Synchronous and thread-safe.

    ``approver`` None means every high-risk action is refused by policy
    (``denied_by_policy``) without asking; an approver returning False is a
    user refusal (``denied_by_user``). ``progress(request_id, stage, reason)``
    is told ``awaiting_approval`` before asking and ``running`` before a
    command runs or a file is written.
    """

    def __init__(
        self,
        roots: Sequence[Path],
        approver: Approver | None,
        timeout_s: float = MAX_TIMEOUT_S,
        audit: AuditLog | None = None,
        progress: Progress | None = None,
        *,
        force_fallback_resolver: bool = False,
        home: str | None = None,
        tools: ToolEnv | None = None,
    ) -> None:
        checked = validate_roots(roots, home=home, state=state_dirs(audit))
        # The configured spellings go to the resolver (absolute request paths may use them).
        self._resolver = Resolver(
            [Path(os.path.abspath(os.fspath(r))) for r in roots],
            force_fallback=force_fallback_resolver,
        )
        self._tools = (
            tools
            if tools is not None
            else tools_from_environment(
                [str(r) for r in checked], [str(d) for d in state_dirs(audit)]
            )
        )
        self._approver = approver
        self._timeout_s = max(0.1, min(MAX_TIMEOUT_S, float(timeout_s)))
        self._audit = audit
        self._progress = progress
        self._lock = threading.Lock()
        self._running: dict[str, threading.Event] = {}

    @property
    def resolver(self) -> Resolver:
        return self._resolver

    @property
    def tools(self) -> ToolEnv:
        return self._tools

    def set_approver(self, approver: Approver | None) -> None:
        """Change who decides risky actions from now on (``None``: refuse by policy)."""
        self._approver = approver

    def close(self) -> None:
        self.cancel_all()
        self._resolver.close()

    def cancel(self, request_id: str) -> bool:
        """Kill the process tree of a running request (its session ended).

        The request still gets its one answer (``internal``, "cancelled"),
        recorded in the audit log. False if nothing by that id is running.
        """
        with self._lock:
            event = self._running.get(request_id)
        if event is None:
            return False
        event.set()
        return True

    def cancel_all(self) -> None:
        with self._lock:
            events = list(self._running.values())
        for event in events:
            event.set()

    # ------------------------------------------------------------------ public

    def handle(self, request: McpRequest) -> McpResponse:
        """Answer one request. Never raises."""
        try:
            response = self._handle(request)
        except Exception:
            log.exception("sandbox failure on %s", request.action)
            response = McpResponse(
                id=request.id, status="error", code=INTERNAL, error="internal sandbox error"
            )
        response = fit_response(response)
        try:
            entry = self._record(
                "result",
                {
                    "id": request.id,
                    "status": response.status,
                    "code": response.code,
                    "error": response.error,
                    "result": _summarise(response.result, _META_STR, items=LIST_LOGGED),
                },
            )
        except ActionError:
            log.error("audit log unavailable while recording result of %s", request.id)
            entry = None
        if entry is not None:
            response = response.model_copy(update={"audit_hash": entry["hash"]})
        return response

    # ------------------------------------------------------------------ internals

    def _handle(self, request: McpRequest) -> McpResponse:
        try:
            self._record(
                "request",
                {
                    "id": request.id,
                    "action": request.action,
                    "payload": _summarise(request.payload, _REQUEST_STR, items=_REQUEST_ITEMS),
                },
            )
            action = ACTIONS.get(request.action)
            if action is None:
                raise ActionError(UNKNOWN_ACTION, f"unknown action {request.action!r}")
            ctx = ActionContext(
                resolver=self._resolver,
                timeout_s=self._timeout_s,
                tools=self._tools,
                gate=lambda reason: self._gate(request, reason),
                running=lambda: self._emit(request.id, "running", None),
            )
            with self._lock:
                self._running[request.id] = ctx.cancelled
            try:
                result = action(ctx, request.payload)
            finally:
                with self._lock:
                    self._running.pop(request.id, None)
        except ActionError as exc:
            return McpResponse(
                id=request.id,
                status=exc.status,
                code=exc.code,
                error=exc.message,
                result=exc.result,
            )
        return McpResponse(id=request.id, status="success", result=result)

    def _record(self, kind: str, data: dict[str, Any]) -> dict[str, Any] | None:
        if self._audit is None:
            return None
        try:
            return self._audit.append(kind, data)
        except Exception as exc:
            # Fail closed: an action we cannot record is an action we do not take.
            raise ActionError(INTERNAL, f"audit log unavailable: {exc}") from None

    def _emit(self, request_id: str, stage: str, reason: str | None) -> None:
        if self._progress is None:
            return
        try:
            self._progress(request_id, stage, reason)
        except Exception:
            log.exception("progress callback failed")

    def _gate(self, request: McpRequest, reason: str | None) -> None:
        if reason is None:
            self._record("decision", {"id": request.id, "decision": "allowed"})
            return
        self._record("decision", {"id": request.id, "decision": "needs_approval", "reason": reason})
        if request.speculative:  # nobody is asked about a turn not yet confirmed
            self._record("approval", {"id": request.id, "approved": False, "by": "speculative"})
            raise ActionError(
                NEEDS_CONFIRMED_TURN,
                f"not run before the turn is confirmed: {reason}",
                status="rejected",
            )
        if self._approver is None:
            self._record("approval", {"id": request.id, "approved": False, "by": "policy"})
            raise ActionError(
                DENIED_BY_POLICY, f"refused by policy without asking: {reason}", status="rejected"
            )
        self._emit(request.id, "awaiting_approval", reason)
        try:
            approved = self._approver(request, reason) is True
            by = "user"
        except Exception:
            log.exception("approver failed")
            approved, by = False, "error"
        self._record("approval", {"id": request.id, "approved": approved, "by": by})
        if not approved:
            code = DENIED_BY_USER if by == "user" else DENIED_BY_POLICY
            raise ActionError(code, f"not approved: {reason}", status="rejected")
