"""Every command in the README's "Using it" section runs as written.

Each ``uv run voco …`` line is parsed out of README.md and run as a real
subprocess (``python -m voco.cli``, the same entry point ``uv run voco`` uses)
in a scratch project holding the files the examples name. So that the test
can run beside other work on one machine, three things are added to what the
README says: free ports instead of the defaults, ``--database memory``, and
``--engine`` pointing at the engine the README's ``voco serve`` line started.
Long-running commands (``serve``, ``up``, ``local``) count as working once they
say they are ready and their page answers; ``mcp`` once an MCP client lists
its tools.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

pytestmark = pytest.mark.timeout(420)
REPO = Path(__file__).resolve().parents[1]
VOCO = [sys.executable, "-m", "voco.cli"]
LONG_RUNNING = {"serve", "up", "local"}


def readme_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Using it", 1)[1].split("\n## ", 1)[0]
    commands = []
    for line in section.splitlines():
        m = re.match(r"^\s{4}uv run voco (.*)$", line)
        if m:
            commands.append(shlex.split(m.group(1), comments=True))
    return commands


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def scratch() -> Iterator[tuple[Path, dict[str, str]]]:
    # Not under pytest's tmp_path (0700): the embedded Postgres may run as its own user.
    base = Path(tempfile.mkdtemp(prefix="voco-readme-"))
    proj = base / "proj"
    assets = proj / "src" / "voco" / "assets"
    assets.mkdir(parents=True)
    shutil.copy(REPO / "src" / "voco" / "assets" / "question.wav", assets / "question.wav")
    (proj / "src" / "main.py").write_text("print('hello')\n")
    env = {
        **os.environ,
        "VOCO_HOME": str(base / "home"),
        "VOCO_AUDIT_LOG": str(base / "home" / "audit.jsonl"),
        "ANTHROPIC_API_KEY": "",
    }
    for key in ("VOCO_TOKEN", "VOCO_LLM", "VOCO_STT", "VOCO_TTS", "VOCO_DATABASE_URL"):
        env.pop(key, None)
    yield proj, env
    shutil.rmtree(base, ignore_errors=True)


def _with(args: list[str], flag: str, value: str) -> list[str]:
    """``args`` with ``flag value`` set (replaced if present)."""
    out, skip = [], False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if a == flag and i + 1 < len(args):
            skip = True
            continue
        out.append(a)
    return [*out, flag, value]


class Started:
    """A long-running command, read line by line until it says it is up."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            VOCO + args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.said: list[str] = []

    def wait_for(self, pattern: str) -> re.Match[str]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # the test's timeout bounds this
            self.said.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        pytest.fail(f"{self.proc.args} ended without {pattern!r}:\n{''.join(self.said)}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def _mcp_tools(params: StdioServerParameters) -> set[str]:
    async with Client(params) as client:
        return {t.name for t in (await client.list_tools()).tools}


def _page_answers(url: str) -> None:
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        assert b"<html" in r.read(4096).lower()


def test_every_using_it_command_runs(scratch: tuple[Path, dict[str, str]]) -> None:
    proj, env = scratch
    commands = readme_commands()
    assert [c[0] for c in commands][:4] == ["up", "serve", "local", "token"]
    web_built = (REPO / "web" / "dist" / "index.html").is_file()
    started: list[Started] = []
    engine: str | None = None
    ran: list[str] = []
    try:
        # `serve` first: the other commands talk to it.
        for args in sorted(commands, key=lambda c: c[0] != "serve"):
            name = args[0]
            if name == "serve":
                port = free_port()
                s = Started(
                    _with(_with(args, "--port", str(port)), "--database", "memory"), proj, env
                )
                started.append(s)
                engine = s.wait_for(r"ready on (ws://\S+)").group(1)
                assert engine == f"ws://127.0.0.1:{port}/v1/session"
            elif name in ("up", "local"):
                args = _with(args, "--port", str(free_port()))
                if name == "up":
                    args = _with(
                        _with(args, "--engine-port", str(free_port())), "--database", "memory"
                    )
                else:
                    assert engine is not None
                    args = _with(args, "--engine", engine)
                s = Started(args, proj, env)
                started.append(s)
                if web_built:
                    link = s.wait_for(r"(http://127\.0\.0\.1:\d+/\?secret=\S+)").group(1)
                    _page_answers(link)
                else:  # a fresh checkout without the build says how to build it
                    s.wait_for(r"web UI is not built.*npm run build")
                s.stop()
            elif name == "mcp":
                params = StdioServerParameters(
                    command=VOCO[0], args=[*VOCO[1:], *args], cwd=str(proj), env=env
                )
                tools = asyncio.run(_mcp_tools(params))
                assert "read_file" in tools and "execute_command" in tools
            else:
                if name == "talk":
                    assert engine is not None
                    args = _with(args, "--engine", engine)
                out = subprocess.run(
                    VOCO + args,
                    cwd=proj,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=180,
                    stdin=subprocess.DEVNULL,
                )
                assert out.returncode == 0, f"voco {shlex.join(args)}:\n{out.stderr}"
                assert "Traceback" not in out.stderr
                if name == "talk" and "--out" in args:
                    assert (proj / args[args.index("--out") + 1]).stat().st_size > 1000
                if name == "talk":
                    assert out.stdout.startswith("you:") and "\nvoco: " in out.stdout
                if name == "audit":
                    assert out.stdout.startswith("OK: ")
            ran.append(name)
    finally:
        for s in started:
            s.stop()
    assert sorted(ran) == sorted(c[0] for c in commands)
