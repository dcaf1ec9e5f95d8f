"""The bridge answers every request exactly once, per session."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from voco.local.mcp_bridge import McpBridge
from voco.protocol import messages as m


class Session:
    """An engine session as the bridge sees it; ``answers`` waits on what it was sent."""

    def __init__(self) -> None:
        self.sent: list[m._Msg] = []
        self._arrived = asyncio.Condition()

    async def send(self, msg: m._Msg) -> None:
        async with self._arrived:
            self.sent.append(msg)
            self._arrived.notify_all()

    def responses(self) -> list[m.McpResponse]:
        return [x for x in self.sent if isinstance(x, m.McpResponse)]

    async def answers(self, n: int) -> list[m.McpResponse]:
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.responses()) >= n)
        return self.responses()


async def answers(s: Session, n: int) -> list[m.McpResponse]:
    return await asyncio.wait_for(s.answers(n), 30)


async def test_same_id_in_two_sessions_is_two_requests(tmp_path: Path):
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "b.txt").write_text("later")
    requested: list[str] = []

    async def observe(row: Any) -> None:
        if row.stage == "requested":
            requested.append(row.id)

    bridge = McpBridge([tmp_path], "deny", observer=observe)
    one, two = Session(), Session()
    req = m.McpRequest(id="cm_1", action="read_file", payload={"path": "a.txt"})
    bridge.submit(req, one)
    bridge.submit(req, two)
    bridge.submit(req, one)  # a replay within a session is not run again
    # a later request of the same session: had the replay been taken, its run
    # would have started first (tasks start in order), so once this one is
    # answered, everything the replay could have caused has shown up
    bridge.submit(m.McpRequest(id="cm_2", action="read_file", payload={"path": "b.txt"}), one)
    got_one, b = await answers(one, 2), await answers(two, 1)
    assert sorted(x.id for x in got_one) == ["cm_1", "cm_2"]
    # three runs: cm_1 once per session, cm_2; the replay never started
    assert len(requested) == 3 and sum(r.endswith(".cm_1") for r in requested) == 2
    a = [x for x in got_one if x.id == "cm_1"]
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
