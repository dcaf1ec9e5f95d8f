"""A barge-in judged false (issue 10 §2) over the real protocol, with real
speech through the real VAD, STT and TTS: a backchannel resumes the same reply
(``resume_audio`` + the rest of its audio, one uninterrupted reply on record);
"stop" leaves it cut."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.engine.test_barge_in import Conversation, start
from tests.fakes import LONG_REPLY, ScriptedLLM
from tests.speech import espeak_speech, piper_speech, silence, trim
from voco.protocol import messages as m
from voco.store.tenancy import MemoryTenantStore

pytestmark = pytest.mark.timeout(240)
REPLY = ". ".join(LONG_REPLY.split(". ")[:3]) + "."  # ~10 s of speech


def script(msgs):
    users = [x for x in msgs if x.role == "user"]
    return [REPLY] if len(users) == 1 else ["Okay, I stopped."]


async def first_reply(conv: Conversation) -> m.AudioStart:
    conv.up.say(np.concatenate([espeak_speech("Tell me about this project."), silence(100)]))
    st = (await conv.until(lambda x: isinstance(x, m.AudioStart))).message
    assert isinstance(st, m.AudioStart)
    await asyncio.sleep(1.5)  # the user hears a few words
    return st


def audio_after(conv: Conversation, kind: type) -> int:
    """Bytes of audio received after the first message of ``kind``."""
    seen, n = False, 0
    for _, msg, audio in conv.log:
        if isinstance(msg, kind):
            seen = True
        elif audio is not None and seen:
            n += len(audio)
    return n


async def test_backchannel_resumes_the_same_reply_where_it_stopped(engine_factory):
    llm = ScriptedLLM(script)
    tenants = MemoryTenantStore()
    async with (
        engine_factory(llm, tenants=tenants) as eng,
        await start(eng, audio=m.AudioConfig(output=m.AudioOutput(encoding="pcm_s16le"))) as conv,
    ):
        st = await first_reply(conv)
        conv.up.say(trim(piper_speech("Yeah.")))
        halt = (await conv.until(lambda x: isinstance(x, m.HaltAudio))).message
        assert halt.response_id == st.response_id and halt.reason == "barge_in"
        resume = (await conv.until(lambda x: isinstance(x, m.ResumeAudio), timeout=60)).message
        assert resume.response_id == st.response_id
        assert resume.encoding == "pcm_s16le" and resume.sample_rate == 24000
        assert resume.from_ms > 0
        end = (
            await conv.until(
                lambda x: isinstance(x, m.AudioEnd) and x.response_id == st.response_id
            )
        ).message
        await conv.until(lambda x: isinstance(x, m.Metrics), timeout=60)
        # playback ends (on the reply's timeline, as the page counts it): the
        # response ends, its turn is recorded, then "listening"
        await conv.c.send(m.AudioPlayed(response_id=st.response_id, played_ms=end.duration_ms))
        await conv.until(lambda x: isinstance(x, m.State) and x.value == "listening", timeout=30)
        (done,) = conv.messages(m.AgentDone)  # sent once the text was complete

        # the rest of the reply came after resume_audio: from from_ms to the end
        rest_ms = audio_after(conv, m.ResumeAudio) // 2 * 1000 // 24000
        assert abs(rest_ms - (end.duration_ms - resume.from_ms)) <= 40, (rest_ms, end, resume)
        # one uninterrupted reply; the backchannel was no turn of its own
        assert not done.interrupted and done.text == REPLY
        assert not [x for x in conv.messages(m.AgentDone) if x.interrupted]
        assert len(conv.messages(m.TranscriptFinal)) == 1
        assert len(llm.calls) == 1 and llm.cancelled == 0
        state = await eng.runtime.graph.aget_state(
            {"configurable": {"thread_id": conv.c.ready.thread_id}}
        )
        last = state.values["messages"][-1]
        assert last["role"] == "assistant" and last["content"] == REPLY
        assert not last.get("interrupted") and not state.values.get("barge_in_detected")
        records = tenants.threads[conv.c.ready.thread_id].turns
        assert [(r.reply, r.interrupted, r.heard_text) for r in records] == [(REPLY, False, None)]
        # billed: every millisecond that crossed the wire, the replayed stretch again
        sent_ms = sum(len(a) for _, _, a in conv.log if a is not None) // 2 * 1000 // 24000
        assert abs(records[0].assistant_audio_ms - sent_ms) <= 40, (records[0], sent_ms)


async def test_stop_leaves_the_reply_cut(engine_factory):
    llm = ScriptedLLM(script)
    async with engine_factory(llm) as eng, await start(eng) as conv:
        st = await first_reply(conv)
        conv.up.say(trim(piper_speech("Stop.")))
        halt = (await conv.until(lambda x: isinstance(x, m.HaltAudio))).message
        assert halt.response_id == st.response_id
        done = await conv.until(lambda x: isinstance(x, m.AgentDone) and x.interrupted, timeout=60)
        assert done.message.response_id == st.response_id
        assert 0 < len(done.message.text) < len(REPLY)
        final = await conv.until(lambda x: isinstance(x, m.TranscriptFinal))
        assert "stop" in final.message.text.lower()
        await conv.until(lambda x: isinstance(x, m.AgentDone) and x.response_id != st.response_id)
        assert not conv.messages(m.ResumeAudio)
        seen_halt = False  # no frame of the halted response after halt_audio
        for _, msg, audio in conv.log:
            if isinstance(msg, m.HaltAudio):
                seen_halt = True
            elif isinstance(msg, m.AudioStart) and seen_halt:
                break
            assert not (seen_halt and audio is not None), "audio after halt_audio"
        last_call = llm.calls[-1]
        cut = [x for x in last_call if x.role == "assistant" and x.interrupted]
        assert [x.content for x in cut] == [done.message.text]
