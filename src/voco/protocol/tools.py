"""The MCP tools, declared once (issue 14 §6): each one's name, what it does,
its input as JSON Schema, and whether it only reads.

Three places offer or run these tools and all read this table rather than
keeping their own copy: the engine hands them to models (``agent/tools.py``,
``MCP_TOOLS``), ``voco mcp`` publishes them to MCP clients
(``local/mcp_server.py``, which only adds the SDK's annotations and the
``command``/``argv`` rule as ``oneOf``, a keyword model APIs refuse at the top
of a tool schema), and the sandbox implements them (``local/sandbox/actions.py``
``ACTIONS``, checked against it in tests). :data:`~voco.protocol.messages.McpAction`
is the same names as a type; a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_PATH = "path relative to the project root"


@dataclass(frozen=True)
class ToolDecl:
    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool


def _obj(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


TOOLS: tuple[ToolDecl, ...] = (
    ToolDecl(
        "read_file",
        "Read a text file inside the project. Returns the text; a note follows when only "
        "part of the file was read (use `offset` to continue). Binary files are described, "
        "not dumped.",
        _obj(
            {
                "path": {"type": "string", "description": f"file {_PATH}"},
                "offset": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "first byte to read, in bytes (default 0)",
                },
                "length": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "how many bytes to read (default and cap: 1 MiB)",
                },
            },
            ["path"],
        ),
        read_only=True,
    ),
    ToolDecl(
        "list_dir",
        "List a directory inside the project: each entry's name, kind and size.",
        _obj({"path": {"type": "string", "description": f"directory {_PATH}"}}, []),
        read_only=True,
    ),
    ToolDecl(
        "search_text",
        "Search the project's files for a literal string: each hit's path, line and text.",
        _obj(
            {
                "pattern": {"type": "string", "minLength": 1, "description": "text to find"},
                "path": {
                    "type": "string",
                    "description": "file or folder to search (default: every root)",
                },
            },
            ["pattern"],
        ),
        read_only=True,
    ),
    ToolDecl(
        "write_file",
        "Write a UTF-8 file inside the project. Always needs the user's approval.",
        _obj(
            {
                "path": {"type": "string", "description": f"file {_PATH}"},
                "content": {"type": "string", "description": "the complete new file text"},
            },
            ["path", "content"],
        ),
        read_only=False,
    ),
    ToolDecl(
        "execute_command",
        "Run a command in the sandbox: no network, 30 s limit. Read-only commands run "
        "directly; anything else needs the user's approval. A non-zero exit is an error. "
        "Give exactly one of `command` or `argv`.",
        _obj(
            {
                "command": {"type": "string", "description": "a shell command line"},
                "argv": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "program and arguments, run without a shell",
                },
                "cwd": {"type": "string", "description": f"working directory {_PATH}"},
                "timeout_s": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 30,
                    "description": "time limit in seconds (max 30)",
                },
            },
            [],
        ),
        read_only=False,
    ),
)

TOOL_NAMES = frozenset(t.name for t in TOOLS)
