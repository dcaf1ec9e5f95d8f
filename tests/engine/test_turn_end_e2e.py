"""A hesitation mid-sentence is one turn, end to end (real WebSocket, VAD,
Whisper and Piper; speech streamed in real time)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.fakes import ScriptedLLM
from tests.speech import piper_speech, silence, trim
from voco.local.engine_client import EngineClient
from voco.local.streamer import RealtimeStreamer
from voco.protocol import messages as m

pytestmark = pytest.mark.timeout(90)


async def test_a_pause_after_of_does_not_end_the_turn(engine_factory):
    llm = ScriptedLLM(lambda msgs: [f"You asked: {msgs[-1].content}"])
    async with engine_factory(llm) as eng:
        client = await EngineClient.connect(eng.url, m.SessionStart(token=eng.token()))
        up = RealtimeStreamer(client.send_audio)
        up.start()
        got: list[m.ServerMessage] = []
        try:
            pcm = np.concatenate(
                [
                    trim(piper_speech("Read the first ten lines of")),
                    silence(700),  # longer than the old fixed 320 ms end of turn
                    trim(piper_speech("the config file.")),
                ]
            )
            up.say(pcm)

            async def until_done() -> None:
                while True:
                    r = await client.recv()
                    if r.message is not None:
                        got.append(r.message)
                        if isinstance(r.message, m.AgentDone) and not r.message.interrupted:
                            return

            await asyncio.wait_for(until_done(), 60)
        finally:
            await up.stop()
            await client.close()
    finals = [x for x in got if isinstance(x, m.TranscriptFinal)]
    assert len(finals) == 1, finals
    assert "config" in finals[0].text.lower() and "lines" in finals[0].text.lower()
    assert len([x for x in got if isinstance(x, m.VadSpeechEnd)]) == 1
    assert "config" in llm.calls[-1][-1].content.lower()  # answered the whole sentence
