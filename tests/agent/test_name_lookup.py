"""Spoken names → real paths by walking real listings (``voco.agent.name_lookup``)."""

from __future__ import annotations

from pathlib import Path

from tests.agent.command_drive import (
    Drive,
    L,
    R,
    make_tree,
    run,
    simple,
)


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
