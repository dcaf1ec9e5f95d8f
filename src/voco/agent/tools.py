"""The tools a model may call: exactly the protocol's MCP actions (§5).

A model tool call becomes one ``mcp.request`` with ``action = call.name`` and
``payload = call.arguments``; the runtime's ``mcp.response`` comes back to the
model as a ``tool`` message whose content is :func:`tool_result_content`. Keeping
the mapping 1:1 means the local sandbox, not the engine, decides what is allowed.
"""

from __future__ import annotations

import json
from typing import Any

from voco.providers.base import ToolSpec

_PATH = {"type": "string", "description": "Path relative to the project root."}

MCP_TOOLS: list[ToolSpec] = [
    ToolSpec(
        "read_file",
        "Read a text file of the user's project.",
        {
            "type": "object",
            "properties": {
                "path": _PATH,
                "offset": {"type": "integer", "minimum": 0},
                "length": {"type": "integer", "minimum": 1},
            },
            "required": ["path"],
        },
    ),
    ToolSpec(
        "list_dir",
        "List the entries of a directory of the user's project.",
        {"type": "object", "properties": {"path": _PATH}, "required": ["path"]},
    ),
    ToolSpec(
        "search_text",
        "Search the project's files for a text pattern.",
        {
            "type": "object",
            "properties": {"pattern": {"type": "string"}, "path": _PATH},
            "required": ["pattern"],
        },
    ),
    ToolSpec(
        "execute_command",
        "Run a shell command in the project (sandboxed; risky commands need the user's approval).",
        {
            "type": "object",
            "properties": {
                "command": {"type": "string"},
                "cwd": _PATH,
                "timeout_s": {"type": "number", "maximum": 30},
            },
            "required": ["command"],
        },
    ),
    ToolSpec(
        "write_file",
        "Write a file in the project (always needs the user's approval).",
        {
            "type": "object",
            "properties": {"path": _PATH, "content": {"type": "string"}},
            "required": ["path", "content"],
        },
    ),
]

TOOL_NAMES = frozenset(t.name for t in MCP_TOOLS)


def tool_result_content(
    status: str, result: Any = None, error: str | None = None, code: str | None = None
) -> str:
    """Serialise an ``mcp.response`` (or an engine-side failure such as a timeout)
    as the content of a ``tool`` message. JSON so every model provider and the
    offline command mode read the same thing."""
    body: dict[str, Any] = {"status": status}
    if result is not None:
        body["result"] = result
    if error is not None:
        body["error"] = error
    if code is not None:
        body["code"] = code
    return json.dumps(body, ensure_ascii=False)


def parse_tool_result(content: str) -> dict[str, Any]:
    """Inverse of :func:`tool_result_content`; tolerant of non-JSON content."""
    try:
        obj = json.loads(content)
    except ValueError:
        return {"status": "error", "error": content}
    return obj if isinstance(obj, dict) else {"status": "error", "error": content}
