"""The command-line contract (protocol §6), black-box through subprocesses."""

from __future__ import annotations

import io
import json
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
from cryptography.hazmat.primitives import serialization

from tests.speech import piper_speech, silence, write_wav
from voco.auth import LOCAL_ISSUER, user_uuid

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
        "SUPABASE_URL": "",  # the embedded issuer, whatever the developer's shell says
        "SUPABASE_JWT_SECRET": "",
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
    out = run(["token", "--user", "bob", "--project", "p1", "--org", "o1", "--ttl", "60"], env)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    key_file = Path(env["VOCO_HOME"]) / "auth_signing_key.pem"
    public = serialization.load_pem_private_key(key_file.read_bytes(), None).public_key()
    claims = jwt.decode(token, public, algorithms=["ES256"], audience="authenticated")
    assert claims["sub"] == user_uuid("bob") and claims["user_metadata"] == {"name": "bob"}
    assert (claims["project_id"], claims["org_id"]) == ("p1", "o1")
    assert claims["iss"] == LOCAL_ISSUER and claims["role"] == "authenticated"
    assert 55 <= claims["exp"] - claims["iat"] <= 60
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    again = run(["token", "--user", "bob"], env)  # same key, same sub, on every call
    assert jwt.get_unverified_header(again.stdout.strip()) == jwt.get_unverified_header(token)


def test_token_and_serve_refuse_bad_auth_options(env):
    out = run(["token", "--user", "bob", "--ttl", "0"], env)
    assert out.returncode == 2 and "--ttl must be a positive" in out.stderr
    out = run(["serve", "--supabase-jwt-secret", "s" * 40], {**env, "SUPABASE_URL": ""})
    assert out.returncode == 2 and "needs SUPABASE_URL" in out.stderr
    out = run(["serve", "--supabase-url", "abc.supabase.co"], env)
    assert out.returncode == 2 and "must be an http(s) URL" in out.stderr
    (Path(env["VOCO_HOME"]) / "auth_signing_key.pem").write_text("garbage")
    out = run(["token", "--user", "bob"], env)
    assert out.returncode == 1 and "not a readable PEM private key" in out.stderr
    out = run(["serve", "--port", str(free_port())], env)
    assert out.returncode == 2 and "not a readable PEM private key" in out.stderr
    assert "Traceback" not in out.stderr


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


def test_served_engine_publishes_the_key_voco_token_signs_with(served, env):
    base = served.replace("ws://", "http://").removesuffix("/v1/session")
    with urllib.request.urlopen(base + "/auth/v1/.well-known/jwks.json", timeout=5) as r:
        jwks = json.loads(r.read())
    token = run(["token", "--user", "carol"], env).stdout.strip()
    (jwk,) = jwks["keys"]
    assert jwt.get_unverified_header(token)["kid"] == jwk["kid"]
    key = jwt.PyJWK(jwk).key
    assert jwt.decode(token, key, algorithms=["ES256"], audience="authenticated")["sub"] == (
        user_uuid("carol")
    )


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
