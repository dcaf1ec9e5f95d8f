"""``voco mcp --root DIR``: the sandboxed tools over MCP stdio (official ``mcp`` SDK).

Any MCP client (Claude Desktop, Cursor, an IDE agent) gets the same five tools
the Voco engine uses, with the same guarantees: each call becomes an
``McpRequest`` answered by :class:`~voco.local.sandbox.Sandbox`, so scope
checks, risk classification, approval, bubblewrap and the audit log are shared
code, not a second implementation.

Results are shaped the way MCP clients expect rather than as Voco's internal
``mcp.response`` envelope: file text is plain text content, listings, search
hits and command results are ``structuredContent`` that matches a published
``outputSchema`` (with its JSON as text, as the spec recommends), and every
failure is a tool error (``isError``) whose text says what went wrong.

Approval (``--approve``): ``deny`` refuses every high-risk call by policy,
``all`` approves them (tests only), ``ask`` asks the client's user through
elicitation, else on the controlling terminal, else refuses (see
:mod:`voco.local.mcp_approval`).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from voco import __version__
from voco.local.mcp_approval import APPROVE_MODES, AskApprover, make_approver, set_call_elicitor
from voco.local.sandbox import AuditLog, Sandbox
from voco.local.sandbox.audit import default_audit_path
from voco.local.sandbox.errors import DENIED_BY_POLICY, DENIED_BY_USER
from voco.protocol.messages import McpRequest, McpResponse
from voco.protocol.tools import TOOLS

log = logging.getLogger(__name__)

__all__ = ["APPROVE_MODES", "build_server", "make_approver", "run_mcp_server"]


class Entry(BaseModel):
    name: str
    kind: str = Field(description="file, dir, symlink or other")
    size: int = Field(description="size in bytes (0 for anything but a file)")


class Listing(BaseModel):
    entries: list[Entry]
    truncated: bool = Field(description="true if the directory had more entries than shown")


class Match(BaseModel):
    path: str = Field(description="file path relative to the project root")
    line: int = Field(description="1-based line number")
    text: str = Field(description="the matching line")


class SearchHits(BaseModel):
    matches: list[Match]
    truncated: bool = Field(description="true if the search stopped at its cap")


class CommandResult(BaseModel):
    exit_code: int = Field(description="the process's exit status; non-zero is a failure")
    stdout: str
    stderr: str
    timed_out: bool
    duration_ms: int


class Written(BaseModel):
    path: str
    bytes_written: int


class ApprovalAnswer(BaseModel):
    """The one field an elicitation form asks for."""

    approve: bool = Field(description="run this action?")


def _error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def _structured(model: BaseModel, *, is_error: bool = False) -> CallToolResult:
    body = model.model_dump(mode="json")
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(body, ensure_ascii=False))],
        structured_content=body,
        is_error=is_error,
    )


def _failure_text(response: McpResponse) -> str:
    code = response.code or "error"
    message = response.error or "the action failed"
    text = f"{message} ({code})"
    result = response.result if isinstance(response.result, dict) else None
    if result and ("stdout" in result or "stderr" in result):
        text += f"\nstdout:\n{result.get('stdout', '')}\nstderr:\n{result.get('stderr', '')}"
    return text


class _Tools:
    """The five tools, each a thin shape-changer around ``Sandbox.handle``."""

    def __init__(self, sandbox: Sandbox, approver: object) -> None:
        self.sandbox = sandbox
        self.approver = approver

    async def call(self, action: str, payload: dict[str, Any], ctx: Context) -> McpResponse:
        request = McpRequest(id=uuid.uuid4().hex, action=action, payload=payload)
        elicit = self._elicitor(ctx)

        def work() -> McpResponse:
            set_call_elicitor(elicit)
            try:
                response = self.sandbox.handle(request)
                if (
                    response.code == DENIED_BY_USER
                    and isinstance(self.approver, AskApprover)
                    and self.approver.refused_for_lack_of_asker()
                ):
                    response = response.model_copy(
                        update={
                            "code": DENIED_BY_POLICY,
                            "error": "refused by policy: nobody to ask (the MCP client does not "
                            "support elicitation and there is no terminal); "
                            + (response.error or ""),
                        }
                    )
                return response
            finally:
                set_call_elicitor(None)

        return await anyio.to_thread.run_sync(work)

    @staticmethod
    def _elicitor(ctx: Context) -> Any:
        caps = ctx.client_capabilities
        if caps is None or caps.elicitation is None:
            return None

        def elicit(message: str) -> bool | None:
            """Runs in the worker thread; hops to the event loop for the round trip.
            None means the client could not ask (fall back to the terminal)."""
            try:
                answer = anyio.from_thread.run(ctx.elicit, message, ApprovalAnswer)
            except MCPError as exc:
                log.warning("elicitation failed, falling back: %s", exc)
                return None
            return answer.action == "accept" and bool(getattr(answer.data, "approve", False))

        return elicit

    async def read_file(
        self,
        ctx: Context,
        path: str,
        offset: Annotated[int | None, Field(ge=0)] = None,
        length: Annotated[int | None, Field(ge=0)] = None,
    ) -> CallToolResult:
        """The file's text as text content, plus a note when only part was read."""
        payload: dict[str, Any] = {"path": path}
        if offset is not None:
            payload["offset"] = offset
        if length is not None:
            payload["length"] = length
        response = await self.call("read_file", payload, ctx)
        if response.status != "success" or not isinstance(response.result, dict):
            return _error(_failure_text(response))
        result = response.result
        size = int(result.get("size", 0))
        start = offset or 0
        blocks: list[TextContent] = []
        if "content" in result:
            text = str(result["content"])
            blocks.append(TextContent(type="text", text=text))
            shown = len(text.encode("utf-8"))
        else:
            shown = len(str(result.get("content_b64", ""))) * 3 // 4
            blocks.append(
                TextContent(
                    type="text",
                    text=f"{path} is a binary file ({size} bytes); its bytes are not shown.",
                )
            )
        if result.get("truncated"):
            blocks.append(
                TextContent(
                    type="text",
                    text=f"[showed bytes {start}-{start + shown} of {size}; "
                    f"call again with offset={start + shown} for more]",
                )
            )
        return CallToolResult(content=list(blocks))

    async def list_dir(
        self,
        ctx: Context,
        path: str = ".",
    ) -> Annotated[CallToolResult, Listing]:
        """The listing as structured content (``Listing``)."""
        response = await self.call("list_dir", {"path": path}, ctx)
        if response.status != "success":
            return _error(_failure_text(response))
        return _structured(Listing.model_validate(response.result))

    async def search_text(
        self,
        ctx: Context,
        pattern: Annotated[str, Field(min_length=1)],
        path: str | None = None,
    ) -> Annotated[CallToolResult, SearchHits]:
        """The hits as structured content (``SearchHits``)."""
        payload: dict[str, Any] = {"pattern": pattern}
        if path is not None:
            payload["path"] = path
        response = await self.call("search_text", payload, ctx)
        if response.status != "success":
            return _error(_failure_text(response))
        return _structured(SearchHits.model_validate(response.result))

    async def write_file(
        self,
        ctx: Context,
        path: str,
        content: str,
    ) -> Annotated[CallToolResult, Written]:
        """What was written, as structured content (``Written``)."""
        response = await self.call("write_file", {"path": path, "content": content}, ctx)
        if response.status != "success" or not isinstance(response.result, dict):
            return _error(_failure_text(response))
        return _structured(Written(path=path, bytes_written=response.result["bytes_written"]))

    async def execute_command(
        self,
        ctx: Context,
        command: str | None = None,
        argv: Annotated[
            list[str] | None,
            Field(),
        ] = None,
        cwd: str | None = None,
        timeout_s: Annotated[float | None, Field(gt=0, le=30)] = None,
    ) -> Annotated[CallToolResult, CommandResult]:
        """The command's result as structured content, an error when it exited non-zero."""
        if (command is None) == (argv is None):
            return _error("give exactly one of `command` (a string) or `argv` (a list)")
        payload: dict[str, Any] = {"command": command} if command is not None else {"argv": argv}
        if cwd is not None:
            payload["cwd"] = cwd
        if timeout_s is not None:
            payload["timeout_s"] = timeout_s
        response = await self.call("execute_command", payload, ctx)
        if response.status != "success" or not isinstance(response.result, dict):
            return _error(_failure_text(response))
        result = CommandResult.model_validate(response.result)
        return _structured(result, is_error=result.exit_code != 0)


