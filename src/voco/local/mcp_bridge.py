"""Answers the engine's ``mcp.request``s — every one, exactly once.

The sandbox is synchronous (it may block on a person approving, or on a
process for up to 30 s), so each request runs on a worker thread; progress
(``awaiting_approval`` with the risk reason, ``running``) is forwarded to the
engine as it happens. On disconnect, outstanding work is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from voco.protocol import messages as m


class _Sender(Protocol):
    async def send(self, msg: m._Msg) -> None: ...


Approver = Callable[[m.McpRequest, str], bool]


def terminal_approver(request: m.McpRequest, reason: str) -> bool:
    """Ask on the terminal; anything but an explicit yes is a no."""
    print(
        f"\nVoco wants to {request.action}: {request.payload}\n  risky because: {reason}\n"
        "  allow? [y/N] ",
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


class McpBridge:
    def __init__(self, roots: Sequence[Path], approve: str, *, audit_path: Path | None = None):
        from voco.local.sandbox import Sandbox

        self._roots = [Path(r) for r in roots]
        self._approver = make_approver(approve)
        self._audit_path = audit_path
        self._sandbox: Any = None
        self._sandbox_cls = Sandbox
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen: set[str] = set()

    def _get_sandbox(self, progress: Callable[[str, str, str | None], None]) -> Any:
        if self._sandbox is None:
            kwargs: dict[str, Any] = {"progress": progress}
            if self._audit_path is not None:
                from voco.local.sandbox.audit import AuditLog

                kwargs["audit"] = AuditLog(self._audit_path)
            self._sandbox = self._sandbox_cls(self._roots, self._approver, 30.0, **kwargs)
        return self._sandbox

    def submit(self, request: m.McpRequest, client: _Sender) -> None:
        if request.id in self._seen:  # a replayed id is never executed twice
            return
        self._seen.add(request.id)
        task = asyncio.create_task(self._handle(request, client))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, request: m.McpRequest, client: _Sender) -> None:
        loop = asyncio.get_running_loop()

        def progress(req_id: str, stage: str, reason: str | None) -> None:
            msg = m.McpProgress(id=req_id, stage=stage, reason=reason)  # type: ignore[arg-type]
            asyncio.run_coroutine_threadsafe(client.send(msg), loop)

        sandbox = self._get_sandbox(progress)
        response = await asyncio.to_thread(sandbox.handle, request)
        with contextlib.suppress(Exception):
            await client.send(response)

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t
