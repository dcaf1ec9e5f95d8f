"""The listener ends a turn by the words of its pause (no sockets, stream-time clock).

Frames are fed one at a time with scripted VAD probabilities; the recogniser's
preview is released when the test says, so the order of "transcript known" and
"silence long enough" is the test's, not the machine's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from voco.audio.pcm import FRAME_MS, FRAME_SAMPLES
from voco.audio.turns import TurnConfig
from voco.audio.vad import BatchedVAD, VadStream
from voco.engine.listener import Listener, ListenerHost
from voco.engine.record import Turn
from voco.engine.runtime import EngineRuntime
from voco.engine.turn_end import TurnEndConfig
from voco.protocol import messages as m
from voco.providers.base import STT, ProviderError, SpeechStream, STTCapabilities

FRAME = bytes(FRAME_SAMPLES * 2)


class ScriptVAD(BatchedVAD):
    """The next frame's speech probability, set by the test."""

    def __init__(self) -> None:  # no model: the test decides
        self.prob = 0.0

    def submit(self, stream: VadStream, frame: Any, scored: Any) -> None:
        scored(self.prob, None)  # answers at once, inside submit


class GatedStream(SpeechStream):
    def __init__(self, stt: GatedSTT) -> None:
        self._stt = stt

    async def push(self, pcm: bytes) -> None:
        pass

    async def finish(self) -> str:
        return "FROM FINISH"

    async def aclose(self) -> None:
        pass

    async def preview(self) -> str | None:
        text = self._stt.previews.pop(0)
        await self._stt.gate.wait()
        return text


class GatedSTT(STT):
    name = "gated"
    capabilities = STTCapabilities(streaming=False, interim_results=False)

    def __init__(self, previews: list[str | None]) -> None:
        self.previews = previews
        self.gate = asyncio.Event()
        self.gate.set()

    async def open_stream(self, on_partial: Any = None, **kw: Any) -> SpeechStream:
        return GatedStream(self)


class Host(ListenerHost):
    def __init__(self) -> None:
        self.sent: list[m._Msg] = []
        self.turns: list[Turn] = []
        self.may_end: list[str] = []
        self.goes_on = 0
        self.turn_ready = asyncio.Event()

    async def send(self, msg: m._Msg) -> None:
        self.sent.append(msg)

    async def user_started_speaking(self, confirmed_ms: int, onset_ms: int) -> None:
        pass

    async def user_turn(self, turn: Turn) -> None:
        self.turns.append(turn)
        self.turn_ready.set()

    async def nothing_heard(self) -> None:
        pass

    async def not_understood(self, turn: Turn, exc: ProviderError) -> None:
        raise AssertionError(exc)

    async def turn_may_end(self, text: str) -> None:
        self.may_end.append(text)

    async def turn_goes_on(self) -> None:
        self.goes_on += 1


class Rig:
    def __init__(self, previews: list[str | None]) -> None:
        self.vad = ScriptVAD()
        self.stt = GatedSTT(previews)
        rt: Any = EngineRuntime(
            vad=self.vad,
            stt=self.stt,
            tts=None,
            llm=None,
            graph=None,
            auth=None,  # type: ignore[arg-type]
            tenants=None,
            turn_config=TurnConfig(end_silence_ms=320, pause_ms=128),  # type: ignore[arg-type]
            turn_end=TurnEndConfig(complete_ms=160, unsure_ms=320, incomplete_ms=1000),
        )
        self.host = Host()
        self.tasks: list[asyncio.Future[Any]] = []
        self.listener = Listener(
            rt, self.host, clock=lambda: self.listener.stream_ms() / 1000, spawn=self._spawn
        )

    def _spawn(self, coro: Awaitable[Any]) -> None:
        self.tasks.append(asyncio.ensure_future(coro))

    async def frames(self, n: int, prob: float) -> None:
        self.vad.prob = prob
        for _ in range(n):
            await self.listener.on_audio([FRAME], 0)
            for _ in range(5):  # let the preview and its callback run
                await asyncio.sleep(0)

    def speech_end(self) -> list[int]:
        return [x.t_ms for x in self.host.sent if isinstance(x, m.VadSpeechEnd)]

    async def settle(self) -> None:
        await asyncio.gather(*self.tasks)


def waited_ms(rig: Rig, turn: Turn) -> int:
    assert turn.speech_end_at is not None
    return round(turn.speech_end_at * 1000) - rig.speech_end()[-1]


async def test_a_whole_request_ends_after_the_short_silence() -> None:
    rig = Rig(["Run the tests."])
    await rig.frames(10, 0.9)
    await rig.frames(10, 0.0)
    await rig.settle()
    assert [t.text for t in rig.host.turns] == ["Run the tests."]  # the preview's words
    assert waited_ms(rig, rig.host.turns[0]) == 160
    assert rig.host.may_end == ["Run the tests."]


async def test_an_unfinished_sentence_waits_and_joins_what_follows() -> None:
    rig = Rig(["Read the first ten lines of", "Read the first ten lines of the config file."])
    await rig.frames(10, 0.9)
    await rig.frames(20, 0.0)  # 640 ms of hesitation: well past 160 and 320
    assert rig.host.turns == [] and rig.speech_end() == []
    assert rig.host.may_end == []  # nothing prepared for half a sentence
    await rig.frames(8, 0.9)
    assert rig.host.goes_on == 1
    await rig.frames(10, 0.0)
    await rig.settle()
    assert [t.text for t in rig.host.turns] == ["Read the first ten lines of the config file."]
    assert len(rig.speech_end()) == 1


async def test_an_unfinished_sentence_ends_after_the_long_silence() -> None:
    rig = Rig(["Open the file called"])
    await rig.frames(10, 0.9)
    await rig.frames(40, 0.0)
    await rig.settle()
    assert len(rig.host.turns) == 1
    assert waited_ms(rig, rig.host.turns[0]) == -(-1000 // FRAME_MS) * FRAME_MS  # whole frames


async def test_a_late_transcript_ends_the_turn_when_it_arrives() -> None:
    rig = Rig(["Show me the git status."])
    rig.stt.gate.clear()  # the recogniser is slow today
    await rig.frames(10, 0.9)
    await rig.frames(9, 0.0)  # 288 ms of silence, no words yet: no end
    assert rig.host.turns == []
    rig.stt.gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    await rig.settle()
    # ended by the transcript itself, at the last frame read: not a frame later
    assert len(rig.host.turns) == 1
    assert waited_ms(rig, rig.host.turns[0]) == 9 * FRAME_MS


async def test_no_early_transcript_waits_the_configured_end_silence() -> None:
    rig = Rig([None])
    await rig.frames(10, 0.9)
    await rig.frames(12, 0.0)
    await rig.settle()
    assert [t.text for t in rig.host.turns] == ["FROM FINISH"]
    assert waited_ms(rig, rig.host.turns[0]) == 320
    assert rig.host.may_end == []


async def test_resumed_speech_drops_the_prepared_reply() -> None:
    prob = 0.9
    rig = Rig(["Open the readme.", "Open the readme and the config file."])
    rig.stt.gate.clear()
    await rig.frames(10, prob)
    await rig.frames(4, 0.0)  # the pause: preview starts
    rig.stt.gate.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert rig.host.may_end == ["Open the readme."]
    await rig.frames(5, prob)  # the user goes on before 160 ms passed
    assert rig.host.goes_on == 1 and rig.host.turns == []
    await rig.frames(10, 0.0)
    await rig.settle()
    assert [t.text for t in rig.host.turns] == ["Open the readme and the config file."]
