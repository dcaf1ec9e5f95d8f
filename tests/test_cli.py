"""The command-line contract (protocol §6), black-box through subprocesses."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
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
from voco.cli import build_parser

pytestmark = pytest.mark.timeout(180)
VOCO = [sys.executable, "-m", "voco.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _home_env() -> tuple[Path, dict[str, str]]:
    # Not under pytest's tmp_path: pytest keeps that 0700, and the embedded
    # Postgres runs as its own system user when we are root.
    home = Path(tempfile.mkdtemp(prefix="voco-cli-"))
    env = {
        **os.environ,
        "VOCO_HOME": str(home),
        "ANTHROPIC_API_KEY": "",
        "VOCO_AUDIT_LOG": str(home / "audit.jsonl"),
        "SUPABASE_URL": "",  # the embedded issuer, whatever the developer's shell says
        "SUPABASE_JWT_SECRET": "",
    }
    for key in ("VOCO_TOKEN", "VOCO_LLM", "VOCO_STT", "VOCO_TTS", "VOCO_DATABASE_URL"):
        env.pop(key, None)
    return home, env


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    home, e = _home_env()
    yield e
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def module_env() -> Iterator[dict[str, str]]:
    home, e = _home_env()
    yield e
    shutil.rmtree(home, ignore_errors=True)


def run(
    args: list[str], env: dict[str, str], *, stdin: str | None = None, **kw
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        VOCO + args,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        **kw,
    )


def one_clear_line(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    return lines[0]


@pytest.fixture(scope="module")
def served(module_env) -> Iterator[str]:
    """A real ``voco serve`` (memory database); ready when it says so."""
    port = free_port()
    proc = subprocess.Popen(
        [*VOCO, "serve", "--port", str(port), "--database", "memory"],
        env=module_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"ws://127.0.0.1:{port}/v1/session"
    said: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:  # blocks until the lines come; the timeout marker bounds it
        said.append(line)
        if "ready" in line:
            break
    else:
        proc.kill()
        pytest.fail(f"voco serve did not start: {''.join(said)}")
    assert said[0].startswith(f"voco serve: starting on {url}")
    assert said[-1].strip() == f"voco serve: ready on {url}"
    yield url
    proc.terminate()
    proc.wait(10)


# ------------------------------------------------------------- no engine


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


def test_serve_refuses_several_workers_on_memory_and_bad_counts(env):
    out = run(["serve", "--workers", "2", "--database", "memory"], env)
    assert out.returncode == 2
    assert "--workers 2 needs a shared database" in out.stderr and "Traceback" not in out.stderr
    out = run(["serve", "--workers", "0", "--database", "memory"], env)
    assert out.returncode == 2 and "--workers must be at least 1" in out.stderr
    out = run(["serve", "--max-sessions", "0", "--database", "memory"], env)
    assert out.returncode == 2 and "--max-sessions: max sessions must be at least 1" in out.stderr


def test_serve_names_an_event_loop_it_cannot_run_in_one_line(env, tmp_path):
    out = run(["serve", "--loop", "trio", "--database", "memory"], env)
    assert out.returncode == 2 and "invalid choice: 'trio'" in out.stderr
    # an install without uvloop: an importable package that refuses, ahead on the path
    (tmp_path / "uvloop").mkdir()
    (tmp_path / "uvloop" / "__init__.py").write_text("raise ImportError('no uvloop here')\n")
    no_uvloop = {**env, "PYTHONPATH": os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])}
    out = run(["serve", "--database", "memory", "--port", str(free_port())], no_uvloop)
    assert out.returncode == 2, out.stderr
    assert "'uvloop' package is not installed" in out.stderr and "--loop asyncio" in out.stderr
    assert "Traceback" not in out.stderr


def test_serve_refuses_tracing_it_cannot_export_in_one_line(env):
    bad = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    out = run(["serve", "--database", "memory", "--port", str(free_port())], {**env, **bad})
    assert out.returncode == 2 and "http/protobuf only" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.fixture(scope="module")
def files() -> Iterator[dict[str, Path]]:
    d = Path(tempfile.mkdtemp(prefix="voco-cli-files-"))
    (d / "not-audio.wav").write_text("this is not audio\n")
    (d / "empty.txt").write_text("")
    (d / "afolder").mkdir()
    (d / "a-file").write_text("x")
    yield {"dir": d}
    shutil.rmtree(d, ignore_errors=True)


MISTAKES = {
    "wav missing": (["talk", "--wav", "{d}/nope.wav"], "--wav {d}/nope.wav: no such file"),
    "wav is a folder": (["talk", "--wav", "{d}/afolder"], "is a directory"),
    "wav not audio": (["talk", "--wav", "{d}/not-audio.wav"], "not a WAV"),
    "text empty": (["talk", "--text", " "], "--text: must not be empty"),
    "engine not ws": (["talk", "--text", "hi", "--engine", "http://x/v1"], "not a WebSocket URL"),
    "engine bad port": (["talk", "--text", "hi", "--engine", "ws://h:xx/"], "not a number"),
    "out in missing folder": (
        ["talk", "--text", "hi", "--out", "{d}/missing/r.mp3"],
        "the folder {d}/missing does not exist",
    ),
    "talk root missing": (["talk", "--text", "hi", "--root", "{d}/gone"], "does not exist"),
    "talk root a file": (["talk", "--text", "hi", "--root", "{d}/a-file"], "not a directory"),
    "mcp root missing": (["mcp", "--root", "{d}/gone"], "root '{d}/gone' does not exist"),
    "local root missing": (
        ["local", "--engine", "ws://127.0.0.1:9/v1/session", "--root", "{d}/gone"],
        "does not exist",
    ),
    "up root missing": (["up", "--root", "{d}/gone"], "does not exist"),
    "ttl zero": (["token", "--user", "a", "--ttl", "0"], "--ttl must be a positive"),
    "ttl negative": (["token", "--user", "a", "--ttl", "-5"], "must be a positive"),
    "user empty": (["token", "--user", ""], "--user: must not be empty"),
    "user blank": (["token", "--user", "  "], "--user: must not be empty"),
    "token file missing": (["talk", "--text", "hi", "--token-file", "{d}/nope"], "--token-file"),
    "token file empty": (["talk", "--text", "hi", "--token-file", "{d}/empty.txt"], "empty"),
    "audit log missing": (["audit", "verify", "{d}/none.jsonl"], "no audit log at"),
    "serve database down": (
        ["serve", "--port", "0", "--database", "postgresql://u:p@127.0.0.1:9/db"],
        "--database: cannot reach 127.0.0.1:9/db",
    ),
    "up database down": (
        ["up", "--port", "0", "--engine-port", "0", "--database", "postgresql://127.0.0.1:9/d"],
        "cannot reach",
    ),
    "serve missing key": (["serve", "--port", "0", "--llm", "anthropic"], "ANTHROPIC_API_KEY"),
    "up missing key": (
        ["up", "--port", "0", "--engine-port", "0", "--llm", "anthropic"],
        "ANTHROPIC_API_KEY",
    ),
}


@pytest.mark.parametrize("case", list(MISTAKES))
def test_an_ordinary_mistake_is_one_clear_line(case, env, files):
    d = str(files["dir"])
    args, expected = MISTAKES[case]
    out = run([a.format(d=d) for a in args], env)
    line = one_clear_line(out)
    assert out.returncode == 2
    assert expected.format(d=d) in line
    assert line.startswith(f"voco {args[0]}: ")


def test_up_honours_voco_llm_like_serve(env):
    out = run(["up", "--port", "0", "--engine-port", "0"], {**env, "VOCO_LLM": "anthropic"})
    assert "ANTHROPIC_API_KEY" in one_clear_line(out)


@pytest.mark.parametrize("cmd", ["serve", "up"])
def test_a_port_in_use_is_named(cmd, env):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        out = run([cmd, "--port", str(port)], env)
    line = one_clear_line(out)
    assert f"port {port} on 127.0.0.1 is already in use" in line


def test_talk_without_an_engine_says_to_start_one(env):
    out = run(["talk", "--text", "hi", "--engine", f"ws://127.0.0.1:{free_port()}/v1/session"], env)
    line = one_clear_line(out)
    assert out.returncode == 1
    assert "nothing is listening" in line and "voco serve" in line


def test_talk_mic_without_audio_support_says_how_to_get_it(env):
    from voco.local.audio_source import require_sounddevice

    try:
        require_sounddevice()
    except RuntimeError:
        pass
    else:
        pytest.skip("sounddevice and PortAudio are installed here")
    for flag in (["--mic"], ["--text", "hi", "--play"]):
        line = one_clear_line(run(["talk", *flag], env))
        assert "audio extra" in line and "uv sync --extra audio" in line


def test_every_flag_has_help_and_there_is_a_version(env):
    parser = build_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    seen = 0
    stack = [(parser.prog, parser)]
    for action in subs:
        stack += [(name, p) for name, p in action.choices.items()]
    while stack:
        name, p = stack.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack += [(n, sp) for n, sp in action.choices.items()]
                continue
            assert action.help, f"{name}: {action.option_strings or action.dest} has no help"
            seen += 1
    assert seen > 40
    talk_help = run(["talk", "--help"], env).stdout
    assert "repeat for more" in talk_help and "{ask,deny,all}" in talk_help
    assert "default: ws://127.0.0.1:8765/v1/session" in talk_help
    version = run(["--version"], env)
    assert version.returncode == 0 and version.stdout.strip().startswith("voco 0.")


# ------------------------------------------------------- against a real engine


@pytest.fixture(scope="module")
def proj() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="voco-cli-proj-"))
    (d / "src").mkdir()
    (d / "src" / "app.py").write_text("x = 1\n")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_talk_wav_against_served_engine(served, module_env, proj, tmp_path):
    wav = write_wav(
        tmp_path / "q.wav",
        np.concatenate([silence(300), piper_speech("What is in the source folder?"), silence(200)]),
        rate=16000,
    )
    out_mp3 = tmp_path / "reply.mp3"
    args = ["talk", "--wav", str(wav), "--engine", served, "--root", str(proj)]
    out = run([*args, "--approve", "deny", "--out", str(out_mp3)], module_env)
    assert out.returncode == 0, out.stderr
    assert "you:" in out.stdout and "voco:" in out.stdout
    assert "app" in out.stdout.lower()
    audio, rate = sf.read(io.BytesIO(out_mp3.read_bytes()))
    assert rate == 24000 and len(audio) > rate // 2
    assert "e2e_ms=" in out.stderr  # with audio wanted it waits for the turn's metrics


def test_talk_text_returns_with_the_reply_text(served, module_env, proj):
    out = run(
        ["talk", "--text", "list the files in src", "--engine", served, "--root", str(proj)],
        module_env,
    )
    assert out.returncode == 0, out.stderr
    assert "app" in out.stdout.lower()
    # metrics follow audio.end, which follows real-time playout: not waited for
    assert "e2e_ms=" not in out.stderr and "reply audio" not in out.stderr


def test_talk_a_wav_without_speech_ends_with_no_speech_heard(served, module_env, tmp_path):
    wav = write_wav(tmp_path / "silence.wav", silence(1000), rate=16000)
    out = run(["talk", "--wav", str(wav), "--engine", served], module_env)
    line = one_clear_line(out)
    assert out.returncode == 1 and line == f"voco: no speech heard in {wav}"


def test_talk_to_the_wrong_path_names_it(served, module_env):
    wrong = served.replace("/v1/session", "/v2/nothing")
    line = one_clear_line(run(["talk", "--text", "hi", "--engine", wrong], module_env))
    assert "answered HTTP" in line and "/v1/session" in line


def test_served_engine_publishes_the_key_voco_token_signs_with(served, module_env):
    base = served.replace("ws://", "http://").removesuffix("/v1/session")
    with urllib.request.urlopen(base + "/auth/v1/.well-known/jwks.json", timeout=5) as r:
        jwks = json.loads(r.read())
    token = run(["token", "--user", "carol"], module_env).stdout.strip()
    (jwk,) = jwks["keys"]
    assert jwt.get_unverified_header(token)["kid"] == jwk["kid"]
    key = jwt.PyJWK(jwk).key
    assert jwt.decode(token, key, algorithms=["ES256"], audience="authenticated")["sub"] == (
        user_uuid("carol")
    )


def test_talk_with_a_bad_token_fails_clearly(served, module_env):
    out = run(["talk", "--text", "hi", "--engine", served, "--token", "not-a-jwt"], module_env)
    assert out.returncode == 1
    assert "4401" in out.stderr and "invalid access token" in out.stderr
    assert "visible to other users" in out.stderr  # --token is a warning, not a secret


@pytest.mark.parametrize("how", ["env", "stdin", "file"])
def test_tokens_come_from_env_stdin_or_a_file(served, module_env, tmp_path, how):
    """A bad token from each source is presented (4401), and nothing warns."""
    args = ["talk", "--text", "hi", "--engine", served]
    e, stdin = dict(module_env), None
    if how == "env":
        e["VOCO_TOKEN"] = "not-a-jwt"
    elif how == "stdin":
        args += ["--token-file", "-"]
        stdin = "not-a-jwt\n"
    else:
        (tmp_path / "tok").write_text("not-a-jwt\n")
        args += ["--token-file", str(tmp_path / "tok")]
    out = run(args, e, stdin=stdin)
    assert out.returncode == 1 and "4401" in out.stderr
    assert "visible to other users" not in out.stderr


def test_demo_with_a_silent_wav_ends_with_no_speech_heard(env, tmp_path):
    wav = write_wav(tmp_path / "silence.wav", silence(1000), rate=16000)
    out = run(["demo", "--wav", str(wav), "--out", str(tmp_path / "r.mp3")], env)
    assert out.returncode == 1
    assert f"voco: no speech heard in {wav}" in out.stderr
    assert "Traceback" not in out.stderr
