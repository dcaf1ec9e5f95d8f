"""Spoken names → real paths by walking real listings (``voco.agent.name_lookup``)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from tests.agent.command_drive import (
    Drive,
    L,
    R,
    make_tree,
    run,
    simple,
)
from voco.agent import name_lookup
from voco.agent.command_types import Ambiguous, Call, Calls, NotFound, Resolved, Step, ToolFailed
from voco.agent.name_lookup import resolve


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


def test_lookup_budget_and_depth_are_bounded(tmp_path: Path) -> None:
    files = {f"d{i}/e/f/g/h/deep.txt": "x" for i in range(12)}
    drive = Drive(make_tree(tmp_path, files))
    calls, reply = run(drive, "Open deep dot txt.")
    assert len(calls) <= 10 and len(drive.rounds) <= 4
    assert reply == "I couldn't find anything called deep dot txt."


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


# ---------------------------------------------------------------------------- typed results


def _listed(path: str, *entries: tuple[str, bool]) -> Step:
    rows = [{"name": n, "kind": "dir" if d else "file"} for n, d in entries]
    return Step("list_dir", {"path": path}, {"status": "success", "result": {"entries": rows}})


def test_resolve_asks_for_the_listing_it_needs() -> None:
    assert resolve("main.py", "file", []) == Call("list_dir", {"path": "."})
    root = _listed(".", ("src", True), ("docs", True), ("node_modules", True), (".git", True))
    # one whole level at once, source first; dependency and dot folders are not walked
    assert resolve("deep.py", "file", [root]) == Calls(
        (Call("list_dir", {"path": "src"}), Call("list_dir", {"path": "docs"}))
    )


def test_resolve_reports_failures_as_data() -> None:
    root = _listed(".", ("main.py", False), ("config.toml", False), ("config.yaml", False))
    assert resolve("main.py", "file", [root]) == Resolved("main.py", False)
    assert resolve("config", "", [root]) == Ambiguous(("config.toml", "config.yaml"))
    found = resolve("mailer.py", "file", [root])
    assert isinstance(found, NotFound) and found.closest[:1] == ("main.py",)
    gone = {"status": "error", "code": "runtime_disconnected", "error": "gone"}
    failed = Step("list_dir", {"path": "."}, gone)
    assert resolve("main.py", "file", [failed]) == ToolFailed("list_dir", {"path": "."}, gone)


def test_name_lookup_does_not_import_summaries() -> None:
    """The lookup resolves; how a failure is said is the summaries' business."""
    tree = ast.parse(inspect.getsource(name_lookup))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "voco.agent.summaries" not in imported
    assert not any(
        m.startswith("voco.agent.command_") and m != "voco.agent.command_types" for m in imported
    )
