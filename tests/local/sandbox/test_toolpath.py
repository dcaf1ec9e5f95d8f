"""The sandbox runs the user's own tools without exposing the rest of $HOME (issue 12)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from voco.local.sandbox import Sandbox
from voco.local.sandbox.toolpath import resolve_tools, tools_from_environment

from .helpers import Tree, approve_all, call, needs_bwrap

REPO = Path(__file__).resolve().parents[3]


def _script(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    _script(h / "tools" / "bin" / "mytool", "echo TOOL-OK")
    (h / ".ssh").mkdir(parents=True)
    (h / ".ssh" / "id_rsa").write_text("PRIVATE\n")
    (h / ".config" / "gh").mkdir(parents=True)
    (h / ".config" / "gh" / "hosts.yml").write_text("oauth_token: gho_x\n")
    _script(h / ".ssh" / "bin" / "sshtool", "echo SSH-TOOL")
    # a pyenv layout: shims are scripts that need the pyenv root
    _script(h / ".pyenv" / "libexec" / "pyenv", 'echo "PYENV $PYENV_ROOT"')
    _script(h / ".pyenv" / "shims" / "pytool", f'exec "{h}/.pyenv/libexec/pyenv"')
    # ~/.local/bin next to Voco-looking state
    _script(h / ".local" / "bin" / "localtool", "echo LOCAL-OK")
    (h / ".local" / "state" / "voco").mkdir(parents=True)
    return h


def _path(home: Path) -> str:
    return ":".join(
        [
            f"{home}/tools/bin",
            str(home),  # $HOME itself on PATH: never bound whole
            f"{home}/.ssh/bin",  # inside a secret folder: never bound
            f"{home}/.pyenv/shims",
            f"{home}/.local/bin",
            "relative/bin",
            "/usr/bin",
        ]
    )


def test_only_tool_folders_are_bound(tree: Tree, home: Path) -> None:
    env = resolve_tools([str(tree.root)], path_env=_path(home), home=str(home))
    assert set(env.mounts) == {
        str(home / "tools" / "bin"),
        str(home / ".pyenv"),
        str(home / ".local" / "bin"),
    }
    assert env.env["PYENV_ROOT"] == str(home / ".pyenv")
    assert env.path.split(":")[:3] == [
        str(home / "tools" / "bin"),
        str(home / ".pyenv" / "shims"),
        str(home / ".local" / "bin"),
    ]
    assert str(home) not in env.path.split(":") and "relative/bin" not in env.path


def test_project_environments_come_first(tree: Tree, home: Path) -> None:
    _script(tree.root / ".venv" / "bin" / "projtool", "echo PROJ")
    (tree.root / "node_modules" / ".bin").mkdir(parents=True)
    env = resolve_tools([str(tree.root)], path_env="/usr/bin", home=str(home))
    real = os.path.realpath(tree.root)
    assert env.path.split(":")[:2] == [f"{real}/.venv/bin", f"{real}/node_modules/.bin"]


@needs_bwrap
@pytest.mark.timeout(30)
def test_fake_tool_runs_and_ssh_stays_invisible(
    tree: Tree, home: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    env = resolve_tools([str(tree.root)], path_env=_path(home), home=str(home))
    sb = make_sandbox(approve_all, tools=env)
    for tool, expected in (
        ("mytool", "TOOL-OK\n"),
        ("localtool", "LOCAL-OK\n"),
        ("pytool", f"PYENV {home}/.pyenv\n"),
    ):
        resp = call(sb, "execute_command", argv=[tool])
        assert resp.result["stdout"] == expected, resp
    probe = (
        "import os, sys\n"
        "for h in sys.argv[1:]:\n"
        "    p = bytes.fromhex(h).decode()\n"
        "    print(p.rsplit('/', 2)[-2:], os.path.exists(p))\n"
    )
    hidden = [
        f"{home}/.ssh/id_rsa",
        f"{home}/.config/gh/hosts.yml",
        f"{home}/.local/state/voco",
        f"{home}/.ssh/bin/sshtool",
    ]
    # Hex, so the scope check does not refuse them first: the mount namespace must.
    args = [p.encode().hex() for p in [*hidden, f"{home}/tools/bin/mytool"]]
    resp = call(sb, "execute_command", argv=["python3", "-c", probe, *args])
    assert resp.status == "success", resp
    lines = resp.result["stdout"].splitlines()
    assert [line.endswith("False") for line in lines] == [True] * len(hidden) + [False], lines
    missing = call(sb, "execute_command", command="sshtool")
    assert missing.result["exit_code"] == 127, missing.result


@needs_bwrap
@pytest.mark.timeout(60)
def test_the_projects_own_venv_runs(make_sandbox: Callable[..., Sandbox]) -> None:
    """This repository's .venv (its interpreter may live under ~/.pyenv or uv's
    folder) runs inside the sandbox, as `uv run` would."""
    if not (REPO / ".venv" / "bin" / "python").exists():
        pytest.skip("no project .venv")
    env = tools_from_environment([str(REPO)])
    sb = make_sandbox(approve_all, roots=[REPO], tools=env)
    resp = call(sb, "execute_command", command="python -c 'import sys, voco; print(sys.prefix)'")
    assert resp.result["exit_code"] == 0, resp.result
    assert resp.result["stdout"].strip() == str((REPO / ".venv").resolve())
    resp = call(sb, "execute_command", command="pytest --version")
    assert (
        resp.result["exit_code"] == 0 and "pytest" in resp.result["stdout"] + resp.result["stderr"]
    ), resp.result


def test_voco_tool_path_overrides_path(
    tree: Tree, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", _path(home))
    monkeypatch.setenv("VOCO_TOOL_PATH", f"{home}/tools/bin")
    assert tools_from_environment([str(tree.root)]).mounts == (str(home / "tools" / "bin"),)
    monkeypatch.setenv("VOCO_TOOL_PATH", "")
    assert tools_from_environment([str(tree.root)]).mounts == ()
