"""`voco talk/mcp/local/up --root BAD` fail at start: one line, non-zero exit, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ARGS = {
    "talk": ["talk", "--text", "hi", "--engine", "ws://127.0.0.1:9/v1/session"],
    "mcp": ["mcp"],
    "local": ["local", "--engine", "ws://127.0.0.1:9/v1/session"],
    "up": ["up"],
}


def _run(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "voco.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cmd", ["talk", "mcp", "local", "up"])
def test_nonexistent_root_fails_with_one_line(cmd: str, tmp_path: Path) -> None:
    proc = _run([*ARGS[cmd], "--root", "/nonexistent"], tmp_path)
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "'/nonexistent' does not exist" in lines[0], proc.stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cmd", ["talk", "mcp"])
def test_home_as_root_is_refused(cmd: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    proc = _run([*ARGS[cmd], "--root", str(home)], home)
    assert proc.returncode == 2 and "home folder" in proc.stderr, proc
    assert "Traceback" not in proc.stderr
