"""The offline command mode, driven through a fake project tree on ``tmp_path``.

Tool results are computed with plain Python from a real directory (list_dir,
read_file, search_text) and canned ``execute_command`` outputs, then fed back as
``tool`` messages exactly as the engine would, looping model → tools → model.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from voco.agent.command_intents import parse_utterance
from voco.agent.command_mode import CommandModeLLM, current_turn, decide, speech_chunks
from voco.agent.command_plan import choose_test_command, pattern_variants
from voco.agent.name_lookup import Call, Reply
from voco.agent.spoken_names import (
    Entry,
    name_score,
    normalise_spoken_name,
    rank_entries,
    speak_name,
    speak_path,
)
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


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "project", TREE)


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
                assert new and len(events) == len(new) + 1
                self.rounds.append(new)
                messages.append(ChatMessage("assistant", tool_calls=tuple(new)))
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
            reply = "".join(d.text for d in deltas)
            messages.append(ChatMessage("assistant", reply))
            return calls, reply, messages
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

# Spoken phrasing (as a recogniser writes it) → the exact tool calls, in order.
PHRASES: list[tuple[str, list[tuple[str, dict[str, Any]]]]] = [
    # open / read / show a file
    ("Open the readme.", [L("."), R(README)]),
    ("Open the README.", [L("."), R(README)]),
    ("Read the read me.", [L("."), R(README)]),
    ("Okay, can you please open the readme?", [L("."), R(README)]),
    ("Show me main dot py.", [L("."), R("main.py")]),
    ("main dot py", [L("."), R("main.py")]),
    ("Main.py.", [L("."), R("main.py")]),
    ("Show me the main dot pie file.", [L("."), R("main.py")]),
    # misheard: no strong match anywhere, so the walk goes on; main.py is still the best
    ("Open mane dot py.", [*AGENT_WALK, L("src/voco/agent"), R("main.py")]),
    ("Show me setup dot cfg.", [L("."), R("setup.cfg")]),
    ("Read the first lines of main dot py.", [L("."), R("main.py")]),
    ("What does main dot py say?", [L("."), R("main.py")]),
    ("Open set up dot c f g.", [L("."), R("setup.cfg")]),
    ("Read the file utils slash io dot py.", [L("."), L("utils"), R("utils/io.py")]),
    ("Open utils slash I O dot py.", [L("."), L("utils"), R("utils/io.py")]),
    ("Open the config.", [L("."), R("config.toml")]),
    ("Look at the git ignore.", [L("."), R(".gitignore")]),
    ("Open router dot py.", [*AGENT_WALK, L("src/voco/agent"), R("src/voco/agent/router.py")]),
    ("Show me the guide in docs.", [L("."), L("docs"), R("docs/guide.md")]),
    ("Open the guide in the docs folder.", [L("."), L("docs"), R("docs/guide.md")]),
    # list a folder
    ("List the files in src.", [L("."), L("src")]),
    ("List the files in source.", [L("."), L("src")]),
    ("What's in the tests folder?", [L("."), L("tests")]),
    ("Show the directory.", [L(".")]),
    ("List files.", [L(".")]),
    ("What files are in this project?", [L(".")]),
    ("List the files in the repo.", [L(".")]),
    ("Show me the files in here.", [L(".")]),
    ("What files are there?", [L(".")]),
    ("How many files are there?", [L(".")]),
    ("Open the docs folder.", [L("."), L("docs")]),
    ("List the files in source slash voco.", [L("."), L("src"), L("src/voco")]),
    ("What's in the agent folder?", [*AGENT_WALK, L("src/voco/agent")]),
    # run the tests
    ("Run the tests.", [L("."), X("pytest -q")]),
    ("Hey Voco, run the tests please.", [L("."), X("pytest -q")]),
    ("Run the unit tests.", [L("."), X("pytest -q")]),
    ("Are the tests passing?", [L("."), X("pytest -q")]),
    ("Make test.", [L("."), X("make test")]),
    ("Run the JavaScript tests.", [L("."), X("npm test")]),
    # explicit commands
    ("Run pytest dash dash verbose.", [X("pytest --verbose")]),
    ("Run npm install.", [X("npm install")]),
    # git
    ("Git status.", [X(GIT_STATUS)]),
    ("What's the status of the repo?", [X(GIT_STATUS)]),
    ("Do I have uncommitted changes?", [X(GIT_STATUS)]),
    ("What changed?", [X("git diff --stat")]),
    ("Show me the diff.", [X("git diff --stat")]),
    ("Show the last commits.", [X("git log --oneline -n 5")]),
    ("Show me the last three commits.", [X("git log --oneline -n 3")]),
    ("What was the last commit?", [X("git log --oneline -n 1")]),
    ("What branch am I on?", [X("git branch --show-current")]),
    ("Which branch is this?", [X("git branch --show-current")]),
    # search
    ("Search for TODO.", [S("TODO")]),
    ("Find the to-dos.", [S("TODO")]),
    (
        "Grep for route model.",
        [S("route_model"), S("routeModel"), S("RouteModel"), S("route model")],
    ),
    (
        "Find where parse config is defined.",
        [S("parse_config"), S("parseConfig"), S("ParseConfig"), S("parse config")],
    ),
    ("Where is RouterPolicy defined?", [S("RouterPolicy")]),
    (
        "Search for read text in utils.",
        [L("."), *(S(p, "utils") for p in ("read_text", "readText", "ReadText", "read text"))],
    ),
    (
        "Where is route model used?",
        [S("route_model"), S("routeModel"), S("RouteModel"), S("route model")],
    ),
    # locate
    ("Where is the config file?", [L(".")]),
    ("Find main dot py.", [L(".")]),
    # where am I
    ("Where am I?", [L("."), ("read_file", {"path": README, "length": 4000})]),
    ("What project is this?", [L("."), ("read_file", {"path": README, "length": 4000})]),
    # no tools
    ("Stop.", []),
    ("Never mind.", []),
    ("Cancel that.", []),
    ("Hello.", []),
    ("Thank you!", []),
    ("What can you do?", []),
    ("Create a file called notes dot txt.", []),
    ("Delete the build folder.", []),
    ("Why is the build failing?", []),
    ("", []),
]


def test_phrase_table_is_big_enough() -> None:
    assert len(PHRASES) >= 40


@pytest.mark.parametrize(("text", "expected"), PHRASES)
def test_spoken_phrasings(project: Path, text: str, expected: list[Any]) -> None:
    commands = {}
    if "JavaScript" in text or "Make test" in text:
        make_tree(project, {"package.json": "{}", "Makefile": "test:\n"})
    calls, reply = run(Drive(project, commands), text)
    assert simple(calls) == expected, reply
    assert reply
    assert len(reply.split()) <= 42, reply
    assert not re.search(r"[#*`]|\n", reply), reply  # TTS-friendly: no markdown


# ---------------------------------------------------------------------------- replies


def test_read_summary_markdown(project: Path) -> None:
    _, reply = run(Drive(project), "Open the readme.")
    assert reply == "README dot md has 7 lines. It starts: Voco. A voice coding assistant."


def test_read_summary_code_names_definitions(project: Path) -> None:
    _, reply = run(Drive(project), "Open router dot py.")
    assert reply.startswith("router dot py in the agent folder has 7 lines.")
    assert reply.endswith("It defines RouterPolicy and route model.")


def test_read_summary_docstring_first(project: Path) -> None:
    _, reply = run(Drive(project), "Open main dot py.")
    assert reply == "main dot py has 5 lines. It starts: Entry point. It defines main."


def test_read_summary_skips_badges_and_html(project: Path) -> None:
    make_tree(
        project,
        {"NOTES.md": '<h1 align="center">Notes</h1>\n[![ci](x.svg)](y)\n\nThings to remember.\n'},
    )
    _, reply = run(Drive(project), "Open notes dot md.")
    assert reply == "NOTES dot md has 4 lines. It starts: Notes. Things to remember."


def test_read_summary_empty_binary_truncated(project: Path) -> None:
    make_tree(project, {"empty.txt": "", "notes.txt": "hello\n" * 50})
    (project / "logo.png").write_bytes(b"\x89PNG\0" * 400)
    drive = Drive(project)
    assert run(drive, "Open empty dot txt.")[1] == "empty dot txt is empty."
    assert run(drive, "Open logo dot png.")[1] == "logo dot png is a binary file of 2 kilobytes."

    def truncated(call: ToolCall) -> Result | None:
        if call.name == "read_file":
            return ok({"content": "hello\n" * 20, "size": 9999, "truncated": True})
        return None

    reply = run(drive, "Open notes dot txt.", respond=truncated)[1]
    assert reply.startswith("notes dot txt has over 20 lines.")


def test_list_summary_counts_and_first_names(project: Path) -> None:
    _, reply = run(Drive(project), "Show the directory.")
    assert reply == (
        "The project root has 4 folders and 6 files. "
        "The first ones are docs, src, tests, utils and README dot md."
    )


def test_list_summary_small_folder_lists_all(project: Path) -> None:
    _, reply = run(Drive(project), "List the files in source slash voco.")
    assert reply == (
        "The voco folder has 1 folder and 2 files: agent, init dot py and config dot py."
    )


def test_list_summary_empty_folder(project: Path) -> None:
    (project / "empty").mkdir()
    _, reply = run(Drive(project), "What's in the empty folder?")
    assert reply == "The empty folder is empty."


def test_lookup_lists_a_whole_level_per_round(project: Path) -> None:
    drive = Drive(project)
    run(drive, "Open router dot py.")
    assert [simple(r) for r in drive.rounds] == [
        [L(".")],
        [L("src"), L("utils"), L("docs"), L("tests")],
        [L("src/voco")],
        [L("src/voco/agent")],
        [R("src/voco/agent/router.py")],
    ]
    # 5 tool rounds + the reply: within the graph's default of 8 model steps per turn


def test_lookup_budget_and_depth_are_bounded(tmp_path: Path) -> None:
    files = {f"d{i}/e/f/g/h/deep.txt": "x" for i in range(12)}
    drive = Drive(make_tree(tmp_path, files))
    calls, reply = run(drive, "Open deep dot txt.")
    assert len(calls) <= 10 and len(drive.rounds) <= 4
    assert reply == "I couldn't find anything called deep dot txt."


def test_round_limit_stops_a_runaway_turn() -> None:
    user = ChatMessage("user", "Git status.")
    messages = [user]
    for i in range(6):
        call = ToolCall(f"c{i}", "list_dir", {"path": f"x{i}"})
        messages += [
            ChatMessage("assistant", tool_calls=(call,)),
            ChatMessage(
                "tool", tool_result_content("success", {"entries": []}), tool_call_id=call.id
            ),
        ]
    decision = decide(messages)
    assert isinstance(decision, Reply) and "too many steps" in decision.text


def test_not_found_offers_closest(project: Path) -> None:
    calls, reply = run(Drive(project), "Open mailer dot py.")
    assert all(c.name == "list_dir" for c in calls)
    assert reply.startswith("I couldn't find anything called mailer dot py.")
    assert "main dot py" in reply


def test_ambiguous_name_asks(project: Path) -> None:
    make_tree(project, {"config.yaml": "a: 1\n"})
    calls, reply = run(Drive(project), "Open the config.")
    assert simple(calls) == [L(".")]
    assert reply == "Did you mean config dot toml or config dot yaml?"


def test_locate_reply(project: Path) -> None:
    assert run(Drive(project), "Where is the config file?")[1] == (
        "config dot toml is at the project root."
    )
    _, reply = run(Drive(project), "Where is the router file?")
    assert reply == "router dot py is in src slash voco slash agent."


def test_where_am_i_reply(project: Path) -> None:
    _, reply = run(Drive(project), "Where am I?")
    assert reply == (
        "This is Voco. A voice coding assistant. It looks like a Python project, "
        "with 4 folders and 6 files at the root."
    )


def test_where_am_i_without_readme(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"go.mod": "module x\n", "cmd/main.go": "package main\n"})
    calls, reply = run(Drive(root), "What project is this?")
    assert simple(calls) == [L(".")]
    assert reply == "It looks like a Go project, with 1 folder and 1 file at the root."


def test_search_summary_counts_matches_and_files(project: Path) -> None:
    _, reply = run(Drive(project), "Search for TODO.")
    assert reply == (
        "I found 2 matches for TODO in 2 files. "
        "The first is in router dot py in the agent folder, line 6."
    )


def test_search_one_match(project: Path) -> None:
    _, reply = run(Drive(project), "Grep for read text.")
    assert reply == "I found one match for read text, in io dot py in utils, line 1."


def test_search_tries_spellings_then_gives_up(project: Path) -> None:
    calls, reply = run(Drive(project), "Search for missing thing.")
    assert simple(calls) == [
        S("missing_thing"),
        S("missingThing"),
        S("MissingThing"),
        S("missing thing"),
    ]
    assert reply == "I found no matches for missing thing."


def test_search_falls_back_to_camel_case(project: Path) -> None:
    calls, reply = run(Drive(project), "Find where router policy is defined.")
    assert simple(calls) == [
        S("router_policy"),
        S("routerPolicy"),
        S("RouterPolicy"),
        S("router policy"),
    ]
    assert reply == "RouterPolicy is defined in router dot py in the agent folder, line 1."


def test_define_reply(project: Path) -> None:
    _, reply = run(Drive(project), "Find where parse config is defined.")
    assert reply == "parse config is defined in config dot py in src slash voco, line 1."


def test_define_without_definition(project: Path) -> None:
    make_tree(project, {"notes.txt": "call read_it here\n"})
    _, reply = run(Drive(project), "Where is read it defined?")
    assert reply.startswith("I didn't find a definition of read it, but it appears 1 time")


def test_needs_language_model_answers(project: Path) -> None:
    for text, start in [
        ("Create a file called notes dot txt.", "Creating or writing files needs a language"),
        ("Delete the build folder.", "Deleting files needs a language model"),
        ("Refactor the router.", "Editing code needs a language model"),
        ("Commit my changes.", "Changing the git repository needs a language model"),
        ("Why is the build failing?", "I can't do that in command mode"),
        ("Run the server.", "Running that needs a language model"),
    ]:
        calls, reply = run(Drive(project), text)
        assert calls == []
        assert reply.startswith(start), reply
        assert "ANTHROPIC_API_KEY" in reply and "voco serve --llm anthropic" in reply
        assert "--llm openai" in reply and "VOCO_OPENAI_BASE_URL" in reply


def test_small_talk_replies(project: Path) -> None:
    drive = Drive(project)
    assert run(drive, "Stop.")[1] == "Okay."
    assert run(drive, "Thanks, that's all.")[1] == "You're welcome."
    assert run(drive, "Hello.")[1].startswith("Hi! I'm in command mode")
    assert "run the tests" in run(drive, "What can you do?")[1]
    assert run(drive, "")[1] == "I didn't catch that. Could you say it again?"


# ---------------------------------------------------------------------------- commands


PYTEST_FAIL = (
    "..F.\n=========================== short test summary info ============================\n"
    "FAILED tests/test_router.py::test_long_request - AssertionError\n"
    "1 failed, 3 passed, 1 skipped in 0.12s\n"
)


@pytest.mark.parametrize(
    ("command", "result", "expected"),
    [
        ("pytest -q", run_result("....\n4 passed in 0.05s\n"), "Tests passed: 4 passed."),
        (
            "pytest -q",
            run_result(PYTEST_FAIL, exit_code=1),
            "Tests failed: 1 failed, 3 passed and 1 skipped. "
            "The first failure is test long request in test router dot py.",
        ),
        (
            "pytest -q",
            run_result("\nno tests ran in 0.01s\n", exit_code=5),
            "No tests were collected.",
        ),
        (
            "npm test",
            run_result(
                "",
                "  ● Router › picks haiku\n\nTests:       1 failed, 12 passed, 13 total\n",
                exit_code=1,
            ),
            "Tests failed: 1 failed and 12 passed. The first failure is Router , picks haiku.",
        ),
        (
            "npm test",
            run_result("  Tests  2 failed | 10 passed (12)\n", exit_code=1),
            "Tests failed: 2 failed and 10 passed.",
        ),
        (
            "npm test",
            run_result("  12 passing (30ms)\n  1 pending\n"),
            "Tests passed: 12 passed and 1 pending.",
        ),
        (
            "npm test",
            run_result("", 'npm ERR! Missing script: "test"\n', exit_code=1),
            "This project's package json has no test script.",
        ),
        (
            "cargo test",
            run_result("test result: ok. 7 passed; 0 failed; 1 ignored; 0 measured\n"),
            "Tests passed: 7 passed and 1 skipped.",
        ),
        (
            "go test ./...",
            run_result(
                "ok  \tx/a\t0.01s\n--- FAIL: TestB (0.00s)\nFAIL\tx/b\t0.02s\n", exit_code=1
            ),
            "Tests failed: 1 package failed and 1 package passed. The first failure is TestB.",
        ),
        (
            "make test",
            run_result("", "boom\n", exit_code=2),
            "The tests failed with exit code 2. Last line: boom",
        ),
        (
            "npm install",
            run_result("added 3 packages\n"),
            "Done. The last line was: added 3 packages",
        ),
        ("npm install", run_result(""), "Done, with no output."),
        (
            "ls nope",
            run_result("", "ls: nope: No such file\n", exit_code=2),
            "That failed with exit code 2. The last line was: ls: nope: No such file",
        ),
        (
            "pytest -q",
            run_result("", "sh: pytest: command not found\n", exit_code=127),
            "pytest isn't installed on your computer.",
        ),
        (
            "pytest -q",
            run_result("", "", exit_code=-9, timed_out=True),
            "That command took too long, so it was stopped after 30 seconds.",
        ),
    ],
)
def test_command_summaries(project: Path, command: str, result: Result, expected: str) -> None:
    drive = Drive(project, {command: result})
    text = {
        "pytest -q": "Run the tests.",
        "npm test": "Run the JavaScript tests.",
        "cargo test": "Run cargo test.",
        "go test ./...": "Run go test ./...",
        "make test": "Make test.",
    }.get(command, f"Run {command}.")
    if command == "npm test":
        make_tree(project, {"package.json": "{}"})
    calls, reply = run(drive, text)
    assert calls[-1].arguments == {"command": command}
    assert reply == expected


def test_git_summaries(project: Path) -> None:
    status = "## main...origin/main [ahead 2]\n M src/a.py\nM  b.py\n?? new.txt\n?? other.txt\n"
    drive = Drive(
        project,
        {
            GIT_STATUS: run_result(status),
            "git diff --stat": run_result(
                " src/a.py | 12 +++++-----\n b.py | 3 ++-\n"
                " 2 files changed, 8 insertions(+), 7 deletions(-)\n"
            ),
            "git log --oneline -n 5": run_result(
                "a1b2c3d Add the model router\n9f8e7d6 Fix barge-in timing\n"
                "0011223 Initial commit\n"
            ),
            "git branch --show-current": run_result("feature/router\n"),
        },
    )
    assert run(drive, "Git status.")[1] == (
        "You're on main, 2 commits ahead. 4 files changed: 1 modified, 1 staged and 2 untracked."
    )
    assert run(drive, "What changed?")[1] == (
        "2 files changed: 8 lines added and 7 removed. Most changes are in a dot py in src."
    )
    assert run(drive, "Show the last commits.")[1] == (
        "The last 3 commits are: Add the model router; Fix barge-in timing; Initial commit."
    )
    assert run(drive, "What branch am I on?")[1] == "You're on branch feature/router."


def test_git_clean_empty_and_detached(project: Path) -> None:
    drive = Drive(
        project,
        {
            GIT_STATUS: run_result("## main\n"),
            "git diff --stat": run_result(""),
            "git branch --show-current": run_result("\n"),
            "git log --oneline -n 5": run_result(""),
        },
    )
    assert run(drive, "Git status.")[1] == "You're on main. The working tree is clean."
    assert run(drive, "What changed?")[1] == "There are no unstaged changes."
    assert run(drive, "Which branch is this?")[1] == "You're not on a branch; HEAD is detached."
    assert run(drive, "Show the last commits.")[1] == "There are no commits yet."


def test_not_a_git_repository(project: Path) -> None:
    failing = run_result("", "fatal: not a git repository (or any parent)\n", exit_code=128)
    _, reply = run(Drive(project, {GIT_STATUS: failing}), "Git status.")
    assert reply == "This folder isn't a git repository."


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"pyproject.toml": "", "uv.lock": ""}, "uv run pytest -q"),
        ({"setup.py": ""}, "pytest -q"),
        ({"package.json": "{}"}, "npm test"),
        ({"package.json": "{}", "yarn.lock": ""}, "yarn test"),
        ({"package.json": "{}", "pnpm-lock.yaml": ""}, "pnpm test"),
        ({"Makefile": "test:\n"}, "make test"),
        ({"Cargo.toml": ""}, "cargo test"),
        ({"go.mod": ""}, "go test ./..."),
    ],
)
def test_test_command_from_project_files(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    calls, _ = run(Drive(make_tree(tmp_path, files)), "Run the tests.")
    assert simple(calls) == [L("."), X(expected)]


def test_no_test_runner_found(tmp_path: Path) -> None:
    calls, reply = run(Drive(make_tree(tmp_path, {"notes.txt": "x"})), "Run the tests.")
    assert simple(calls) == [L(".")]
    assert reply.startswith("I couldn't tell how to run the tests here")


def test_choose_test_command_said_runner_wins() -> None:
    assert choose_test_command("rust", {"pyproject.toml"}) == "cargo test"
    assert choose_test_command("", set()) == ""


# ---------------------------------------------------------------------------- errors


def _error(status: str, code: str | None, error: str = "x") -> Responder:
    def respond(call: ToolCall) -> Result | None:
        if call.name in ("execute_command", "read_file", "search_text"):
            return {"status": status, "code": code, "error": error}
        return None

    return respond


@pytest.mark.parametrize(
    ("text", "status", "code", "error", "expected"),
    [
        ("Run the tests.", "rejected", "denied_by_user", "no", "Okay, I won't run that."),
        ("Open the readme.", "rejected", "denied_by_user", "no", "Okay, I won't open that."),
        (
            "Run npm install.",
            "rejected",
            "denied_by_policy",
            "policy",
            "Your local runtime's policy doesn't allow that, so I didn't run it.",
        ),
        (
            "Open the readme.",
            "error",
            "scope_violation",
            "outside",
            "README dot md is outside the folders you've shared, so I can't open it.",
        ),
        ("Open the readme.", "error", "not_found", "gone", "I couldn't find README dot md."),
        (
            "Open the readme.",
            "error",
            "too_large",
            "big",
            "README dot md is too large for me to open.",
        ),
        (
            "Run the tests.",
            "error",
            "timeout",
            "killed after 30 s",
            "That command took too long, so it was stopped after 30 seconds.",
        ),
        (
            "Run the tests.",
            "error",
            "timeout",
            "the local runtime did not answer",
            "I've lost the connection to your computer, so I can't reach the project right now.",
        ),
        (
            "Open the readme.",
            "error",
            "timeout",
            "waited 30 s",
            "I've lost the connection to your computer, so I can't reach the project right now.",
        ),
        (
            "Git status.",
            "error",
            "runtime_disconnected",
            "gone",
            "I've lost the connection to your computer, so I can't reach the project right now.",
        ),
        (
            "Search for TODO.",
            "error",
            "invalid_request",
            "bad pattern",
            "Your local runtime couldn't search that; it rejected the request as invalid.",
        ),
        (
            "Git status.",
            "error",
            "internal",
            "disk on fire\ntrace",
            "That didn't work: disk on fire",
        ),
    ],
)
def test_tool_errors(
    project: Path, text: str, status: str, code: str, error: str, expected: str
) -> None:
    _, reply = run(Drive(project), text, respond=_error(status, code, error))
    assert reply == expected


def test_interrupted_tool_call(project: Path) -> None:
    respond = _error("error", "interrupted", "cancelled: the user interrupted")
    assert run(Drive(project), "Git status.", respond=respond)[1] == (
        "Okay, I stopped before I could run that."
    )


def test_list_dir_errors(project: Path) -> None:
    def gone(call: ToolCall) -> Result | None:
        return {"status": "error", "code": "runtime_disconnected", "error": "runtime gone"}

    calls, reply = run(Drive(project), "List files.", respond=gone)
    assert len(calls) == 1
    assert reply.startswith("I've lost the connection to your computer")

    def scoped(call: ToolCall) -> Result | None:
        if call.arguments.get("path") == "src":
            return {"status": "error", "code": "scope_violation", "error": "outside"}
        return None

    _, reply = run(Drive(project), "List the files in src.", respond=scoped)
    assert reply == "src is outside the folders you've shared, so I can't list it."


def test_no_tools_means_no_runtime(project: Path) -> None:
    calls, reply = run(Drive(project), "Open the readme.", tools=[])
    assert calls == []
    assert reply == "I can't reach your project right now; no local runtime is connected."
    # text-only intents still answer
    assert run(Drive(project), "Stop.", tools=[])[1] == "Okay."


# ---------------------------------------------------------------------------- protocol


def test_stream_shape_and_model_id(project: Path) -> None:
    llm = CommandModeLLM()
    assert llm.model_id("sonnet") == llm.model_id("haiku") == "command-mode"
    assert llm.name == "command-mode" and llm.capabilities.tool_calling

    async def collect(messages: list[ChatMessage]) -> list[LLMEvent]:
        return [
            e async for e in llm.stream(system="", messages=messages, tools=MCP_TOOLS, tier="x")
        ]

    events = asyncio.run(collect([ChatMessage("user", "Open the readme.")]))
    assert len(events) == 2
    assert isinstance(events[0], ToolCallEvent) and events[0].call.name == "list_dir"
    assert events[1] == Finished("tool_use", "command-mode")

    events = asyncio.run(collect([ChatMessage("user", "What can you do?")]))
    assert events[-1] == Finished("end_turn", "command-mode")
    assert len(events) >= 3  # several clauses, streamed


def test_call_ids_are_deterministic_and_per_turn(project: Path) -> None:
    drive = Drive(project)
    a, _, history = asyncio.run(drive.turn("Open the readme."))
    b, _, _ = asyncio.run(Drive(project).turn("Open the readme."))
    assert [c.id for c in a] == [c.id for c in b]
    assert len({c.id for c in a}) == len(a)
    assert all(re.fullmatch(r"cm_[0-9a-f]{20}", c.id) for c in a)
    # the same words in a later turn get new ids
    c, _, _ = asyncio.run(drive.turn("Open the readme.", history=history))
    assert not {x.id for x in c} & {x.id for x in a}


def test_later_turn_ignores_earlier_tool_calls(project: Path) -> None:
    drive = Drive(project)
    _, _, history = asyncio.run(drive.turn("Open the readme."))
    calls, reply, _ = asyncio.run(drive.turn("Show the directory.", history=history))
    assert simple(calls) == [L(".")]
    assert reply.startswith("The project root has")
    turn = current_turn(history)
    assert turn.index == 0 and len(turn.steps) == 2


def test_decide_is_pure() -> None:
    messages = [ChatMessage("user", "Git status.")]
    assert decide(messages) == Call("execute_command", {"command": GIT_STATUS})
    assert decide(messages) == decide(list(messages))
    assert isinstance(decide([]), Reply)


def test_missing_tool_result_is_an_error() -> None:
    call = ToolCall("c1", "execute_command", {"command": GIT_STATUS})
    messages = [ChatMessage("user", "Git status."), ChatMessage("assistant", tool_calls=(call,))]
    decision = decide(messages)
    assert isinstance(decision, Reply) and decision.text.startswith("That didn't work")


def test_speech_chunks_round_trip() -> None:
    text = (
        "Creating files needs a language model, and none is configured. Set the key and "
        "run it, or use another server with a long enough clause to split. Done!"
    )
    chunks = speech_chunks(text)
    assert "".join(chunks) == text
    assert len(chunks) >= 4
    assert speech_chunks("Okay.") == ["Okay."]
    assert speech_chunks("README dot md has 1.5 lines.") == ["README dot md has 1.5 lines."]


# ---------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("spoken", "normalised"),
    [
        ("main dot py", "main.py"),
        ("Utils slash IO dot py", "utils/io.py"),
        ("read me", "readme"),
        ("set up dot c f g", "set up.cfg"),
        ("main dot pie", "main.py"),
        ("package dot jason", "package.json"),
        ("my underscore module dot py", "my_module.py"),
        ("pre dash commit dot yaml", "pre-commit.yaml"),
        ("dot git ignore", ".git ignore"),
        ("s-r-c", "src"),
        ("make file", "makefile"),
    ],
)
def test_normalise_spoken_name(spoken: str, normalised: str) -> None:
    assert normalise_spoken_name(spoken) == normalised


def test_name_scores() -> None:
    assert name_score("main.py", "main.py") == 1.0
    assert name_score("readme", "README.md") == 0.95
    assert name_score("set up.cfg", "setup.cfg") == 1.0
    assert name_score("source", "src") >= 0.9
    assert name_score("main.py", "main.pyc") < 0.72
    assert name_score("config", "app_config.toml") >= 0.72
    assert name_score("zebra", "main.py") < 0.5


def test_rank_entries_respects_kind_and_digits() -> None:
    entries = [Entry("tests", True), Entry("test_2.py", False), Entry("tests.md", False)]
    assert rank_entries("tests", entries, "dir")[0].entry.name == "tests"
    assert rank_entries("test two.py", entries, "file")[0].entry.name == "test_2.py"
    assert all(m.entry.is_dir for m in rank_entries("tests", entries, "dir"))


def test_speak_names_and_paths() -> None:
    assert speak_name("README.md") == "README dot md"
    assert speak_name("spoken_names.py") == "spoken names dot py"
    assert speak_name(".gitignore") == "dot gitignore"
    assert speak_path("main.py") == "main dot py"
    assert speak_path("src/voco/config.py") == "config dot py in src slash voco"
    assert speak_path("src/voco/agent/router.py") == "router dot py in the agent folder"
    assert speak_path(".") == "the project root"


def test_pattern_variants() -> None:
    assert pattern_variants("parse config") == [
        "parse_config",
        "parseConfig",
        "ParseConfig",
        "parse config",
    ]
    assert pattern_variants("TODO") == ["TODO"]
    assert pattern_variants("Token") == ["Token", "token"]


def test_intents_keep_case_of_search_terms() -> None:
    assert parse_utterance("Grep for MyClass.").target == "MyClass"
    assert parse_utterance("Search for self dot path.").target == "self.path"
    assert parse_utterance("Search for max underscore steps.").target == "max_steps"
    assert parse_utterance("Show me the last twenty commits.").count == 20
    assert parse_utterance("Search for token in source.").scope == "source"
