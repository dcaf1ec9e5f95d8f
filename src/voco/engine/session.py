"""One conversation: the voice pipeline between a WebSocket and the agent graph.

The :class:`~voco.protocol.connection.ServerConnection` has already turned
frames into messages and 512-sample audio frames; this class acts on them:

* every audio frame goes through the shared batched VAD and the turn detector
  *in the reader*, so a barge-in is decided where the audio is read, never
  behind a queue;
* a confirmed end of speech finishes the utterance's transcription and starts a
  *response* task: the graph run (model words → ``agent.delta``) beside a
  :class:`~voco.engine.speaker.Speaker` (clauses → TTS → audio frames);
* a barge-in (64 ms of speech while audio plays) or ``interrupt`` halts the
  audio under the send lock — so no audio frame can follow ``halt_audio`` —
  cancels the response task, and records the reply cut to what was heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from voco.agent.context import AgentContext, Emitter
from voco.agent.state import Message, message
from voco.audio.pcm import FRAME_MS, pcm16_to_float
from voco.audio.turns import (
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TurnDetector,
)
from voco.audio.vad import VadStream
from voco.engine.mcp_port import SessionMcpPort
from voco.engine.playout import ResponseAudio
from voco.engine.runtime import EngineRuntime
from voco.engine.speaker import Speaker
from voco.protocol import messages as m
from voco.providers.base import ChatMessage, ProviderError, SpeechStream

log = logging.getLogger("voco.session")

SYSTEM_PROMPT = (
    "You are Voco, a voice coding assistant. You talk with a developer about the code "
    "in their project and act on it with the tools you have. Your words are spoken "
    "aloud: answer in short, plain sentences, no markdown, no code blocks unless asked, "
    "and never read long paths or hashes character by character."
)


def _id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class Turn:
    turn_id: str
    user_msg_id: str
    text: str = ""
    speech_end_at: float | None = None  # wall time the end of speech was decided
    stt_ms: int | None = None


@dataclass
class Response:
    turn: Turn
    response_id: str
    audio: ResponseAudio
    reply_msg_id: str
    task: asyncio.Task[None] | None = None
    text: list[str] = field(default_factory=list)
    model: str = ""
    started_at: float = field(default_factory=time.monotonic)
    first_delta_at: float | None = None
    done_sent: bool = False
    interrupted: bool = False
    emitter: Emitter | None = None


class Session:
    def __init__(
        self,
        runtime: EngineRuntime,
        *,
        send_text: Callable[[str], Awaitable[None]],
        send_bytes: Callable[[bytes], Awaitable[None]],
        session_id: str,
        thread_id: str,
        user_id: str,
        project_id: str,
        domain: str | None,
        encoding: m.Encoding,
    ) -> None:
        self.rt = runtime
        self._send_text_raw = send_text
        self._send_bytes_raw = send_bytes
        self._send_lock = asyncio.Lock()
        self.session_id = session_id
        self.thread_id = thread_id
        self.user_id = user_id
        self.project_id = project_id
        self.domain = domain
        self.encoding = encoding
        self.vad_stream = VadStream()
        self.turns = TurnDetector(runtime.turn_config)
        self._preroll: deque[bytes] = deque(
            maxlen=max(1, runtime.turn_config.preroll_ms // FRAME_MS)
        )
        self._utterance: SpeechStream | None = None
        self._preview: asyncio.Future[str | None] | None = None
        self._joined: Turn | None = None  # thinking turn the new speech joins
        self.response: Response | None = None
        self.mcp = SessionMcpPort(self._send_mcp_request)
        self._state: str | None = None
        self._closed = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ sending

    async def send(self, msg: m._Msg) -> None:
        async with self._send_lock:
            await self._send_text_raw(msg.to_json())

    async def set_state(self, value: str) -> None:
        if value != self._state:
            self._state = value
            await self.send(m.State(value=value))  # type: ignore[arg-type]

    async def _send_mcp_request(self, req: m.McpRequest) -> None:
        await self.set_state("running_tool")
        await self.send(req)

    async def _send_audio(self, resp: Response, data: bytes) -> bool:
        async with self._send_lock:
            if resp.audio.halted or self.response is not resp:
                return False
            await self._send_bytes_raw(data)
            return True

    # ------------------------------------------------------------------- audio

    async def on_audio(self, frames: list[bytes], first_index: int) -> None:
        for k, frame in enumerate(frames):
            prob = await self.rt.vad.probability(self.vad_stream, pcm16_to_float(frame))
            event = self.turns.push(prob)
            if isinstance(event, SpeechStarted):
                await self._speech_started(event, first_index + k)
            if self._utterance is not None and (
                self.turns.in_speech or isinstance(event, SpeechEnded)
            ):
                await self._utterance.push(frame)
            if isinstance(event, SpeechPaused):
                self._start_preview()
            elif isinstance(event, SpeechResumed):
                self._cancel_preview()
            elif isinstance(event, SpeechEnded):
                await self._speech_ended(event)
            self._preroll.append(frame)

    def _start_preview(self) -> None:
        """The user paused: transcribe now, while the end-of-turn silence runs."""
        self._cancel_preview()
        if self._utterance is not None:
            self._preview = asyncio.ensure_future(self._utterance.preview())

    def _cancel_preview(self) -> None:
        if self._preview is not None and not self._preview.done():
            self._preview.cancel()
        self._preview = None

    async def _speech_started(self, ev: SpeechStarted, frame_index: int) -> None:
        now = time.monotonic()
        resp = self.response
        if resp is not None and resp.audio.is_playing(now):
            await self.halt(resp, "barge_in", ev.confirmed_ms)
        elif resp is not None and resp.task is not None and not resp.task.done():
            # speech while thinking: cancel quietly; the new words join this turn
            if resp.audio.started_at is None:
                self._joined = resp.turn
            await self._cancel_response(resp, heard=resp.audio.started_at is not None)
        await self.send(m.VadSpeechStart(t_ms=ev.onset_ms))
        await self.set_state("listening")
        if self._utterance is not None:
            await self._utterance.aclose()
        self._cancel_preview()
        self._utterance = await self.rt.stt.open_stream(self._on_partial)
        # the onset frames and a little audio before them (the preroll ring
        # holds every frame up to the current one, which is pushed next)
        for f in self._preroll:
            await self._utterance.push(f)

    async def _on_partial(self, text: str) -> None:
        await self.send(m.TranscriptPartial(turn_id="pending", text=text))

    async def _speech_ended(self, ev: SpeechEnded) -> None:
        await self.send(m.VadSpeechEnd(t_ms=ev.end_ms))
        utterance, self._utterance = self._utterance, None
        if utterance is None:
            return
        decided = time.monotonic()
        joined, self._joined = self._joined, None
        preview, self._preview = self._preview, None
        self._spawn(self._finish_utterance(utterance, decided, joined, preview))

    async def _finish_utterance(
        self,
        utterance: SpeechStream,
        decided: float,
        joined: Turn | None,
        preview: asyncio.Future[str | None] | None,
    ) -> None:
        t0 = time.monotonic()
        try:
            text: str | None = None
            if preview is not None:  # speculative transcript of the same speech
                with contextlib.suppress(ProviderError):
                    text = await preview
            if text is None:
                text = await utterance.finish()
            text = text.strip()
        except ProviderError as exc:
            await self.send(m.Error(code="stt_failed", message=str(exc)))
            await self._apologise(
                joined or Turn(_id(), _id()), "Sorry, I couldn't make out what you said."
            )
            return
        finally:
            await utterance.aclose()
        stt_ms = int((time.monotonic() - t0) * 1000)
        if not text:
            if self.response is None or self.response.task is None or self.response.task.done():
                await self.set_state("listening")
            return
        if joined is not None:
            turn = Turn(joined.turn_id, joined.user_msg_id, f"{joined.text} {text}")
        else:
            turn = Turn(_id(), _id(), text)
        turn.speech_end_at, turn.stt_ms = decided, stt_ms
        await self.start_turn(turn)

    # -------------------------------------------------------------------- turns

    async def on_text_input(self, text: str) -> None:
        resp = self.response
        if resp is not None and resp.audio.is_playing(time.monotonic()):
            await self.halt(resp, "interrupt", self.turns.frame_index * FRAME_MS + FRAME_MS)
        elif resp is not None and resp.task is not None and not resp.task.done():
            await self._cancel_response(resp, heard=resp.audio.started_at is not None)
        turn = Turn(_id(), _id(), text)
        turn.speech_end_at = time.monotonic()
        await self.start_turn(turn)

    async def start_turn(self, turn: Turn) -> None:
        prev = self.response
        if prev is not None and prev.task is not None and not prev.task.done():
            await self._cancel_response(prev, heard=prev.audio.started_at is not None)
        await self.send(m.TranscriptFinal(turn_id=turn.turn_id, text=turn.text))
        resp = Response(turn, _id(), ResponseAudio(""), reply_msg_id=_id())
        resp.audio.response_id = resp.response_id
        self.response = resp
        resp.task = asyncio.create_task(self._respond(resp))

    async def _respond(self, resp: Response) -> None:
        await self.set_state("thinking")
        speaker = self._speaker(resp)
        emitter = _SessionEmitter(self, resp, speaker)
        resp.emitter = emitter
        ctx = AgentContext(self.rt.llm, emitter, self.mcp, SYSTEM_PROMPT)
        speaking = asyncio.create_task(speaker.run())
        user = message(ChatMessage("user", resp.turn.text), resp.turn.user_msg_id)
        try:
            try:
                await self.rt.graph.ainvoke(
                    {
                        "messages": [user],
                        "thread_id": self.thread_id,
                        "user_id": self.user_id,
                        "project_id": self.project_id,
                        "domain": self.domain,
                    },
                    self._graph_config(),
                    context=ctx,
                )
            except ProviderError as exc:
                await self.send(m.Error(code="provider_failed", message=str(exc)))
                speaker.say("Sorry, something went wrong on my side.")
            except Exception as exc:
                log.exception("graph run failed")
                await self.send(m.Error(code="internal", message=f"agent failed: {exc}"))
                speaker.say("Sorry, something went wrong on my side.")
            text = "".join(resp.text)
            resp.done_sent = True
            await self.send(
                m.AgentDone(
                    turn_id=resp.turn.turn_id,
                    response_id=resp.response_id,
                    text=text,
                    model=resp.model or self.rt.llm.model_id("haiku"),
                    interrupted=False,
                )
            )
            speaker.finish()
            try:
                await speaking
            except ProviderError as exc:  # the reply text went out; its voice did not
                await self.send(m.Error(code="tts_failed", message=str(exc)))
            await self._send_metrics(resp, speaker)
            if resp.audio.started_at is None:
                await self.set_state("listening")
            else:
                self._spawn(self._back_to_listening(resp))
        finally:
            if not speaking.done():
                speaking.cancel()
                with contextlib.suppress(BaseException):
                    await speaking

    def _speaker(self, resp: Response) -> Speaker:
        return Speaker(
            self.rt.tts,
            resp.audio,
            self.encoding,
            on_start=lambda: self._audio_start(resp),
            send_audio=lambda data: self._send_audio(resp, data),
            on_end=lambda ms: self._audio_end(resp, ms),
        )

    async def _apologise(self, turn: Turn, text: str) -> None:
        """Speak a fixed sentence as the reply to ``turn`` (no model involved), so a
        failure the user cannot see is still heard."""
        resp = Response(turn, _id(), ResponseAudio(""), reply_msg_id=_id())
        resp.audio.response_id = resp.response_id
        self.response = resp
        speaker = self._speaker(resp)

        async def speak() -> None:
            speaker.say(text)
            speaker.finish()
            with contextlib.suppress(ProviderError):
                await speaker.run()

        resp.task = asyncio.create_task(speak())

    async def _audio_start(self, resp: Response) -> None:
        async with self._send_lock:
            if resp.audio.halted:
                return
            resp.audio.started_at = time.monotonic()
            await self._send_text_raw(
                m.AudioStart(
                    response_id=resp.response_id,
                    encoding=self.encoding,
                    sample_rate=24000,
                ).to_json()
            )
        await self.set_state("speaking")

    async def _audio_end(self, resp: Response, duration_ms: int) -> None:
        async with self._send_lock:
            if resp.audio.halted:
                return
            await self._send_text_raw(
                m.AudioEnd(response_id=resp.response_id, duration_ms=duration_ms).to_json()
            )

    async def _back_to_listening(self, resp: Response) -> None:
        # playback end is a deadline on the wall clock (or an audio.played),
        # so poll it coarsely rather than wiring an event through every path
        while resp.audio.is_playing(time.monotonic()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if self.response is resp and not resp.audio.halted:
            await self.set_state("listening")

    async def _send_metrics(self, resp: Response, speaker: Speaker) -> None:
        t = resp.turn
        fields: dict[str, int] = {}
        if t.stt_ms is not None:
            fields["stt_ms"] = t.stt_ms
        if resp.first_delta_at is not None:
            fields["llm_ttft_ms"] = int((resp.first_delta_at - resp.started_at) * 1000)
        if speaker.first_audio_at is not None and speaker.first_clause_at is not None:
            fields["tts_ttfb_ms"] = int((speaker.first_audio_at - speaker.first_clause_at) * 1000)
            if t.speech_end_at is not None:
                e2e = int((speaker.first_audio_at - t.speech_end_at) * 1000)
                fields["e2e_ms"] = e2e
                parts = sum(fields.get(k, 0) for k in ("stt_ms", "llm_ttft_ms", "tts_ttfb_ms"))
                fields["engine_overhead_ms"] = max(0, e2e - parts)
        fields["audio_ms"] = resp.audio.sent_ms
        await self.send(m.Metrics(turn_id=t.turn_id, **fields))  # type: ignore[arg-type]

    # --------------------------------------------------------- halting/cancel

    async def halt(self, resp: Response, reason: str, t_ms: int) -> None:
        """Barge-in / interrupt while audio plays (protocol §4, steps 1–5)."""
        async with self._send_lock:
            if resp.audio.halted:
                return
            resp.audio.halted = True  # 2. no further audio frame passes _send_audio
            await self._send_text_raw(  # 1. halt_audio first
                m.HaltAudio(response_id=resp.response_id, reason=reason, t_ms=t_ms).to_json()  # type: ignore[arg-type]
            )
        await self._cancel_response(resp, heard=True)  # 3. + 4.

    async def _cancel_response(self, resp: Response, *, heard: bool) -> None:
        task = resp.task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if resp.interrupted or not heard:
            return
        # Sent even if a first agent.done already went out (text complete, audio
        # still playing): this one, interrupted and cut to what was heard,
        # supersedes it (docs/protocol.md).
        resp.interrupted = resp.done_sent = True
        heard_text = resp.audio.heard_text(resp.audio.heard_ms(time.monotonic()))
        await self.send(
            m.AgentDone(
                turn_id=resp.turn.turn_id,
                response_id=resp.response_id,
                text=heard_text,
                model=resp.model or self.rt.llm.model_id("haiku"),
                interrupted=True,
            )
        )
        await self._record_interrupted(resp, heard_text)  # 5. orchestrator sees the flag

    async def _record_interrupted(self, resp: Response, heard_text: str) -> None:
        config = self._graph_config()
        snapshot = await self.rt.graph.aget_state(config)
        existing: list[Message] = list(snapshot.values.get("messages", []))
        updates = interruption_updates(existing, resp.turn, resp.reply_msg_id, heard_text)
        await self.rt.graph.aupdate_state(
            config, {"messages": updates, "barge_in_detected": True}, as_node="model"
        )

    async def on_audio_played(self, msg: m.AudioPlayed) -> None:
        resp = self.response
        if resp is None or resp.response_id != msg.response_id:
            return
        resp.audio.played_ms = msg.played_ms
        if resp.audio.halted:  # correct the stored record with what was really heard
            heard = resp.audio.heard_text(resp.audio.heard_ms(time.monotonic()))
            await self._record_interrupted(resp, heard)

    async def on_mcp_progress(self, msg: m.McpProgress) -> bool:
        if not self.mcp.progress(msg):
            return False
        if msg.stage == "awaiting_approval":
            await self.set_state("awaiting_approval")
            resp = self.response
            if resp is not None and resp.task is not None and not resp.task.done():
                why = f" It needs your approval because {msg.reason}." if msg.reason else ""
                # a sentence of its own between the model's words, spaced both sides;
                # spoken, but transient: not part of agent.done.text (docs/protocol.md)
                if isinstance(resp.emitter, _SessionEmitter):
                    await resp.emitter.transient(
                        f" I'm waiting for your approval to go ahead.{why} "
                    )
        else:
            await self.set_state("running_tool")
        return True

    async def after_tool(self) -> None:
        """A tool answered: back to speaking if the reply's audio plays, else thinking."""
        resp = self.response
        waiting = any(not f.done() for f in self.mcp.pending_rpc_futures.values())
        if waiting or resp is None or resp.task is None:
            return
        if resp.task.done():
            return
        playing = resp.audio.is_playing(time.monotonic())
        await self.set_state("speaking" if playing else "thinking")

    async def _emit_now(self, resp: Response, text: str) -> None:
        emitter = resp.emitter
        if emitter is not None:
            await emitter.text(text)

    async def on_interrupt(self) -> None:
        resp = self.response
        if resp is None:
            return
        if resp.audio.is_playing(time.monotonic()):
            await self.halt(resp, "interrupt", self.turns.frame_index * FRAME_MS + FRAME_MS)
        elif resp.task is not None and not resp.task.done():
            await self._cancel_response(resp, heard=resp.audio.started_at is not None)
        await self.set_state("listening")

    # --------------------------------------------------------------- plumbing

    def _graph_config(self) -> dict[str, Any]:
        return {"configurable": {"thread_id": self.thread_id}}

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.mcp.close()
        resp = self.response
        if resp is not None and resp.task is not None and not resp.task.done():
            resp.audio.halted = True
            await self._cancel_response(resp, heard=False)
        for task in list(self._tasks):
            task.cancel()
        self._cancel_preview()
        if self._utterance is not None:
            await self._utterance.aclose()


