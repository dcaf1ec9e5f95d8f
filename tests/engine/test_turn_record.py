"""A turn is recorded when its audio has ended, with the audio actually sent
(issue 9: "assistant audio seconds actually sent"), once — over the real
protocol, PCM output so the client can count the milliseconds it received."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.fakes import LONG_REPLY, ScriptedLLM, SignallingGrant
from voco.local.engine_client import EngineClient
from voco.protocol import messages as m
from voco.store.tenancy import MemoryTenantStore, SessionGrant, TurnRecord

pytestmark = pytest.mark.timeout(90)

PCM = m.AudioConfig(output=m.AudioOutput(encoding="pcm_s16le"))


def pcm_ms(n_bytes: int) -> int:
    return n_bytes // 2 * 1000 // 24000


class Client:
    def __init__(self, c: EngineClient) -> None:
        self.c = c
        self.audio_bytes = 0
        self.seen: list[m.ServerMessage] = []

    async def until(self, pred: Any) -> Any:
        async def loop() -> Any:
            while True:
                r = await self.c.recv()
                if r.audio is not None:
                    self.audio_bytes += len(r.audio)
                    if pred(None):
                        return None
                    continue
                self.seen.append(r.message)
                if pred(r.message):
                    return r.message

        return await asyncio.wait_for(loop(), 60)


class Tenants(MemoryTenantStore):
    """The memory store, with an event set when a turn is stored (a sync point)."""

    def __init__(self) -> None:
        super().__init__()
        self.recorded = asyncio.Event()

    def _admit(self, *args: Any) -> SessionGrant:
        return SignallingGrant(super()._admit(*args), recorded=self.recorded)


async def pcm_client(eng: Any) -> Client:
    start = m.SessionStart(token=eng.token(), audio=PCM)
    return Client(await EngineClient.connect(eng.url, start))


def records(tenants: MemoryTenantStore, thread: str) -> list[TurnRecord]:
    return list(tenants.threads[thread].turns)


async def test_a_played_out_reply_stores_the_audio_it_sent(engine_factory: Any) -> None:
    tenants = Tenants()
    async with engine_factory(ScriptedLLM(), tenants=tenants) as eng:
        c = await pcm_client(eng)
        await c.c.send(m.TextInput(text="say something for a while please"))
        done = await c.until(lambda x: isinstance(x, m.AgentDone))
        thread = c.c.ready.thread_id
        # agent.done is not the end: its audio still plays
        assert not done.interrupted
        end = await c.until(lambda x: isinstance(x, m.AudioEnd))
        await c.until(lambda x: x == m.State(value="listening"))  # played out: recorded
        (rec,) = records(tenants, thread)
        await c.c.close()
    assert c.audio_bytes > 0 and rec.assistant_audio_ms == pcm_ms(c.audio_bytes)
    assert rec.assistant_audio_ms == end.duration_ms
    assert not rec.interrupted and rec.reply == done.text and rec.heard_text is None


async def test_a_halted_reply_is_stored_once_with_what_was_heard(engine_factory: Any) -> None:
    tenants = Tenants()
    async with engine_factory(ScriptedLLM(lambda msgs: [LONG_REPLY]), tenants=tenants) as eng:
        c = await pcm_client(eng)
        thread = c.c.ready.thread_id
        await c.c.send(m.TextInput(text="tell me everything"))
        await c.until(lambda x: x is None and pcm_ms(c.audio_bytes) >= 1500)
        await c.c.send(m.Interrupt())
        halt = await c.until(lambda x: isinstance(x, m.HaltAudio))
        sent_ms = pcm_ms(c.audio_bytes)  # no audio of the response follows halt_audio
        done = await c.until(lambda x: isinstance(x, m.AgentDone) and x.interrupted)
        assert done.text  # the engine's estimate: some words had played
        assert records(tenants, thread) == []  # waiting for what the client heard
        await c.c.send(m.AudioPlayed(response_id=halt.response_id, played_ms=0))
        await asyncio.wait_for(tenants.recorded.wait(), 30)
        (rec,) = records(tenants, thread)
        await c.c.close()
    assert rec.interrupted and rec.heard_text == ""  # the client's report, not the estimate
    assert rec.reply == LONG_REPLY and rec.response_id == halt.response_id
    assert rec.assistant_audio_ms == sent_ms == pcm_ms(c.audio_bytes)


async def test_closing_mid_reply_still_records_the_turn_once(engine_factory: Any) -> None:
    tenants = Tenants()
    async with engine_factory(ScriptedLLM(lambda msgs: [LONG_REPLY]), tenants=tenants) as eng:
        c = await pcm_client(eng)
        thread = c.c.ready.thread_id
        await c.c.send(m.TextInput(text="tell me everything"))
        await c.until(lambda x: x is None and c.audio_bytes > 0)
        assert records(tenants, thread) == []
        await c.c.send(m.SessionEnd())
        await asyncio.wait_for(tenants.recorded.wait(), 30)  # at the session's close
        (rec,) = records(tenants, thread)
        await c.c.close()
    assert rec.interrupted and rec.heard_text is not None and rec.reply == LONG_REPLY
    assert rec.assistant_audio_ms > 0
