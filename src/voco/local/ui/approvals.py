"""Approval prompts shown in the browser, answered by the user.

The sandbox asks on its worker thread and blocks; the question goes to every
open page, the first answer wins, and no answer within the timeout — or no
page open at all — is a refusal. Nothing is approved by default.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from voco.local.sandbox.display import describe_action, escape
from voco.protocol import messages as m
from voco.protocol import ui_messages as ui

Broadcast = Callable[[m._Msg], Coroutine[Any, Any, None]]


class UiApprovals:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        broadcast: Broadcast,
        roots: Sequence[Path],
        *,
        timeout_s: float = 120.0,
    ) -> None:
        self._loop = loop
        self._broadcast = broadcast
        self._roots = [str(r) for r in roots]
        self._timeout = timeout_s
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[threading.Event, list[bool]]] = {}
        self._prompts: dict[str, ui.ApprovalRequest] = {}

    def __call__(self, request: m.McpRequest, reason: str) -> bool:
        """Runs on the sandbox's worker thread; blocks until decided."""
        event, answer = threading.Event(), [False]
        prompt = ui.ApprovalRequest(
            id=request.id,
            action=request.action,
            payload=request.payload,
            # The page shows these two, never raw engine text (see sandbox.display).
            display=describe_action(request.action, request.payload),
            reason=escape(reason),
            roots=self._roots,
        )
        with self._lock:
            self._pending[request.id] = (event, answer)
            self._prompts[request.id] = prompt
        self._post(prompt)
        decided = event.wait(self._timeout)
        with self._lock:
            self._pending.pop(request.id, None)
            self._prompts.pop(request.id, None)
        approved = decided and answer[0]
        self._post(ui.ApprovalClosed(id=request.id, approved=approved))
        return approved

    def decide(self, request_id: str, approve: bool) -> bool:
        """An answer from a page; False if nothing is pending under that id."""
        with self._lock:
            pending = self._pending.get(request_id)
            if pending is None or pending[0].is_set():
                return False
            pending[1][0] = approve is True
            pending[0].set()
        return True

    def withdraw(self, request_id: str) -> None:
        """The asking session ended: the prompt closes as a refusal."""
        self.decide(request_id, False)

    def pending(self) -> list[str]:
        with self._lock:
            return list(self._pending)

    def open_prompts(self) -> list[ui.ApprovalRequest]:
        """Prompts still waiting, for a page that connects after they were sent."""
        with self._lock:
            return list(self._prompts.values())

    def _post(self, msg: m._Msg) -> None:
        asyncio.run_coroutine_threadsafe(self._broadcast(msg), self._loop)
