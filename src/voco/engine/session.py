"""One conversation: the voice pipeline between a WebSocket and the agent graph.

The :class:`~voco.protocol.connection.ServerConnection` has already turned
frames into messages and 512-sample audio frames; this class acts on them:

* every audio frame goes through the shared batched VAD and the turn detector
  *in the reader*, so a barge-in is decided where the audio is read, never
  behind a queue;
* a confirmed end of speech finishes the utterance's transcription and starts a
  *response* task: the graph run (model words → ``agent.delta``) beside a
  :class:`~voco.engine.speaker.Speaker` (clauses → TTS → audio frames);
* every way a response is cut (barge-in, ``interrupt``, a new turn, speech while
  thinking, close) goes through one cut path, ``_cut`` of the
  :class:`~voco.engine.barge.BargeIn` part, which executes the plan the
  sans-I/O :class:`~voco.engine.lifecycle.ResponseLifecycle` decides.

The clock is injected (``clock``) so the lifecycle's timings come from one
source; this class only sends, awaits and spawns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from voco.agent.context import AgentContext
from voco.agent.state import chat_messages, message
from voco.agent.tools import MCP_TOOLS
from voco.engine.barge import BargeIn, TentativeHalts
from voco.engine.lifecycle import STILL_WORKING, Cut, ResponseLifecycle
from voco.engine.listener import Listener, ListenerHost
from voco.engine.mcp_port import SessionMcpPort
from voco.engine.outcomes import ResponseOutcomes
from voco.engine.playout import ResponseAudio
from voco.engine.prefetch import PrefetchSlot, PrimedLLM, PrimedPort, PrimedTTS
from voco.engine.record import Turn, interruption_updates, new_id
from voco.engine.response import Response, ResponseEmitter
from voco.engine.runtime import EngineRuntime
from voco.engine.speaker import Speaker
from voco.engine.tool_log import RecordingPort
from voco.engine.tool_progress import ToolProgress
from voco.engine.writer import SerialWriter
from voco.protocol import messages as m
from voco.providers.base import ChatMessage, ProviderError
from voco.store.tenancy import SessionGrant

__all__ = ["Session", "Turn", "interruption_updates"]

log = logging.getLogger("voco.session")

SYSTEM_PROMPT = (
    "You are Voco, a voice coding assistant. You talk with a developer about the code "
    "in their project and act on it with the tools you have. Your words are spoken "
    "aloud: answer in short, plain sentences, no markdown, no code blocks unless asked, "
    "and never read long paths or hashes character by character."
)
ENGINE_MODEL = "engine"  # agent.done.model of a fixed sentence no model wrote
Clock = Callable[[], float]


class Session(ListenerHost, BargeIn, ResponseOutcomes, ToolProgress):
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
        grant: SessionGrant,
        clock: Clock = time.monotonic,
    ) -> None:
        self.rt = runtime
        self.clock = clock
        self._send_text_raw = send_text
        self._send_bytes_raw = send_bytes
        self._send_lock = asyncio.Lock()
        self.session_id = session_id
        self.thread_id = thread_id
        self.user_id = user_id
        self.project_id = project_id
        self.domain = domain
        self.encoding = encoding
        self.grant = grant  # the tenant store: one run per thread, turn records
        self.listener = Listener(runtime, self, clock=clock, spawn=self._spawn)
        self.response: Response | None = None
        self.halts = TentativeHalts(self, clock=clock, spawn=self._spawn)  # issue 10 §2
        self.mcp = SessionMcpPort(
            self._send_mcp_request, on_result=self.listener.vocabulary.observe
        )
        self._state: str | None = None
        self._closed = False
        # the reply prepared during the user's pause (engine/speculative.py)
        self.prefetch = PrefetchSlot(
            runtime.llm,
            runtime.tts,
            system=SYSTEM_PROMPT,
            tools=MCP_TOOLS,
            clock=clock,
            tool_call=partial(self.mcp.call, speculative=True),  # read-only ones only
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        # graph state round trips of cut replies, in order, off the reader path
        self.writer = SerialWriter(f"session {session_id}")
        self._unended: dict[str, Response] = {}  # responses whose end is not yet recorded
        if runtime.retention is not None:  # memory mode: not evicted while held
            runtime.retention.pin(thread_id)

    # ------------------------------------------------------------------ sending

    async def send(self, msg: m._Msg) -> None:
        async with self._send_lock:
            await self._send_text_raw(msg.to_json())

    async def set_state(self, value: str) -> None:
        if value != self._state:
            self._state = value
            await self.send(m.State(value=value))  # type: ignore[arg-type]

    async def _send_mcp_request(self, req: m.McpRequest) -> None:
        if not req.speculative:  # the user is still pausing: no state of its own
            await self.set_state("running_tool")
        await self.send(req)

    # ------------------------------------------------------------------- audio

    async def on_audio(self, frames: list[bytes], first_index: int) -> None:
        await self.listener.on_audio(frames, first_index)

    async def user_started_speaking(self, confirmed_ms: int, onset_ms: int) -> None:
        self.prefetch.drop()
        self.halts.new_utterance()
        await self._cut_current(Cut.SPEECH, confirmed_ms)
        await self.send(m.VadSpeechStart(t_ms=onset_ms))
        await self.set_state("listening")

    async def user_turn(self, turn: Turn) -> None:
        if await self.halts.words(turn.text, final=True):
            return  # a backchannel: the reply it halted plays on, no turn of its own
        await self.start_turn(turn)

    async def nothing_heard(self) -> None:
        await self.halts.nothing_heard()
        if self.response is None or not self.response.life.is_live(self.clock()):
            await self.set_state("listening")

    async def turn_may_end(self, text: str) -> None:
        """Prepare the reply to ``text`` while the end-of-turn silence runs:
        nothing is sent, stored or billed until :meth:`start_turn` takes it."""
        if not self._closed and self.halts.may_prepare():  # not for a backchannel
            await self.prefetch.prepare(text, self._history)

    async def _history(self) -> list[ChatMessage]:
        await self.writer.settled()  # a cut reply's record is in before we read
        snapshot = await self.rt.graph.aget_state(self._graph_config())
        return chat_messages(snapshot.values)

    async def turn_goes_on(self) -> None:
        self.prefetch.drop()

    async def not_understood(self, turn: Turn, exc: ProviderError) -> None:
        await self.send(m.Error(code="stt_failed", message=str(exc)))
        await self._apologise(turn, "Sorry, I couldn't make out what you said.")

    # -------------------------------------------------------------------- turns

    def _stream_ms(self) -> int:
        return self.listener.stream_ms()

    async def on_text_input(self, text: str) -> None:
        await self._cut_current(Cut.INTERRUPT, self._stream_ms())
        turn = Turn(new_id(), new_id(), text)
        turn.speech_end_at = self.clock()
        await self.start_turn(turn)

    async def on_interrupt(self) -> None:
        if self.response is None:
            return
        await self._cut_current(Cut.INTERRUPT, self._stream_ms())
        await self.set_state("listening")

    def _new_response(self, turn: Turn) -> Response:
        rid = new_id()
        life = ResponseLifecycle(
            ResponseAudio(rid),
            started_at=self.clock(),
            default_model=self.rt.llm.model_id("haiku"),
            still_working_s=self.rt.deadlines.still_working_s,
        )
        resp = Response(turn, rid, life, reply_msg_id=new_id())
        self.response = resp
        self._unended[rid] = resp
        return resp

    async def start_turn(self, turn: Turn) -> None:
        await self._cut_current(Cut.INTERRUPT, self._stream_ms())
        await self.send(m.TranscriptFinal(turn_id=turn.turn_id, text=turn.text))
        resp = self._new_response(turn)
        resp.prefetch = self.prefetch.take(turn.text)
        resp.task = asyncio.create_task(self._respond(resp))

    async def _respond(self, resp: Response) -> None:
        await self.set_state("thinking")
        speaker = resp.speaker = self._speaker(resp)  # resumable after a false barge-in
        emitter = ResponseEmitter(resp, speaker, send=self.send, clock=self.clock)
        resp.emitter = emitter
        pre = resp.prefetch
        turn_port = self.mcp.turn()  # wire ids of this turn's own (engine/mcp_port.py)
        resp.tools = RecordingPort(turn_port if pre is None else PrimedPort(turn_port, pre))
        llm = self.rt.llm if pre is None else PrimedLLM(self.rt.llm, pre)
        ctx = AgentContext(llm, emitter, resp.tools, SYSTEM_PROMPT)
        speaking = asyncio.create_task(speaker.run())
        cue = asyncio.create_task(self._still_working_cue(resp))
        user = message(ChatMessage("user", resp.turn.text), resp.turn.user_msg_id)
        try:
            try:
                await self.writer.settled()  # a cut reply's record is in before we read
                # one run per thread: another session's run on it finishes first
                async with self.grant.run_lock():
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
            cue.cancel()
            await self._finish_response(resp, resp.life.finished())
            speaker.finish()
            try:
                await speaking
            except ProviderError as exc:  # the reply text went out; its voice did not
                await self.send(m.Error(code="tts_failed", message=str(exc)))
            await self._send_metrics(resp, speaker)
            resp.life.task_ended(self.clock())
            if self._take_end(resp):
                await self.set_state("listening")
            else:
                self._spawn(self._back_to_listening(resp))
        finally:
            resp.life.running = False
            if pre is not None:
                pre.cancel()
            for t in (cue, speaking):
                if not t.done():
                    t.cancel()
                    with contextlib.suppress(BaseException):
                        await t

    async def _still_working_cue(self, resp: Response) -> None:
        """Say "still working on it" once if the user has heard nothing for a while."""
        while (due := resp.life.next_cue_at()) is not None:
            # coarse floor: an injected clock that does not move must not spin
            await asyncio.sleep(max(0.05, due - self.clock()))
            if resp.life.still_working_due(self.clock()) and resp.emitter is not None:
                await resp.emitter.say(STILL_WORKING)
                return

    def _speaker(self, resp: Response) -> Speaker:
        tts = self.rt.tts if resp.prefetch is None else PrimedTTS(self.rt.tts, resp.prefetch)
        self.listener.echo.reset()  # a new reply: a new reference timeline
        return Speaker(
            tts,
            resp.audio,
            self.encoding,
            on_start=lambda: self._audio_start(resp),
            send_audio=lambda data: self._send_audio(resp, data),
            on_end=lambda ms: self._audio_end(resp, ms),
            clock=self.clock,
            on_pcm=self.listener.echo.add_reference,
        )

    async def _apologise(self, turn: Turn, text: str) -> None:
        """Speak a fixed sentence as the reply to ``turn`` (no model involved), so a
        failure the user cannot see is still heard."""
        resp = self._new_response(turn)
        resp.life.on_model(ENGINE_MODEL)
        speaker = self._speaker(resp)

        async def speak() -> None:
            try:
                resp.life.on_text(text, self.clock(), from_model=False)
                await self._finish_response(resp, resp.life.finished())
                speaker.say(text)
                speaker.finish()
                with contextlib.suppress(ProviderError):
                    await speaker.run()
            finally:
                resp.life.task_ended(self.clock())
                self._end_or_watch(resp)

        resp.task = asyncio.create_task(speak())

    async def _back_to_listening(self, resp: Response) -> None:
        await self._watch_end(resp)  # recorded before "listening" goes out
        if self.response is resp and not resp.life.cut:
            await self.set_state("listening")

    # --------------------------------------------------------------- plumbing

    def _graph_config(self) -> dict[str, Any]:
        return {"configurable": {"thread_id": self.thread_id}}

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def busy(self) -> bool:
        """A response is thinking or still audible (shutdown drains these)."""
        return self.response is not None and self.response.life.is_live(self.clock())

    def describe(self) -> str:
        """One log line's worth: which session, and what a cut would lose."""
        r = self.response
        what = "idle"
        if r is not None and r.life.is_live(self.clock()):
            what = f"response {r.response_id} {r.life.phase.value} (turn {r.turn.turn_id})"
        return f"session {self.session_id} thread {self.thread_id}: {what}"

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.rt.retention is not None:
            self.rt.retention.unpin(self.thread_id)
        if self.busy():
            log.warning("closing %s", self.describe())
        self.mcp.close()
        self.prefetch.drop()
        await self._cut_current(Cut.CLOSE, self._stream_ms())
        if self.response is not None and self.response.task is not None:  # the cut one stops
            await asyncio.wait([self.response.task])
        for resp in list(self._unended.values()):  # nothing more will be heard
            self._take_end(resp, now=True)
        for task in list(self._tasks):
            task.cancel()
        await self.listener.aclose()
        await self.writer.aclose()  # every cut record written: nothing lost
