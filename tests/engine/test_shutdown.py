"""SIGTERM to a real ``voco serve`` with open sessions: it drains, closes every
session (1012), says what it cut, and exits within its bound.

No timing is asserted: the process must *exit* (a generous wait), and its log
must say what happened.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import websockets

pytestmark = pytest.mark.timeout(240)
VOCO = [sys.executable, "-m", "voco.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(proc: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 150
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"voco serve did not start: {proc.communicate()[0]}")
            time.sleep(0.3)


async def open_session(url: str, token: str) -> websockets.ClientConnection:
    ws = await websockets.connect(url)
    await ws.send(json.dumps({"type": "session.start", "token": token}))
    while json.loads(await ws.recv())["type"] != "session.ready":
        pass
    return ws


async def close_code(ws: websockets.ClientConnection) -> int | None:
    try:
        while True:
            await ws.recv()
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


async def last_words(ws: websockets.ClientConnection) -> tuple[int | None, dict | None]:
    """The close code and the last ``error`` before it."""
    error = None
    try:
        while True:
            raw = await ws.recv()
            if isinstance(raw, str) and (msg := json.loads(raw))["type"] == "error":
                error = msg
    except websockets.ConnectionClosed as exc:
        return (exc.rcvd.code if exc.rcvd else None), error


def start_engine(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    args = ["serve", "--port", str(port), "--database", "memory", "--llm", "command"]
    return subprocess.Popen(
        [*VOCO, *args, "--shutdown-timeout", "4"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def issue_token(env: dict[str, str]) -> str:
    out = subprocess.run(
        [*VOCO, "token", "--user", "alice"], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


async def test_sigterm_with_open_sessions_exits_and_says_what_it_cut(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VOCO_HOME": str(tmp_path),
        "ANTHROPIC_API_KEY": "",
        "VOCO_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
    }
    port = free_port()
    proc = await asyncio.to_thread(start_engine, env, port)
    try:
        await asyncio.to_thread(wait_healthy, proc, port)
        token = await asyncio.to_thread(issue_token, env)
        url = f"ws://127.0.0.1:{port}/v1/session"
        sessions = [await open_session(url, token) for _ in range(3)]
        await sessions[0].send(json.dumps({"type": "text.input", "text": "list the files"}))
        proc.send_signal(signal.SIGTERM)
        words = await asyncio.gather(*(last_words(ws) for ws in sessions))
        codes = [code for code, _ in words]
        out, _ = await asyncio.to_thread(proc.communicate, timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode is not None  # it exited on its own
    assert set(codes) <= {1012, 1006}, codes  # going away (or the transport just closed)
    for code, error in words:  # each closed session was told why, and what to do
        if code == 1012:
            assert error is not None and error["code"] == "going_away", error
            assert error["fatal"] and "reconnect" in error["message"], error
    assert "shutdown: 3 open session(s)" in out, out
    assert "shutdown: done" in out, out
    assert "Traceback" not in out, out
