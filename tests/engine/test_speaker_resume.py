"""The speaker's tape without sockets: paused, it sends nothing; restarted at a
point, it re-sends exactly the reply's audio from there, then the rest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from voco.engine.playout import ResponseAudio
from voco.engine.speaker import Speaker
from voco.providers.base import TTS, TTSCapabilities

RATE = 24000  # the wire rate: no resampling, so bytes compare exactly


class RampTTS(TTS):
    """Each clause: 1 s of a sample counter (so any position is recognisable)."""

    name = "ramp"
    capabilities = TTSCapabilities(streaming=True)
    sample_rate = RATE

    def __init__(self) -> None:
        self.n = 0

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        x = (np.arange(self.n, self.n + RATE) % 30000).astype("<i2")
        self.n += RATE
        yield x.tobytes()


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


async def test_pause_then_restart_replays_from_the_point_and_continues() -> None:
    clock = Clock()
    audio = ResponseAudio("r1")
    sent: list[bytes] = []
    gate_open = True

    async def on_start() -> None:
        audio.started_at = clock()

    async def send(data: bytes) -> bool:
        if gate_open:
            sent.append(data)
        if sum(map(len, sent)) >= RATE * 2:  # the first clause's 1 s went out
            first_out.set()
        return gate_open

    ended = asyncio.Event()
    first_out = asyncio.Event()
    second_taped = asyncio.Event()  # the second clause reached the tape (then the gate)

    def on_pcm(pcm: bytes, rate: int, timeline_ms: int) -> None:
        if timeline_ms >= 1000:
            second_taped.set()

    async def on_end(ms: int) -> None:
        ended.set()

    sp = Speaker(
        RampTTS(), audio, "pcm_s16le", on_start=on_start, send_audio=send, on_end=on_end,
        lead_ms=10_000, clock=clock, on_pcm=on_pcm,
    )  # fmt: skip
    sp.say("one.")
    task = asyncio.create_task(sp.run())
    await asyncio.wait_for(first_out.wait(), 5)  # lead 10 s: the first clause at once
    sp.pause()
    gate_open = False
    before = len(sent)
    sp.say("two.")
    sp.finish()
    await asyncio.wait_for(second_taped.wait(), 5)
    assert audio.sent_ms == 1000 and not ended.is_set()  # paused: nothing more encoded
    gate_open = True
    replay = sp.restart(400)
    got = np.frombuffer(replay, dtype="<i2")
    assert len(got) == RATE * 600 // 1000  # 400..1000 ms of the first clause
    assert got[0] == RATE * 400 // 1000
    sp.replayed()  # the session sent it: the timeline stands where the replay ends
    assert audio.sent_ms == 1000
    await asyncio.wait_for(ended.wait(), 5)
    await task
    rest = np.frombuffer(b"".join(sent[before:]), dtype="<i2")
    assert len(rest) == RATE and rest[0] == RATE  # then the second clause, from its start
    assert audio.sent_ms == 2000
