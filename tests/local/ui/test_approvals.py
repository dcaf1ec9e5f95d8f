"""What the page is sent to approve: a sanitized, complete display string."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from voco.local.ui.approvals import UiApprovals
from voco.protocol import messages as m


async def test_approval_prompt_carries_escaped_display_and_reason(tmp_path):
    """Attack (issue 12 High 1): bidi override and ESC in what the page shows."""
    sent: list[dict[str, Any]] = []
    got = asyncio.Event()

    async def broadcast(msg: Any) -> None:
        sent.append(msg.model_dump())  # the typed /ui message, as it goes on the wire
        got.set()

    ui = UiApprovals(asyncio.get_running_loop(), broadcast, [tmp_path], timeout_s=30)
    command = "cat notes\u202etxt.sh ; \x1b[2Jls"
    req = m.McpRequest(id="r1", action="execute_command", payload={"command": command})
    answer: list[bool] = []
    worker = threading.Thread(target=lambda: answer.append(ui(req, "`cat\x1b[8m` hides")))
    worker.start()
    await got.wait()
    prompt = sent[0]
    assert prompt["type"] == "approval.request"
    assert prompt["display"] == "run (shell): cat notes\\u202etxt.sh ; \\x1b[2Jls"
    assert prompt["reason"] == "`cat\\x1b[8m` hides"
    assert prompt["payload"] == {"command": command}  # the raw request stays for the record
    assert ui.decide("r1", False)
    await asyncio.to_thread(worker.join)
    assert answer == [False]
