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
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from voco.local.sandbox.actions import ACTIONS, ActionContext
from voco.local.sandbox.audit import AuditLog
from voco.local.sandbox.errors import (
    DENIED_BY_POLICY,
    DENIED_BY_USER,
    INTERNAL,
    UNKNOWN_ACTION,
    ActionError,
)
from voco.local.sandbox.execute import MAX_TIMEOUT_S
from voco.local.sandbox.paths import Resolver
from voco.protocol.messages import McpRequest, McpResponse

log = logging.getLogger(__name__)

Approver = Callable[[McpRequest, str], bool]
Progress = Callable[[str, str, str | None], None]

_REQUEST_STR = 4096  # commands and paths are worth keeping verbatim
_RESULT_STR = 256  # file contents and command output are not


def _summarise(value: Any, limit: int, depth: int = 0) -> Any:
    """Keep the audit log small and free of bulk content: long strings become
    their hash and length, long lists their length."""
    if isinstance(value, str):
        if len(value) <= limit:
            return value
        raw = value.encode("utf-8", "surrogatepass")
        return {"sha256": hashlib.sha256(raw).hexdigest(), "len": len(raw)}
    if isinstance(value, Mapping):
        if depth > 3:
            return "…"
        return {str(k): _summarise(v, limit, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if len(value) > 64 or depth > 3:
            return {"items": len(value)}
        return [_summarise(v, limit, depth + 1) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return repr(value)[:limit]


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
    ) -> None:
        self._resolver = Resolver(roots, force_fallback=force_fallback_resolver)
        self._approver = approver
        self._timeout_s = max(0.1, min(MAX_TIMEOUT_S, float(timeout_s)))
        self._audit = audit
        self._progress = progress
        self._lock = threading.Lock()
        self._running: dict[str, threading.Event] = {}

    @property
    def resolver(self) -> Resolver:
        return self._resolver

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
        try:
            self._record(
                "result",
                {
                    "id": request.id,
                    "status": response.status,
                    "code": response.code,
                    "error": response.error,
                    "result": _summarise(response.result, _RESULT_STR),
                },
            )
        except ActionError:
            log.error("audit log unavailable while recording result of %s", request.id)
        return response

    # ------------------------------------------------------------------ internals

    def _handle(self, request: McpRequest) -> McpResponse:
        try:
            self._record(
                "request",
                {
                    "id": request.id,
                    "action": request.action,
                    "payload": _summarise(request.payload, _REQUEST_STR),
                },
            )
            action = ACTIONS.get(request.action)
            if action is None:
                raise ActionError(UNKNOWN_ACTION, f"unknown action {request.action!r}")
            ctx = ActionContext(
                resolver=self._resolver,
                timeout_s=self._timeout_s,
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

    def _record(self, kind: str, data: dict[str, Any]) -> None:
        if self._audit is None:
            return
        try:
            self._audit.append(kind, data)
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
