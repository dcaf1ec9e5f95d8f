"""The MCP stdio server, spawned for real and driven by the official SDK client."""

from __future__ import annotations

import os
import pty
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, types
from mcp.client.stdio import StdioServerParameters

import voco
from voco.local.mcp_approval import TtyApprover
from voco.local.sandbox import sandbox_status, verify
from voco.protocol.messages import McpRequest

pytestmark = pytest.mark.timeout(60)


def _params(
    root: Path, audit: Path, approve: str, *, detach: bool = False
) -> StdioServerParameters:
    args = ["-m", "voco.local.mcp_server", "--root", str(root), "--approve", approve]
    args += ["--audit-log", str(audit)]
    if detach:  # no controlling terminal: /dev/tty cannot be opened
        return StdioServerParameters(
            command=shutil.which("setsid") or "setsid", args=[sys.executable, *args]
        )
    return StdioServerParameters(command=sys.executable, args=args)


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "hello.txt").write_text("hello from the root\n")
    (tmp_path / "secret.txt").write_text("OUTSIDE-SECRET")
    return root


def _text(result: types.CallToolResult) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, types.TextContent))


async def test_tools_return_native_mcp_results(proj: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    async with Client(_params(proj, audit, "deny")) as client:
        assert client.server_info is not None
        assert client.server_info.version == voco.__version__
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {
            "read_file",
            "list_dir",
            "search_text",
            "write_file",
            "execute_command",
        }
        read_props = tools["read_file"].input_schema["properties"]
        assert "bytes" in read_props["offset"]["description"]
        assert "bytes" in read_props["length"]["description"]
        assert tools["read_file"].input_schema["required"] == ["path"]
        assert tools["execute_command"].input_schema["oneOf"] == [
            {"required": ["command"]},
            {"required": ["argv"]},
        ]
        for name in ("list_dir", "search_text", "write_file", "execute_command"):
            assert tools[name].output_schema is not None, name

        ok = await client.call_tool("read_file", {"path": "hello.txt"})
        assert not ok.is_error
        assert _text(ok) == "hello from the root\n"  # the file's text, not an envelope
        assert ok.structured_content is None

        part = await client.call_tool("read_file", {"path": "hello.txt", "offset": 6, "length": 4})
        assert part.content[0].text == "from"
        assert "offset=10" in _text(part)

        listing = await client.call_tool("list_dir", {})
        assert not listing.is_error
        assert listing.structured_content == {
            "entries": [{"name": "hello.txt", "kind": "file", "size": 20}],
            "truncated": False,
        }
        assert "status" not in _text(listing)

        hits = await client.call_tool("search_text", {"pattern": "from the"})
        assert hits.structured_content["matches"][0]["path"].endswith("hello.txt")
        assert hits.structured_content["matches"][0]["line"] == 1

        out = await client.call_tool("read_file", {"path": "../secret.txt"})
        assert out.is_error and "scope_violation" in _text(out)
        assert "OUTSIDE-SECRET" not in str(out.model_dump())

        denied = await client.call_tool("write_file", {"path": "x.txt", "content": "x"})
        assert denied.is_error and "denied_by_policy" in _text(denied)
        assert not (proj / "x.txt").exists()

        neither = await client.call_tool("execute_command", {})
        assert neither.is_error and "`command`" in _text(neither) and "`argv`" in _text(neither)

        if sandbox_status()[0]:  # commands only ever run under bubblewrap
            ran = await client.call_tool("execute_command", {"argv": ["cat", "hello.txt"]})
            assert not ran.is_error
            assert ran.structured_content["stdout"] == "hello from the root\n"
            failed = await client.call_tool("execute_command", {"argv": ["ls", "nope"]})
            assert failed.is_error and failed.structured_content["exit_code"] != 0
    assert verify(audit).ok


class _Elicitations:
    def __init__(self, approve: bool) -> None:
        self.approve = approve
        self.messages: list[str] = []

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.messages.append(params.message)
        return types.ElicitResult(action="accept", content={"approve": self.approve})


@pytest.mark.parametrize("approve", [True, False])
async def test_ask_uses_client_elicitation_per_call(
    proj: Path, tmp_path: Path, approve: bool
) -> None:
    answers = _Elicitations(approve)
    content = "print('hi')\n" + "# padding\n" * 80  # longer than the old 500-character cut
    async with Client(
        _params(proj, tmp_path / "audit.jsonl", "ask", detach=True),
        mode="legacy",
        elicitation_callback=answers,
    ) as client:
        out = await client.call_tool("write_file", {"path": "new.py", "content": content})
    assert len(answers.messages) == 1
    assert "write_file" in answers.messages[0]
    assert "# padding\\n" * 80 in answers.messages[0]  # the complete action, escaped
    if approve:
        assert not out.is_error, _text(out)
        assert (proj / "new.py").read_text() == content
    else:
        assert out.is_error and "denied_by_user" in _text(out)
        assert not (proj / "new.py").exists()


@pytest.mark.parametrize("client_kind", ["no elicitation", "modern, no back-channel"])
async def test_ask_with_nobody_to_ask_is_refused_by_policy(
    proj: Path, tmp_path: Path, client_kind: str
) -> None:
    """No terminal, and a client that cannot (or, on the stateless modern
    protocol, has no channel to) ask: refused by policy, saying why."""
    answers = _Elicitations(True)
    kw: dict[str, Any] = {}
    if client_kind != "no elicitation":
        kw["elicitation_callback"] = answers
    async with Client(_params(proj, tmp_path / "audit.jsonl", "ask", detach=True), **kw) as client:
        out = await client.call_tool("write_file", {"path": "x.txt", "content": "x"})
    assert out.is_error
    assert "denied_by_policy" in _text(out) and "nobody to ask" in _text(out)
    assert not (proj / "x.txt").exists()


def test_tty_prompt_is_binary_escaped_and_complete() -> None:
    """The attack: a payload that clears the screen and paints a harmless prompt."""
    master, slave = pty.openpty()
    name = os.ttyname(slave)
    evil = "rm -rf src ; '\x1b[2J\x1b[H\u202e" + "x" * 600 + "'"
    request = McpRequest(id="r1", action="execute_command", payload={"command": evil})
    seen = bytearray()
    got_prompt = threading.Event()

    def terminal() -> None:
        while b"[y/N]" not in seen:
            seen.extend(os.read(master, 4096))
        got_prompt.set()
        os.write(master, b"y\n")

    reader = threading.Thread(target=terminal, daemon=True)
    reader.start()
    try:
        assert TtyApprover(name)(request, "deletes files") is True
    finally:
        reader.join(10)
        os.close(master)
        os.close(slave)
    assert got_prompt.is_set()
    shown = seen.decode("utf-8", "replace")
    assert "\x1b" not in shown and "\u202e" not in shown
    assert "\\x1b[2J" in shown and "\\u202e" in shown  # visible, not obeyed
    assert "x" * 600 in shown  # the complete payload, not the first 500 characters


def test_tty_refuses_anything_but_yes() -> None:
    master, slave = pty.openpty()
    name = os.ttyname(slave)
    os.write(master, b"sure\n")
    request = McpRequest(id="r1", action="write_file", payload={"path": "a", "content": "b"})
    try:
        assert TtyApprover(name)(request, "writes a file") is False
    finally:
        os.close(master)
        os.close(slave)
