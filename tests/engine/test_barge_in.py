"""Barge-in end to end (protocol §4 "Barge-in (normative)") over a real
WebSocket, with real speech through the real VAD, STT and TTS."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.fakes import LONG_REPLY, ScriptedLLM
from tests.speech import espeak_speech, piper_speech, silence, trim
from voco.local.engine_client import EngineClient
from voco.local.streamer import RealtimeStreamer
from voco.protocol import messages as m

pytestmark = pytest.mark.timeout(90)


def reply_script(msgs):
    users = [x for x in msgs if x.role == "user"]
    return [LONG_REPLY] if len(users) == 1 else ["Okay, I stopped."]


class Conversation:
    """A client that speaks in real time and records everything it receives."""

    def __init__(self, client: EngineClient) -> None:
        self.c = client
        self.up = RealtimeStreamer(client.send_audio)
        self.log: list[tuple[float, m.ServerMessage | None, bytes | None]] = []

    async def __aenter__(self) -> Conversation:
        self.up.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.up.stop()
        await self.c.close()

    async def until(self, pred, timeout: float = 30.0):
        async def loop():
            while True:
                r = await self.c.recv()
                self.log.append((r.at, r.message, r.audio))
                if r.message is not None and pred(r.message):
                    return r

        return await asyncio.wait_for(loop(), timeout)

    async def heard(self, ms: int, timeout: float = 30.0) -> None:
        """Until ``ms`` of reply audio (24 kHz PCM) has arrived: the user has heard
        most of it (the engine sends at most 300 ms ahead of playback). A positive
        signal, where a sleep would hear nothing on a machine slow to synthesize."""

        async def loop():
            got = 0
            while got < ms * 48:
                r = await self.c.recv()
                self.log.append((r.at, r.message, r.audio))
                got += len(r.audio or b"")

        await asyncio.wait_for(loop(), timeout)

    def messages(self, kind):
        return [x for _, x, _ in self.log if isinstance(x, kind)]


PCM = m.AudioConfig(output=m.AudioOutput(encoding="pcm_s16le"))


async def start(engine, **kw) -> Conversation:
    client = await EngineClient.connect(engine.url, m.SessionStart(token=engine.token(), **kw))
    return Conversation(client)


@pytest.mark.parametrize("slow_llm", [False, True], ids=["during-tts", "during-llm-stream"])
async def test_barge_in_halts_cuts_and_takes_the_next_turn(engine_factory, slow_llm):
    # slow enough that the model is surely still streaming at the barge-in, even
    # on a loaded machine where the first clause takes seconds to synthesize
    llm = ScriptedLLM(reply_script, delay_s=0.15 if slow_llm else 0.0)
    async with engine_factory(llm) as eng, await start(eng, audio=PCM) as conv:
        conv.up.say(np.concatenate([espeak_speech("Tell me about this project."), silence(100)]))
        first_start = await conv.until(lambda x: isinstance(x, m.AudioStart))
        await conv.heard(1200)  # let the user hear a few words
        onset_ms = conv.up.say(trim(piper_speech("Wait a moment, please.")))
        halt = (await conv.until(lambda x: isinstance(x, m.HaltAudio))).message
        assert halt.response_id == first_start.message.response_id
        assert halt.reason == "barge_in"
        assert 64 <= halt.t_ms - onset_ms <= 160, (halt.t_ms, onset_ms)

        done = await conv.until(lambda x: isinstance(x, m.AgentDone) and x.interrupted, timeout=10)
        heard = done.message.text
        assert done.message.response_id == halt.response_id
        assert heard and LONG_REPLY.startswith(heard.rstrip(".,")[: len(heard) - 2])
        assert len(heard) < len(LONG_REPLY) * 0.8

        final = await conv.until(lambda x: isinstance(x, m.TranscriptFinal))
        assert "wait" in final.message.text.lower()
        await conv.until(lambda x: isinstance(x, m.AudioEnd) and x.response_id != halt.response_id)

        # no audio frame of the halted response after halt_audio: every binary
        # frame after it belongs to the next audio.start
        seen_halt = False
        for _, msg, audio in conv.log:
            if isinstance(msg, m.HaltAudio):
                seen_halt = True
            elif isinstance(msg, m.AudioStart) and seen_halt:
                break
            elif audio is not None and seen_halt:
                pytest.fail("audio frame of the halted response arrived after halt_audio")

        # the stored conversation was cut: the next model call saw what was heard
        last_call = llm.calls[-1]
        interrupted = [x for x in last_call if x.role == "assistant" and x.interrupted]
        assert [x.content for x in interrupted] == [heard]
        assert last_call[-1].role == "user" and "wait" in last_call[-1].content.lower()
        if slow_llm:
            assert llm.cancelled == 1  # the in-flight model stream was cancelled


async def test_interrupt_message_halts_playback(engine_factory):
    llm = ScriptedLLM(lambda msgs: [LONG_REPLY])
    async with engine_factory(llm) as eng, await start(eng, audio=PCM) as conv:
        await conv.c.send(m.TextInput(text="tell me everything"))
        st = await conv.until(lambda x: isinstance(x, m.AudioStart))
        await conv.heard(800)
        await conv.c.send(m.Interrupt())
        halt = (await conv.until(lambda x: isinstance(x, m.HaltAudio))).message
        assert (halt.response_id, halt.reason) == (st.message.response_id, "interrupt")
        done = await conv.until(lambda x: isinstance(x, m.AgentDone) and x.interrupted)
        assert 0 < len(done.message.text) < len(LONG_REPLY)
        # the client reports what it actually played: the record follows it
        await conv.c.send(m.AudioPlayed(response_id=halt.response_id, played_ms=0))
        # thread.history is answered after the session's pending writes
        await conv.c.send(m.ThreadHistoryRequest())
        await conv.until(lambda x: isinstance(x, m.ThreadHistory))
        state = await eng.runtime.graph.aget_state(
            {"configurable": {"thread_id": conv.c.ready.thread_id}}
        )
        last = state.values["messages"][-1]
        assert last["interrupted"] and last["content"] == ""


async def test_interrupt_with_nothing_playing_is_a_no_op(engine_factory):
    async with engine_factory(ScriptedLLM()) as eng, await start(eng) as conv:
        await conv.c.send(m.Interrupt())
        await conv.c.send(m.Ping(id=1))
        await conv.until(lambda x: isinstance(x, m.Pong))
        assert not conv.messages(m.HaltAudio) and not conv.messages(m.Error)


async def test_speech_while_thinking_joins_the_turn_without_halt(engine_factory):
    llm = ScriptedLLM(lambda msgs: [f"You asked: {msgs[-1].content}"], first_delay_s=2.5)
    async with engine_factory(llm) as eng, await start(eng) as conv:
        conv.up.say(np.concatenate([piper_speech("Open the readme."), silence(50)]))
        first = await conv.until(lambda x: isinstance(x, m.TranscriptFinal))
        await conv.until(lambda x: isinstance(x, m.State) and x.value == "thinking")
        conv.up.say(piper_speech("And then run the tests."))
        second = await conv.until(lambda x: isinstance(x, m.TranscriptFinal))
        assert second.message.turn_id == first.message.turn_id
        assert second.message.text.startswith(first.message.text)
        assert "test" in second.message.text.lower()
        done = await conv.until(
            lambda x: isinstance(x, m.AgentDone) and not x.interrupted, timeout=20
        )
        assert "test" in done.message.text.lower()
        # the response the new words cut still got its agent.done, with nothing heard
        cut = [x for x in conv.messages(m.AgentDone) if x.interrupted]
        assert [(x.turn_id, x.text) for x in cut] == [(first.message.turn_id, "")]
        assert cut[0].response_id != done.message.response_id
        assert not conv.messages(m.HaltAudio)
        assert llm.cancelled == 1
