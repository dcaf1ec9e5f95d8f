"""Tool results → spoken sentences (``voco.agent.summaries``), checked through whole
turns so the wording is what a user hears."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent.command_drive import (
    Drive,
    L,
    Responder,
    Result,
    make_tree,
    ok,
    run,
    simple,
)
from voco.agent.command_types import Ambiguous, LookupFailure, NotFound, ToolFailed
from voco.agent.summaries import list_summary, lookup_failure_text
from voco.providers.base import (
    ToolCall,
)


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
        "The project root has 4 folders and 6 files: "
        "docs, src, tests, utils, README dot md and 5 more."
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


def test_define_reply(project: Path) -> None:
    _, reply = run(Drive(project), "Find where parse config is defined.")
    assert reply == "parse config is defined in config dot py in src slash voco, line 1."


def test_define_without_definition(project: Path) -> None:
    make_tree(project, {"notes.txt": "call read_it here\n"})
    _, reply = run(Drive(project), "Where is read it defined?")
    assert reply.startswith("I didn't find a definition of read it, but it appears 1 time")


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


# ---------------------------------------------------------------------------- listings


def _listing(*entries: tuple[str, str]) -> dict[str, object]:
    return {
        "status": "success",
        "result": {"entries": [{"name": n, "kind": k} for n, k in entries]},
    }


def test_listing_says_how_many_it_leaves_out() -> None:
    files = [(f"f{i}.py", "file") for i in range(8)]
    assert list_summary("src", _listing(("a", "dir"), *files)) == (
        "The src folder has 1 folder and 8 files: a, f0 dot py, f1 dot py, f2 dot py, "
        "f3 dot py and 4 more."
    )


def test_listing_does_not_count_git_or_caches() -> None:
    result = _listing(
        (".git", "dir"), ("__pycache__", "dir"), ("src", "dir"), (".gitignore", "file")
    )
    # .git and caches are not "the files here"; .gitignore is the user's file
    assert list_summary(".", result) == "The project root has 1 folder and 1 file: src and 1 more."
    assert list_summary(".", _listing((".git", "dir"))) == "The project root is empty."


def test_where_am_i_does_not_count_git(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"go.mod": "module x\n", "cmd/main.go": "package main\n"})
    (root / ".git").mkdir()
    _, reply = run(Drive(root), "Where am I?")
    assert reply == "It looks like a Go project, with 1 folder and 1 file at the root."


def test_what_files_are_here_end_to_end(project: Path) -> None:
    (project / ".git").mkdir()
    calls, reply = run(Drive(project), "What files are here?")
    assert simple(calls) == [L(".")]
    assert reply == (
        "The project root has 4 folders and 6 files: docs, src, tests, utils, README dot md "
        "and 5 more."
    )


# ---------------------------------------------------------------------------- lookup failures


@pytest.mark.parametrize(
    ("failure", "text"),
    [
        (NotFound("mailer.py"), "I couldn't find anything called mailer dot py."),
        (
            NotFound("mailer.py", ("main.py",)),
            "I couldn't find anything called mailer dot py. The closest is main dot py.",
        ),
        (
            NotFound("cfg", ("src/cfg.toml", "cfg.yaml")),
            "I couldn't find anything called cfg. The closest are cfg dot toml in src and "
            "cfg dot yaml.",
        ),
        (
            Ambiguous(("config.toml", "config.yaml")),
            "Did you mean config dot toml or config dot yaml?",
        ),
        (
            ToolFailed("list_dir", {"path": "src"}, {"status": "error", "code": "not_found"}),
            "I couldn't find src.",
        ),
    ],
)
def test_lookup_failure_text(failure: LookupFailure, text: str) -> None:
    assert lookup_failure_text(failure) == text