def _tools(tools: _Tools) -> list[Tool]:
    """The protocol's tool table (:mod:`voco.protocol.tools`) as MCP tools: its
    names, descriptions and input schemas are what clients see; the methods'
    signatures only validate the arguments (a test keeps them in step)."""
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    writes = ToolAnnotations(destructive_hint=True, open_world_hint=False)
    built = []
    for decl in TOOLS:
        tool = Tool.from_function(
            getattr(tools, decl.name),
            name=decl.name,
            description=decl.description,
            annotations=read_only if decl.read_only else writes,
        )
        tool.parameters = copy.deepcopy(decl.input_schema)
        if decl.name == "execute_command":  # `command` xor `argv` (also checked in the tool)
            tool.parameters["oneOf"] = [{"required": ["command"]}, {"required": ["argv"]}]
        built.append(tool)
    return built


def build_server(sandbox: Sandbox, approver: object = None) -> MCPServer:
    """An ``MCPServer`` whose tools forward to ``sandbox.handle`` in a worker thread."""
    return MCPServer(
        name="voco-local",
        version=__version__,
        instructions=(
            "Sandboxed access to the user's project. Paths are relative to the project root. "
            "Commands run without network in a read-only sandbox unless the user approves."
        ),
        tools=_tools(_Tools(sandbox, approver)),
    )


def run_mcp_server(roots: list[Path], approve: str, audit_path: Path | None = None) -> None:
    """Serve the sandboxed tools on stdin/stdout until the client disconnects."""
    approver = make_approver(approve)
    audit = AuditLog(audit_path or default_audit_path())
    sandbox = Sandbox(roots or [Path.cwd()], approver, audit=audit)
    try:
        build_server(sandbox, approver).run("stdio")
    finally:
        sandbox.close()
        audit.close()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m voco.local.mcp_server --root DIR`` (the CLI's ``voco mcp`` calls
    :func:`run_mcp_server` directly)."""
    parser = argparse.ArgumentParser(prog="voco mcp", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--root", action="append", type=Path, default=[], help="allowed root")
    parser.add_argument("--approve", choices=APPROVE_MODES, default="ask")
    parser.add_argument("--audit-log", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    run_mcp_server(args.root, args.approve, args.audit_log)


if __name__ == "__main__":
    main()
