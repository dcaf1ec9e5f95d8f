"""``voco talk``: one local-runtime session driven by a file, text or the mic (protocol §6).

Streams a WAV in real time (or the microphone, or sends a typed turn),
answers every ``mcp.request`` through the sandbox, prints the transcript and
the reply, and ends after its turn. With ``want_audio`` (saving or playing
the reply) it waits for the turn's ``agent.done``, ``audio.end`` and
``metrics``; without, it returns as soon as the reply text is complete,
because nobody is waiting for real-time playout.

A file with no speech in it must not leave the user waiting: once the file
has been streamed, the source keeps sending silence (as a microphone would)
and counts it in *stream* time; if no speech began within
``NO_SPEECH_AFTER_S`` of silence — or speech was heard but no words came out
of it within ``NO_WORDS_AFTER_S`` — the turn ends with :class:`NoSpeech`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys
import wave
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from voco.audio.pcm import FRAME_MS
from voco.local.audio_source import SILENCE, AudioSource, Pacer, frames_of, load_wav_16k
from voco.local.engine_client import SessionRefused
from voco.local.mcp_bridge import McpBridge
from voco.local.reconnect import ReconnectPolicy
from voco.local.resuming import Reconnecting, ResumeFailed, ResumingSession
from voco.local.sandbox.display import escape
from voco.protocol import messages as m

NO_SPEECH_AFTER_S = 1.5  # trailing silence with no speech onset at all
NO_WORDS_AFTER_S = 8.0  # after the last speech ended, still no transcript

# A player takes each chunk of reply audio and blocks until the device has
# taken it (``voco talk --play``); it runs in a worker thread.
AudioSink = Callable[[bytes], None]


class NoSpeech(Exception):
    """The audio ended and the engine heard no words in it."""


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
    thread_id: str = ""
    reconnects: int = 0  # engine connections lost and resumed during the turn


@dataclass
class _Heard:
    """What the engine said about the input so far (read by the file streamer)."""

    speech_started: int = 0
    speech_ended: int = 0
    transcribed: bool = False
    no_speech: asyncio.Event = field(default_factory=asyncio.Event)


async def _stream_file(client: ResumingSession, wav: Path, heard: _Heard) -> None:
    """The file in real time, then silence until the engine has (or has not) heard words."""
    pacer = Pacer()
    for frame in frames_of(load_wav_16k(wav)):
        await client.send_audio(frame)
        await pacer.tick()
    quiet_frames = 0
    ended_seen = heard.speech_ended
    while True:
        await client.send_audio(SILENCE)
        await pacer.tick()
        if heard.speech_ended != ended_seen:
            ended_seen, quiet_frames = heard.speech_ended, 0
        quiet_frames += 1
        if heard.transcribed:
            continue
        quiet_s = quiet_frames * FRAME_MS / 1000
        limit = NO_SPEECH_AFTER_S if heard.speech_started == 0 else NO_WORDS_AFTER_S
        in_speech = heard.speech_started > heard.speech_ended
        if quiet_s >= limit and not in_speech:
            heard.no_speech.set()
            return


async def _stream_source(client: ResumingSession, source: AudioSource) -> None:
    frames: AsyncIterator[bytes] = source.frames()
    async for frame in frames:
        await client.send_audio(frame)


async def talk(
    url: str,
    token: str,
    *,
    wav: Path | None = None,
    text: str | None = None,
    source: AudioSource | None = None,
    bridge: McpBridge,
    encoding: str = "mp3",
    want_audio: bool = True,
    player: AudioSink | None = None,
    project_id: str = "default",
    resume_thread: str | None = None,
    policy: ReconnectPolicy | None = None,
    timeout_s: float = 180.0,
    log: TextIO = sys.stderr,
) -> TalkResult:
    """Run one turn. Raises :class:`NoSpeech` if a file held no words,
    :class:`SessionRefused` if the engine refused the session for good (a lost
    connection is resumed: :class:`ResumeFailed` if it stays lost)."""

    names = await bridge.project_names()

    def start(thread_id: str | None) -> m.SessionStart:
        return m.SessionStart(
            token=token,
            project_id=project_id,
            thread_id=thread_id or resume_thread,
            audio=m.AudioConfig(output=m.AudioOutput(encoding=encoding)),  # type: ignore[arg-type]
            project_names=names,
        )

    async def reconnecting(r: Reconnecting) -> None:
        print(
            f"voco: {r.why}; reconnecting in {r.delay_s:.1f} s (attempt {r.attempt})",
            file=log,
            flush=True,
        )

    client = ResumingSession(
        url, start, policy=policy, on_reconnect=reconnecting, on_lost=bridge.cancel_pending
    )
    await client.open()
    result = TalkResult(encoding=encoding)
    heard = _Heard()
    sender: asyncio.Task[None] | None = None
    try:
        if wav is not None:
            sender = asyncio.create_task(_stream_file(client, wav, heard))
        elif source is not None:
            sender = asyncio.create_task(_stream_source(client, source))
        else:
            await client.send_text(text or "")
        collect = asyncio.create_task(
            _collect(client, result, bridge, log, heard, want_audio=want_audio, player=player)
        )
        gave_up = asyncio.create_task(heard.no_speech.wait())
        waiting: set[asyncio.Future[Any]] = {collect, gave_up}
        if sender is not None:
            waiting.add(sender)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    if collect in done:
                        collect.result()  # re-raises why collection failed
                        break
                    if gave_up in done:
                        raise NoSpeech("no speech heard")
                    if sender is not None and sender in done:
                        waiting.discard(sender)
                        sender.result()  # a microphone that failed says why
        finally:
            for task in (collect, gave_up):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
    finally:
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
        await bridge.aclose()
        await client.close()
    result.thread_id = client.thread_id or ""
    result.reconnects = client.reconnects
    return result


async def _collect(
    client: ResumingSession,
    result: TalkResult,
    bridge: McpBridge,
    log: TextIO,
    heard: _Heard,
    *,
    want_audio: bool,
    player: AudioSink | None,
) -> None:
    turn: str | None = None
    current: str | None = None  # response whose audio we are receiving
    starts: dict[str, int] = {}  # where each response's audio begins in result.audio
    done = False
    while True:
        item = await client.recv()
        if item.resolved is not None:  # settled while the engine link was down
            if item.resolved.outcome == "lost":
                raise ResumeFailed(
                    f"the turn {item.resolved.text!r} was lost twice; not sent again"
                )
            result.reply = item.resolved.reply  # it had finished: the thread has the reply
            return
        if item.audio is not None:
            if current is not None:
                result.audio += item.audio
                if player is not None:
                    await asyncio.to_thread(player, item.audio)
            continue
        msg = item.message
        if isinstance(msg, m.VadSpeechStart):
            heard.speech_started += 1
        elif isinstance(msg, m.VadSpeechEnd):
            heard.speech_ended += 1
        elif isinstance(msg, m.TranscriptFinal):
            turn = msg.turn_id
            heard.transcribed = True
            result.transcript = msg.text
        elif isinstance(msg, m.McpRequest) and client.client is not None:
            bridge.submit(msg, client.client)  # this connection's: ids are per session
        elif isinstance(msg, m.AudioStart):
            current = msg.response_id
            starts[msg.response_id] = len(result.audio)
        elif isinstance(msg, m.HaltAudio):
            if current == msg.response_id:
                current = None  # drop what follows: it may be resumed (below)
        elif isinstance(msg, m.ResumeAudio):
            # a false barge-in: the engine sends the reply again from from_ms, as
            # a fresh stream; keep what was received up to there, then append it
            at = starts.get(msg.response_id)
            if at is not None:
                del result.audio[at + audio_offset(msg.from_ms, result.encoding) :]
            current = msg.response_id
        elif isinstance(msg, m.AudioEnd):
            # a file is "played" once written; a player blocks until it has played
            await client.send(m.AudioPlayed(response_id=msg.response_id, played_ms=msg.duration_ms))
        elif isinstance(msg, m.AgentDone) and msg.turn_id == turn:
            result.reply, result.model, result.interrupted = msg.text, msg.model, msg.interrupted
            done = True
            if not want_audio:
                return  # the text is complete; nobody waits for playout
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


MP3_FRAME_MS, MP3_FRAME_BYTES = 24, 144  # 24 kHz MPEG-2 layer III at 48 kbit/s (audio/encode.py)


def audio_offset(ms: int, encoding: str) -> int:
    """Bytes of a response's audio that hold its first ``ms`` (MP3: whole
    frames, so the cut lands on a frame boundary; CBR, no padding at 24 kHz)."""
    if encoding == "mp3":
        return ms // MP3_FRAME_MS * MP3_FRAME_BYTES
    return ms * 48  # 24 kHz, 16-bit mono


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
