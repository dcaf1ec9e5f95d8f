"""A fake project and a driver for whole command-mode turns, shared by the agent tests.

Tool results are computed with plain Python from a real directory (list_dir,
read_file, search_text) and canned ``execute_command`` outputs, then fed back as
``tool`` messages exactly as the engine would, looping model → tools → model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voco.agent.command_mode import CommandModeLLM
from voco.agent.tools import MCP_TOOLS, tool_result_content
from voco.providers.base import (
    ChatMessage,
    Finished,
    LLMEvent,
    TextDelta,
    ToolCall,
    ToolCallEvent,
)

Result = dict[str, Any]


Responder = Callable[[ToolCall], Result | None]


TREE: dict[str, str] = {
    "README.md": "# Voco\n\nA voice coding assistant.\n\n## Usage\n\nRun voco up.\n",
    "main.py": '"""Entry point."""\n\n\ndef main():\n    pass\n',
    "setup.cfg": "[metadata]\nname = voco\n",
    "config.toml": "[server]\nport = 8000\n",
    "pyproject.toml": "[project]\nname = 'voco'\n",
    ".gitignore": "__pycache__/\n",
    "src/voco/__init__.py": "",
    "src/voco/config.py": "def parse_config(path):\n    return {}\n",
    "src/voco/agent/__init__.py": "",
    "src/voco/agent/router.py": (
        "class RouterPolicy:\n    pass\n\n\ndef route_model():\n"
        "    # TODO: tiers\n    return 'haiku'\n"
    ),
    "tests/test_router.py": (
        "from voco.agent.router import route_model\n\n\ndef test_route():\n"
        "    assert route_model() == 'haiku'  # TODO more\n"
    ),
    "utils/io.py": "def read_text(p):\n    return open(p).read()\n",
    "docs/guide.md": "# Guide\n\nHow to use Voco.\n",
}


README = "README.md"


GIT_STATUS = "git status --porcelain=v1 --branch"


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def ok(result: Any) -> Result:
    return {"status": "success", "result": result}


def run_result(stdout: str = "", stderr: str = "", exit_code: int = 0, **extra: Any) -> Result:
    res = {"exit_code": exit_code, "stdout": stdout, "stderr": stderr, "timed_out": False}
    return ok({**res, "duration_ms": 12, **extra})


def execute_fs(root: Path, call: ToolCall, commands: dict[str, Result]) -> Result:
    """list_dir / read_file / search_text with plain Python, like a trusting runtime."""
    args = call.arguments
    if call.name == "execute_command":
        return commands.get(args["command"], run_result())
    target = (root / str(args.get("path", "."))).resolve()
    if not target.is_relative_to(root.resolve()):
        return {"status": "error", "code": "scope_violation", "error": "outside the roots"}
    if call.name in ("list_dir", "read_file") and not target.exists():
        return {"status": "error", "code": "not_found", "error": f"{args['path']}: no such path"}
    if call.name == "list_dir":
        entries = [
            {"name": p.name, "kind": "dir" if p.is_dir() else "file", "size": p.stat().st_size}
            for p in sorted(target.iterdir())
        ]
        return ok({"entries": entries})
    if call.name == "read_file":
        data = target.read_bytes()
        if b"\0" in data:
            return ok({"content_b64": "AAAA", "size": len(data), "truncated": False})
        return ok({"content": data.decode(), "size": len(data), "truncated": False})
    if call.name == "search_text":
        matches = []
        for path in sorted(p for p in target.rglob("*") if p.is_file()):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if args["pattern"] in line:
                    rel = path.relative_to(root).as_posix()
                    matches.append({"path": rel, "line": n, "text": line})
        return ok({"matches": matches})
    return {"status": "error", "code": "unknown_action", "error": call.name}


class Drive:
    """One user turn through CommandModeLLM, answering its tool calls."""

    def __init__(self, root: Path, commands: dict[str, Result] | None = None) -> None:
        self.root = root
        self.commands = commands or {}
        self.llm = CommandModeLLM()
        self.rounds: list[list[ToolCall]] = []  # the calls of each model response

    async def turn(
        self,
        text: str,
        *,
        history: list[ChatMessage] | None = None,
        respond: Responder | None = None,
        tools: list[Any] | None = None,
    ) -> tuple[list[ToolCall], str, list[ChatMessage]]:
        messages = [*(history or []), ChatMessage("user", text)]
        calls: list[ToolCall] = []
        spoken: list[str] = []
        for _ in range(30):
            events: list[LLMEvent] = [
                e
                async for e in self.llm.stream(
                    system="",
                    messages=messages,
                    tools=MCP_TOOLS if tools is None else tools,
                    tier="haiku",
                )
            ]
            finished = events[-1]
            assert isinstance(finished, Finished) and finished.model == "command-mode"
            assert all(not isinstance(e, Finished) for e in events[:-1])
            if finished.stop_reason == "tool_use":
                new = [e.call for e in events if isinstance(e, ToolCallEvent)]
                told = [e.text for e in events if isinstance(e, TextDelta)]
                assert new and len(events) == len(new) + len(told) + 1
                # what earlier requests of the turn found is said before the next calls
                assert all(isinstance(e, TextDelta) for e in events[: len(told)])
                spoken.append("".join(told))
                self.rounds.append(new)
                messages.append(ChatMessage("assistant", "".join(told), tool_calls=tuple(new)))
                for call in new:
                    calls.append(call)
                    result = (respond(call) if respond else None) or execute_fs(
                        self.root, call, self.commands
                    )
                    messages.append(
                        ChatMessage(
                            "tool",
                            tool_result_content(
                                result["status"],
                                result.get("result"),
                                result.get("error"),
                                result.get("code"),
                            ),
                            tool_call_id=call.id,
                        )
                    )
                continue
            assert finished.stop_reason == "end_turn"
            deltas = [e for e in events[:-1] if isinstance(e, TextDelta)]
            assert len(deltas) == len(events) - 1 and deltas
            final = "".join(d.text for d in deltas)
            messages.append(ChatMessage("assistant", final))
            return calls, "".join([*spoken, final]), messages
        raise AssertionError("command mode did not finish")


def run(drive: Drive, text: str, **kw: Any) -> tuple[list[ToolCall], str]:
    calls, reply, _ = asyncio.run(drive.turn(text, **kw))
    return calls, reply


def simple(calls: list[ToolCall]) -> list[tuple[str, dict[str, Any]]]:
    return [(c.name, c.arguments) for c in calls]


def L(path: str) -> tuple[str, dict[str, Any]]:
    return ("list_dir", {"path": path})


def R(path: str) -> tuple[str, dict[str, Any]]:
    return ("read_file", {"path": path})


def X(command: str) -> tuple[str, dict[str, Any]]:
    return ("execute_command", {"command": command})


def S(pattern: str, path: str | None = None) -> tuple[str, dict[str, Any]]:
    return ("search_text", {"pattern": pattern, **({"path": path} if path else {})})


AGENT_WALK = [L("."), L("src"), L("utils"), L("docs"), L("tests"), L("src/voco")]
