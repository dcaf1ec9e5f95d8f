"""The command-line contract (protocol §6), black-box through subprocesses."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jwt
import numpy as np
import pytest
import soundfile as sf

from tests.speech import piper_speech, silence, write_wav

pytestmark = pytest.mark.timeout(180)
VOCO = [sys.executable, "-m", "voco.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    # Not under pytest's tmp_path: pytest keeps that 0700, and the embedded
    # Postgres runs as its own system user when we are root.
    home = Path(tempfile.mkdtemp(prefix="voco-cli-"))
    yield {
        **os.environ,
        "VOCO_HOME": str(home),
        "ANTHROPIC_API_KEY": "",
        "VOCO_AUDIT_LOG": str(home / "audit.jsonl"),
    }
    shutil.rmtree(home, ignore_errors=True)


def run(args: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        VOCO + args,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        **kw,
    )


def test_token_is_accepted_by_the_same_home(env):
    out = run(["token", "--user", "bob", "--project", "p1", "--ttl", "60"], env)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    secret = (Path(env["VOCO_HOME"]) / "jwt_secret").read_text()
    claims = jwt.decode(token, secret, algorithms=["HS256"], audience="authenticated")
    assert claims["sub"] == "bob" and claims["project_id"] == "p1"
    assert 55 <= claims["exp"] - claims["iat"] <= 60
    assert oct((Path(env["VOCO_HOME"]) / "jwt_secret").stat().st_mode & 0o777) == "0o600"


@pytest.fixture
def served(env):
    port = free_port()
    proc = subprocess.Popen(
        [*VOCO, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"voco serve did not start: {proc.stdout.read()}")
            time.sleep(0.3)
    yield f"ws://127.0.0.1:{port}/v1/session"
    proc.terminate()
    proc.wait(10)


def test_talk_wav_against_served_engine(served, env, tmp_path):
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "src" / "app.py").write_text("x = 1\n")
    wav = write_wav(
        tmp_path / "q.wav",
        np.concatenate([silence(300), piper_speech("What is in the source folder?"), silence(200)]),
        rate=16000,
    )
    out_mp3 = tmp_path / "reply.mp3"
    out = run(
        [
            "talk",
            "--wav",
            str(wav),
            "--engine",
            served,
            "--root",
            str(proj),
            "--approve",
            "deny",
            "--out",
            str(out_mp3),
        ],
        env,
    )
    assert out.returncode == 0, out.stderr
    assert "you:" in out.stdout and "voco:" in out.stdout
    assert "app" in out.stdout.lower()
    audio, rate = sf.read(io.BytesIO(out_mp3.read_bytes()))
    assert rate == 24000 and len(audio) > rate // 2


def test_talk_with_a_bad_token_fails_clearly(served, env):
    out = run(["talk", "--text", "hi", "--engine", served, "--token", "not-a-jwt"], env)
    assert out.returncode == 1
    assert "4401" in out.stderr and "invalid access token" in out.stderr


def test_talk_without_an_engine_fails_clearly(env):
    out = run(["talk", "--text", "hi", "--engine", f"ws://127.0.0.1:{free_port()}/v1/session"], env)
    assert out.returncode == 1 and "cannot talk to the engine" in out.stderr


def test_serve_with_a_missing_key_names_it(env):
    out = run(["serve", "--llm", "anthropic", "--port", str(free_port())], env)
    assert out.returncode == 2
    assert out.stderr.strip() == "voco serve: anthropic: set ANTHROPIC_API_KEY to use anthropic"
