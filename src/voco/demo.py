"""``voco demo``: the whole loop on one laptop, offline, in one command.

Starts the engine in-process on a free loopback port with the embedded
providers, then runs the local runtime (``voco talk``) against it with the
bundled spoken question, the current directory as the only root and risky
actions denied. Prints what was heard and answered; writes the reply audio.
"""

from __future__ import annotations

import asyncio
import sys
from importlib.resources import files
from pathlib import Path

from voco.compose import running_engine
from voco.engine.runtime import EngineRuntime
from voco.local.mcp_bridge import McpBridge
from voco.local.sandbox.display import escape
from voco.local.talk import NoSpeech, talk, write_audio


def bundled_question() -> Path:
    return Path(str(files("voco").joinpath("assets/question.wav")))


async def _demo(out: Path, wav: Path) -> int:
    print("voco: loading the embedded models (Silero VAD, Whisper base, Piper)…", file=sys.stderr)
    runtime = await EngineRuntime.create()
    try:
        async with running_engine(runtime) as url:
            token = runtime.auth.issue("demo-user")
            bridge = McpBridge([Path.cwd()], "deny")
            print(f"voco: asking {wav.name} …", file=sys.stderr)
            try:
                result = await talk(url, token, wav=wav, bridge=bridge)
            except NoSpeech:
                print(f"voco: no speech heard in {wav}", file=sys.stderr)
                return 1
    finally:
        await runtime.aclose()
    print(f"you:  {escape(result.transcript)}")
    print(f"voco: {escape(result.reply)}")
    if result.metrics:
        print(
            "      "
            + ", ".join(f"{k}={v}" for k, v in result.metrics.items() if k.endswith("_ms")),
            file=sys.stderr,
        )
    write_audio(result, out)
    print(f"reply audio: {out} ({len(result.audio)} bytes of MP3)", file=sys.stderr)
    return 0 if result.reply else 1


def run_demo(out: Path, *, wav: Path | None = None) -> int:
    return asyncio.run(_demo(out, wav or bundled_question()))
