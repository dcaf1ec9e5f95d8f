"""``voco talk``: one local-runtime session driven by a file (protocol §6).

Streams a WAV in real time (or sends a typed turn), answers every
``mcp.request`` through the sandbox, prints the transcript and the reply,
writes the reply audio, and exits after its turn's ``agent.done`` and
``audio.end``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from voco.local.audio_source import WavSource
from voco.local.engine_client import EngineClient, SessionRefused
from voco.local.mcp_bridge import McpBridge
from voco.local.sandbox.display import escape
from voco.protocol import messages as m


@dataclass
class TalkResult:
    transcript: str = ""
    reply: str = ""
    model: str = ""
    interrupted: bool = False
    audio: bytearray = field(default_factory=bytearray)
    encoding: str = "mp3"
    metrics: dict[str, object] = field(default_factory=dict)
    errors: list[m.Error] = field(default_factory=list)


async def talk(
    url: str,
    token: str,
    *,
    wav: Path | None = None,
    text: str | None = None,
    bridge: McpBridge,
    encoding: str = "mp3",
    project_id: str = "default",
    timeout_s: float = 180.0,
    log: TextIO = sys.stderr,
) -> TalkResult:
    start = m.SessionStart(
        token=token,
        project_id=project_id,
        audio=m.AudioConfig(output=m.AudioOutput(encoding=encoding)),  # type: ignore[arg-type]
    )
    client = await EngineClient.connect(url, start)
    result = TalkResult(encoding=encoding)
    sender: asyncio.Task[None] | None = None
    try:
        if wav is not None:
            source = WavSource(wav)

            async def stream() -> None:
                async for frame in source.frames():
                    await client.send_audio(frame)

            sender = asyncio.create_task(stream())
        else:
            await client.send(m.TextInput(text=text or ""))
        await asyncio.wait_for(_collect(client, result, bridge, log), timeout_s)
    finally:
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
        await bridge.aclose()
        with contextlib.suppress(Exception):
            await client.send(m.SessionEnd())
        await client.close()
    return result


async def _collect(
    client: EngineClient, result: TalkResult, bridge: McpBridge, log: TextIO
) -> None:
    turn: str | None = None
    current: str | None = None  # response whose audio we are receiving
    done = False
    while True:
        item = await client.recv()
        if item.audio is not None:
            if current is not None:
                result.audio += item.audio
            continue
        msg = item.message
        if isinstance(msg, m.TranscriptFinal):
            turn = msg.turn_id
            result.transcript = msg.text
        elif isinstance(msg, m.McpRequest):
            bridge.submit(msg, client)
        elif isinstance(msg, m.AudioStart):
            current = msg.response_id
        elif isinstance(msg, m.AudioEnd):
            # a file is "played" once written
            await client.send(m.AudioPlayed(response_id=msg.response_id, played_ms=msg.duration_ms))
        elif isinstance(msg, m.AgentDone) and msg.turn_id == turn:
            result.reply, result.model, result.interrupted = msg.text, msg.model, msg.interrupted
            done = True
        elif isinstance(msg, m.Metrics) and msg.turn_id == turn:
            # metrics close a response: they follow its agent.done and audio.end
            result.metrics = msg.model_dump(exclude={"type"})
            if done:
                return
        elif isinstance(msg, m.Error):
            result.errors.append(msg)
            print(f"voco: error {escape(msg.code)}: {escape(msg.message)}", file=log)
            if msg.fatal:
                raise SessionRefused(None, msg, msg.message)


def write_audio(result: TalkResult, out: Path) -> None:
    if result.encoding == "mp3":
        out.write_bytes(bytes(result.audio))
        return
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(24000)
        w.writeframes(bytes(result.audio))
    out.write_bytes(buf.getvalue())