def interruption_updates(
    existing: list[Message], turn: Turn, reply_msg_id: str, heard_text: str
) -> list[Message]:
    """Messages that record an interrupted reply (merged by id into the thread).

    The turn's user message is (re)written in case the run was cut before the
    graph stored it; text the model wrote this turn is blanked (it was not
    heard) while its tool calls stay, each closed with a result; one assistant
    message with what was heard, flagged ``interrupted``, ends the turn.
    """
    out: list[Message] = [message(ChatMessage("user", turn.text), turn.user_msg_id)]
    after = False
    answered = {x.get("tool_call_id") for x in existing if x["role"] == "tool"}
    for x in existing:
        if x.get("id") == turn.user_msg_id:
            after = True
            continue
        if not after or x.get("id") == reply_msg_id:
            continue
        if x["role"] == "assistant":
            out.append({**x, "content": ""})
            for c in x.get("tool_calls", []):
                if c["id"] not in answered:
                    out.append(
                        message(
                            ChatMessage(
                                "tool",
                                '{"status":"error","error":"cancelled: the user interrupted",'
                                '"code":"interrupted"}',
                                tool_call_id=c["id"],
                                is_error=True,
                            ),
                            _id(),
                        )
                    )
    out.append(message(ChatMessage("assistant", heard_text, interrupted=True), reply_msg_id))
    return out


class _SessionEmitter(Emitter):
    def __init__(self, session: Session, resp: Response, speaker: Speaker) -> None:
        self._s = session
        self._r = resp
        self._speaker = speaker

    async def text(self, text: str) -> None:
        r = self._r
        if r.first_delta_at is None:
            r.first_delta_at = time.monotonic()
        r.text.append(text)
        await self._s.send(
            m.AgentDelta(turn_id=r.turn.turn_id, response_id=r.response_id, text=text)
        )
        self._speaker.feed(text)

    async def transient(self, text: str) -> None:
        """Spoken now, shown while it matters, never part of the reply's text."""
        r = self._r
        await self._s.send(
            m.AgentDelta(
                turn_id=r.turn.turn_id, response_id=r.response_id, text=text, transient=True
            )
        )
        self._speaker.feed(text)

    async def model_selected(self, model: str, reasons: tuple[str, ...]) -> None:
        self._r.model = model

    async def error(self, code: str, message: str) -> None:
        await self._s.send(m.Error(code=code, message=message))
