"""The runtime's ``session.start.project_names`` bias the very first turn:
the STT is given them, and the transcript the model sees uses their spelling."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from tests.fakes import ScriptedLLM
from tests.speech import piper_speech, silence
from voco.local.engine_client import EngineClient
from voco.local.streamer import RealtimeStreamer
from voco.protocol import messages as m
from voco.providers.base import STT, PartialCallback, SpeechStream, STTCapabilities

pytestmark = pytest.mark.timeout(60)


class HeardAsSpoken(STT):
    """Hears every utterance as a recogniser without the names would:
    "open the read me"; remembers what vocabulary each turn was given."""

    name = "heard-as-spoken"
    capabilities = STTCapabilities(streaming=False, interim_results=False, vocabulary=True)

    def __init__(self) -> None:
        self.vocabularies: list[list[str]] = []

    async def open_stream(
        self, on_partial: PartialCallback | None = None, *, vocabulary: Sequence[str] = ()
    ) -> SpeechStream:
        self.vocabularies.append(list(vocabulary))

        class Stream(SpeechStream):
            async def push(self, pcm: bytes) -> None:
                pass

            async def finish(self) -> str:
                return "open the read me"

            async def aclose(self) -> None:
                pass

        return Stream()


async def first_transcript(eng, names: list[str]) -> str:
    start = m.SessionStart(token=eng.token(), project_names=names)
    c = await EngineClient.connect(eng.url, start)
    up = RealtimeStreamer(c.send_audio)
    up.start()
    up.say(np.concatenate([silence(200), piper_speech("Open the readme."), silence(600)]))
    try:
        while True:
            got = await c.recv()
            if isinstance(got.message, m.TranscriptFinal):
                return got.message.text
    finally:
        await up.stop()
        await c.close()


async def test_first_turn_knows_the_projects_names(engine_factory):
    stt = HeardAsSpoken()
    async with engine_factory(ScriptedLLM(), stt=stt) as eng:
        text = await first_transcript(eng, ["README.md", "src", "main.py", "not a name!"])
    assert text == "open the README.md"
    assert stt.vocabularies and {"README.md", "main.py"} <= set(stt.vocabularies[0])
    assert "not a name!" not in stt.vocabularies[0]


async def test_without_names_the_first_turn_is_as_heard(engine_factory):
    stt = HeardAsSpoken()
    async with engine_factory(ScriptedLLM(), stt=stt) as eng:
        text = await first_transcript(eng, [])
    assert text == "open the read me"
    assert stt.vocabularies == [[]]
