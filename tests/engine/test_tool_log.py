"""What the trail keeps of an MCP request: sizes and hashes, never contents."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from voco.agent.context import McpOutcome, McpPort
from voco.engine.tool_log import RecordingPort


class Answers(McpPort):
    def __init__(self, outcome: McpOutcome | None) -> None:
        self.outcome = outcome

    async def call(self, call_id: str, action: str, payload: dict[str, Any]) -> McpOutcome:
        if self.outcome is None:
            await asyncio.Event().wait()  # never answers (cancelled by the test)
        assert self.outcome is not None
        return self.outcome


SECRET = "AWS_SECRET_ACCESS_KEY=abcdef"


async def test_contents_are_hashed_not_kept() -> None:
    port = RecordingPort(Answers(McpOutcome("success", result={"content": SECRET})))
    await port.call("c1", "read_file", {"path": ".env"})
    (rec,) = port.take()
    assert SECRET not in repr(rec) and ".env" not in repr(rec)
    assert rec.decision == "auto" and rec.status == "success"
    body = '{"content":"' + SECRET + '"}'
    assert rec.result_sha256 == hashlib.sha256(body.encode()).hexdigest()
    assert rec.result_bytes == len(body)
    assert port.take() == ()  # taken once


async def test_decisions() -> None:
    asked = RecordingPort(Answers(McpOutcome("success")))
    asked.asked("c1")
    await asked.call("c1", "run_command", {"command": "rm -rf build"})
    rejected = RecordingPort(Answers(McpOutcome("rejected", code="user_rejected")))
    await rejected.call("c2", "run_command", {"command": "x"})
    hanging = RecordingPort(Answers(None))
    hanging.asked("c3")
    task = asyncio.create_task(hanging.call("c3", "write_file", {"path": "a"}))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [p.take()[0].decision for p in (asked, rejected, hanging)] == [
        "approved",
        "rejected",
        "unanswered",
    ]
