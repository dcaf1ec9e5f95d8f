"""The tools a model may call: exactly the protocol's MCP actions (§5), from
the one table in :mod:`voco.protocol.tools`.

A model tool call becomes one ``mcp.request`` with ``action = call.name`` and
``payload = call.arguments``; the runtime's ``mcp.response`` comes back to the
model as a ``tool`` message whose content is :func:`tool_result_content`. Keeping
the mapping 1:1 means the local sandbox, not the engine, decides what is allowed.
"""

from __future__ import annotations

import json
from typing import Any

from voco.protocol.tools import TOOL_NAMES, TOOLS
from voco.providers.base import ToolSpec

__all__ = ["MCP_TOOLS", "TOOL_NAMES", "parse_tool_result", "tool_result_content"]

# the protocol's table, as the tool specs models are given
MCP_TOOLS: list[ToolSpec] = [ToolSpec(t.name, t.description, t.input_schema) for t in TOOLS]


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
