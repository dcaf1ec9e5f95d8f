"""The MCP stdio server, spawned for real and driven by the official SDK client."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from voco.local.sandbox import sandbox_status, verify

pytestmark = pytest.mark.timeout(60)


async def test_tools_over_stdio(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "hello.txt").write_text("hello from the root\n")
    (tmp_path / "secret.txt").write_text("OUTSIDE-SECRET")
    audit = tmp_path / "audit.jsonl"
    params = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "voco.local.mcp_server",
            "--root",
            str(root),
            "--approve",
            "deny",
            "--audit-log",
            str(audit),
        ],
    )
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {"read_file", "list_dir", "search_text", "write_file", "execute_command"}

        ok = await client.call_tool("read_file", {"path": "hello.txt"})
        assert not ok.is_error
        assert ok.structured_content["status"] == "success"
        assert ok.structured_content["result"]["content"] == "hello from the root\n"

        out = await client.call_tool("read_file", {"path": "../secret.txt"})
        assert out.is_error and out.structured_content["code"] == "scope_violation"
        assert "OUTSIDE-SECRET" not in str(out.model_dump())

        denied = await client.call_tool("write_file", {"path": "x.txt", "content": "x"})
        assert denied.is_error and denied.structured_content["code"] == "denied_by_policy"
        assert not (root / "x.txt").exists()

        listing = await client.call_tool("list_dir", {})
        assert [e["name"] for e in listing.structured_content["result"]["entries"]] == ["hello.txt"]

        if sandbox_status()[0]:  # commands only ever run under bubblewrap
            ran = await client.call_tool("execute_command", {"argv": ["cat", "hello.txt"]})
            assert ran.structured_content["result"]["stdout"] == "hello from the root\n"
    assert verify(audit).ok
