"""The bridge answers every request exactly once, per session."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from voco.local.mcp_bridge import McpBridge
from voco.protocol import messages as m


class Session:
    def __init__(self) -> None:
        self.sent: list[m._Msg] = []

    async def send(self, msg: m._Msg) -> None:
        self.sent.append(msg)


async def answers(s: Session, n: int) -> list[m.McpResponse]:
    for _ in range(200):
        got = [x for x in s.sent if isinstance(x, m.McpResponse)]
        if len(got) >= n:
            return got
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {n} answers, got {s.sent}")


async def test_same_id_in_two_sessions_is_two_requests(tmp_path: Path):
    (tmp_path / "a.txt").write_text("hello")
    bridge = McpBridge([tmp_path], "deny")
    one, two = Session(), Session()
    req = m.McpRequest(id="cm_1", action="read_file", payload={"path": "a.txt"})
    bridge.submit(req, one)
    bridge.submit(req, two)
    bridge.submit(req, one)  # a replay within a session is not run again
    a, b = await answers(one, 1), await answers(two, 1)
    await asyncio.sleep(0.1)
    assert len([x for x in one.sent if isinstance(x, m.McpResponse)]) == 1
    assert a[0].id == b[0].id == "cm_1"
    assert a[0].result["content"] == b[0].result["content"] == "hello"
    await bridge.aclose()


def test_terminal_prompt_cannot_be_repainted_by_the_engine(monkeypatch, capsys):
    """Attack (issue 12 High 1): ESC sequences in the command and its reason."""
    import io

    from voco.local.mcp_bridge import terminal_approver

    spoof = "\x1b[2J\x1b[H"
    command = f"rm -rf src ; '{spoof}ls -la'"
    req = m.McpRequest(id="x", action="execute_command", payload={"command": command})
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert terminal_approver(req, f"`{spoof}rm\u202e` modifies files") is False
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\u202e" not in err
    assert "rm -rf src ; '\\x1b[2J\\x1b[Hls -la'" in err
    assert "`\\x1b[2J\\x1b[Hrm\\u202e` modifies files" in err


def test_activity_status_of_a_failed_command():
    from voco.local.mcp_bridge import activity_status

    def resp(**result):
        return m.McpResponse(id="x", status="success", result=result)

    assert activity_status(resp(exit_code=0, timed_out=False)) == ("success", None)
    assert activity_status(resp(exit_code=127, timed_out=False)) == ("error", "exit_status")
    assert activity_status(resp(exit_code=None, timed_out=True)) == ("error", "timeout")
    assert activity_status(resp(size=3)) == ("success", None)


async def test_nonzero_exit_is_shown_as_failed_not_done(tmp_path: Path):
    import pytest

    from voco.local.sandbox import sandbox_status

    if not sandbox_status()[0]:
        pytest.skip("no OS sandbox: commands are never run unconfined")
    events: list[Any] = []

    async def observe(ev: Any) -> None:
        events.append(ev)

    bridge = McpBridge([tmp_path], "deny", observer=observe)
    s = Session()
    req = m.McpRequest(id="c1", action="execute_command", payload={"command": "ls missing-file"})
    bridge.submit(req, s)
    (answer,) = await answers(s, 1)
    await bridge.aclose()
    assert answer.status == "success" and answer.result["exit_code"] != 0
    assert answer.audit_hash is not None  # anchors the local audit log
    done = [e for e in events if e.stage == "done"]
    assert done and done[0].status == "error" and done[0].code == "exit_status"
    assert done[0].detail is not None and done[0].detail.exit_code != 0
