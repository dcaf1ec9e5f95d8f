"""A model that never answers, in a live session: the user hears a cue, then an
apology or the fallback's answer; every response ends with an ``agent.done``.

Deadlines are injected and short; no assertion measures time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.engine.test_provider_failures import collect_turn, still_alive
from tests.fakes import ScriptedLLM
from voco.engine.lifecycle import STILL_WORKING, TurnDeadlines
from voco.local.engine_client import EngineClient
from voco.protocol import messages as m
from voco.providers.base import ChatMessage, LLMEvent, ToolSpec
from voco.providers.deadline import with_deadlines
from voco.providers.fallback import FallbackLLM

pytestmark = pytest.mark.timeout(90)


class HangingLLM(ScriptedLLM):
    """Accepts the call and never produces anything (until cancelled)."""

    name = "hanging"

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()

    def model_id(self, tier: str) -> str:
        return f"hanging-{tier}"

    async def stream(
        self, *, system: str, messages: list[ChatMessage], tools: list[ToolSpec], tier: str
    ) -> AsyncIterator[LLMEvent]:
        self.calls.append(list(messages))
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        yield  # pragma: no cover


async def session(eng) -> EngineClient:
    return await EngineClient.connect(eng.url, m.SessionStart(token=eng.token()))


async def test_silent_model_gets_a_cue_then_a_spoken_error(engine_factory) -> None:
    llm = with_deadlines(HangingLLM(), first_token_s=0.6, total_s=30)
    async with engine_factory(llm) as eng:
        eng.runtime.deadlines = TurnDeadlines(still_working_s=0.1)
        c = await session(eng)
        await c.send(m.TextInput(text="hello"))
        msgs, audio = await collect_turn(c)
        deltas = [x.text for x in msgs if isinstance(x, m.AgentDelta)]
        assert deltas[0] == STILL_WORKING  # said once, first
        assert deltas.count(STILL_WORKING) == 1
        err = next(x for x in msgs if isinstance(x, m.Error))
        assert err.code == "provider_failed" and not err.fatal
        assert "no reply within" in err.message
        done = next(x for x in msgs if isinstance(x, m.AgentDone))
        assert not done.interrupted and "sorry" in done.text.lower()
        assert len(audio) > 1000  # the cue and the apology are spoken
        metrics = next(x for x in msgs if isinstance(x, m.Metrics))
        assert "llm_ttft_ms" in metrics.model_dump()  # the apology is the first real text
        await still_alive(c)
        await c.close()


async def test_silent_primary_falls_back_and_the_user_is_told(engine_factory) -> None:
    hanging = HangingLLM()
    llm = with_deadlines(
        FallbackLLM(hanging, ScriptedLLM(lambda msgs: ["From the fallback."])),
        first_token_s=0.5,
        total_s=30,
    )
    async with engine_factory(llm) as eng:
        c = await session(eng)
        await c.send(m.TextInput(text="hello"))
        msgs, _ = await collect_turn(c)
        err = next(x for x in msgs if isinstance(x, m.Error))
        assert err.code == "provider_fallback" and not err.fatal
        assert "hanging" in err.message and "no reply within" in err.message
        done = next(x for x in msgs if isinstance(x, m.AgentDone))
        assert done.text == "From the fallback."
        assert done.model.startswith("scripted-")  # the model that answered
        assert hanging.cancelled == 1  # the silent call was abandoned
        await still_alive(c)
        await c.close()


async def test_a_cancelled_response_still_gets_its_agent_done(engine_factory) -> None:
    hanging = HangingLLM()
    async with engine_factory(hanging) as eng:
        eng.runtime.deadlines = TurnDeadlines(still_working_s=600)
        c = await session(eng)
        await c.send(m.TextInput(text="hello"))
        await asyncio.wait_for(hanging.started.wait(), 20)
        await c.send(m.Interrupt())
        msgs, _ = await collect_turn(c, until=lambda x: isinstance(x, m.AgentDone))
        done = msgs[-1]
        final = next(x for x in msgs if isinstance(x, m.TranscriptFinal))
        assert isinstance(done, m.AgentDone)
        assert done.interrupted and done.text == "" and done.turn_id == final.turn_id
        assert not any(isinstance(x, m.HaltAudio) for x in msgs)  # nothing was playing
        assert hanging.cancelled == 1
        await still_alive(c)
        await c.close()


async def test_a_new_text_turn_ends_the_silent_one_with_agent_done(engine_factory) -> None:
    hanging = HangingLLM()
    async with engine_factory(hanging) as eng:
        eng.runtime.deadlines = TurnDeadlines(still_working_s=600)
        c = await session(eng)
        await c.send(m.TextInput(text="first"))
        await asyncio.wait_for(hanging.started.wait(), 20)
        hanging.started.clear()
        await c.send(m.TextInput(text="second"))
        msgs, _ = await collect_turn(c, until=lambda x: isinstance(x, m.AgentDone))
        finals = [x for x in msgs if isinstance(x, m.TranscriptFinal)]
        assert msgs[-1].turn_id == finals[0].turn_id and msgs[-1].interrupted
        await asyncio.wait_for(hanging.started.wait(), 20)  # the second turn runs
        await c.close()
