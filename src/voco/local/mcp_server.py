"""``voco mcp --root DIR``: the sandboxed tools over MCP stdio (official ``mcp`` SDK).

Any MCP client (an IDE agent, Claude Desktop, …) gets the same five tools the
Voco engine uses, with the same guarantees: each call becomes an
``McpRequest`` answered by :class:`~voco.local.sandbox.Sandbox`, so scope
checks, risk classification, approval, bubblewrap and the audit log are shared
code, not a second implementation.

Approval (``--approve``): ``deny`` refuses every high-risk call by policy,
``all`` approves them (tests only), ``ask`` prompts on the controlling
terminal (``/dev/tty``) — stdin/stdout carry the protocol, so they can't be
used for the question. With no terminal, ``ask`` behaves like ``deny``.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from voco.local.sandbox import AuditLog, Sandbox
from voco.local.sandbox.audit import default_audit_path
from voco.local.sandbox.core import Approver
from voco.local.sandbox.display import describe_action, escape
from voco.protocol.messages import McpRequest

log = logging.getLogger(__name__)

APPROVE_MODES = ("ask", "deny", "all")


class TtyApprover:
    """Asks yes/no on ``/dev/tty``; one question at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, request: McpRequest, reason: str) -> bool:
        with self._lock:
            try:
                with open("/dev/tty", "r+", encoding="utf-8", errors="replace") as tty:
                    detail = describe_action(request.action, request.payload)
                    tty.write(f"\n[voco mcp] needs approval: {escape(reason)}\n")
                    tty.write(f"  payload: {detail}\n  approve? [y/N] ")
                    tty.flush()
                    return tty.readline().strip().lower() in ("y", "yes")
            except OSError:
                return False  # no terminal: nobody to ask, so no


def make_approver(approve: str) -> Approver | None:
    if approve not in APPROVE_MODES:
        raise ValueError(f"--approve must be one of {', '.join(APPROVE_MODES)}")
    if approve == "deny":
        return None
    if approve == "all":
        return lambda _request, _reason: True
    return TtyApprover()


def build_server(sandbox: Sandbox) -> MCPServer:
    """An ``MCPServer`` whose tools forward to ``sandbox.handle`` in a worker thread."""
    server: MCPServer = MCPServer(
        name="voco-local",
        instructions=(
            "Sandboxed access to the user's project. Paths are relative to the project root. "
            "Commands run without network in a read-only sandbox unless the user approves."
        ),
    )

    async def call(action: str, payload: dict[str, Any]) -> CallToolResult:
        request = McpRequest(id=uuid.uuid4().hex, action=action, payload=payload)
        response = await anyio.to_thread.run_sync(sandbox.handle, request)
        body = response.model_dump(exclude_none=True, exclude={"type"})
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(body, ensure_ascii=False))],
            structured_content=body,
            is_error=response.status != "success",
        )

    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(annotations=read_only)
    async def read_file(
        path: str, offset: int | None = None, length: int | None = None
    ) -> CallToolResult:
        """Read a file inside the project (UTF-8 as `content`, binary as `content_b64`)."""
        payload: dict[str, Any] = {"path": path}
        if offset is not None:
            payload["offset"] = offset
        if length is not None:
            payload["length"] = length
        return await call("read_file", payload)

    @server.tool(annotations=read_only)
    async def list_dir(path: str = ".") -> CallToolResult:
        """List a directory inside the project: entries with name, kind and size."""
        return await call("list_dir", {"path": path})

    @server.tool(annotations=read_only)
    async def search_text(pattern: str, path: str | None = None) -> CallToolResult:
        """Search files for a literal string; returns matches with path, line and text."""
        payload: dict[str, Any] = {"pattern": pattern}
        if path is not None:
            payload["path"] = path
        return await call("search_text", payload)

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False))
    async def write_file(path: str, content: str) -> CallToolResult:
        """Write a UTF-8 file inside the project (always asks the user first)."""
        return await call("write_file", {"path": path, "content": content})

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False))
    async def execute_command(
        command: str | None = None,
        argv: list[str] | None = None,
        cwd: str | None = None,
        timeout_s: float | None = None,
    ) -> CallToolResult:
        """Run a command in the sandbox (give `command` or `argv`). Read-only commands run
        directly; anything else needs the user's approval. No network; 30 s limit."""
        payload: dict[str, Any] = {}
        for key, value in (
            ("command", command),
            ("argv", argv),
            ("cwd", cwd),
            ("timeout_s", timeout_s),
        ):
            if value is not None:
                payload[key] = value
        return await call("execute_command", payload)

    return server


def run_mcp_server(roots: list[Path], approve: str, audit_path: Path | None = None) -> None:
    """Serve the sandboxed tools on stdin/stdout until the client disconnects."""
    approver = make_approver(approve)
    audit = AuditLog(audit_path or default_audit_path())
    sandbox = Sandbox(roots or [Path.cwd()], approver, audit=audit)
    try:
        build_server(sandbox).run("stdio")
    finally:
        sandbox.close()
        audit.close()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m voco.local.mcp_server --root DIR`` (the CLI's ``voco mcp`` calls
    :func:`run_mcp_server` directly)."""
    parser = argparse.ArgumentParser(prog="voco mcp", description=__doc__.split("\n")[0])
    parser.add_argument("--root", action="append", type=Path, default=[], help="allowed root")
    parser.add_argument("--approve", choices=APPROVE_MODES, default="ask")
    parser.add_argument("--audit-log", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    run_mcp_server(args.root, args.approve, args.audit_log)


if __name__ == "__main__":
    main()
