"""What each MCP request of a turn became, for the tenant store's trail.

:class:`RecordingPort` sits between the graph and the session's
:class:`~voco.engine.mcp_port.SessionMcpPort` for one response and notes, per
request, the action, whether a person was asked, how it ended, and the sizes
and SHA-256 hashes of payload and result — never their contents (a file read
or command output has no place in an audit trail).
"""

from __future__ import annotations

from typing import Any

from voco.agent.context import McpOutcome, McpPort
from voco.store.tenancy import ToolActionRecord, digest

_UNANSWERED = {"timeout", "runtime_disconnected"}


class RecordingPort(McpPort):
    def __init__(self, inner: McpPort) -> None:
        self._inner = inner
        self._records: list[ToolActionRecord] = []
        self._asked: set[str] = set()

    def asked(self, call_id: str) -> None:
        """The runtime said this request awaits the user's approval."""
        self._asked.add(call_id)

    def take(self) -> tuple[ToolActionRecord, ...]:
        """Records not yet taken (a turn recorded twice lists each once)."""
        out, self._records = tuple(self._records), []
        return out

    async def call(self, call_id: str, action: str, payload: dict[str, Any]) -> McpOutcome:
        outcome: McpOutcome | None = None
        try:
            outcome = await self._inner.call(call_id, action, payload)
            return outcome
        finally:
            self._records.append(self._record(call_id, action, payload, outcome))

    def _record(
        self, call_id: str, action: str, payload: dict[str, Any], outcome: McpOutcome | None
    ) -> ToolActionRecord:
        p_bytes, p_sha = digest(payload)
        status = outcome.status if outcome is not None else "cancelled"
        code = outcome.code if outcome is not None else "interrupted"
        if status == "rejected":
            decision = "rejected"
        elif outcome is None or code in _UNANSWERED:
            decision = "unanswered" if call_id in self._asked else "auto"
        else:
            decision = "approved" if call_id in self._asked else "auto"
        r_bytes = r_sha = None
        if outcome is not None and outcome.result is not None:
            r_bytes, r_sha = digest(outcome.result)
        return ToolActionRecord(
            request_id=call_id,
            action=action[:200],
            decision=decision,
            status=status,
            error_code=code,
            payload_bytes=p_bytes,
            payload_sha256=p_sha,
            result_bytes=r_bytes,
            result_sha256=r_sha,
        )
