"""Provider outages in a live session: a non-fatal error, a spoken apology where
possible, a fallback where configured — and the session goes on."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
import soundfile as sf

from tests.fakes import FailingLLM, ScriptedLLM
from tests.speech import piper_speech, silence
from voco.local.engine_client import EngineClient
from voco.local.streamer import RealtimeStreamer
from voco.protocol import messages as m
from voco.providers.base import (
    STT,
    TTS,
    ProviderError,
    SpeechStream,
    STTCapabilities,
    TTSCapabilities,
)
from voco.providers.cartesia_tts import CartesiaTTS
from voco.providers.fallback import FallbackSTT

pytestmark = pytest.mark.timeout(90)


class DeadSTT(STT):
    name = "dead-stt"
    capabilities = STTCapabilities(streaming=True, interim_results=False)

    async def open_stream(self, on_partial=None) -> SpeechStream:
        class S(SpeechStream):
            async def push(self, pcm: bytes) -> None:
                pass

            async def finish(self) -> str:
                raise ProviderError("dead-stt", "connection reset mid-utterance")

            async def aclose(self) -> None:
                pass

        return S()


class DeadTTS(TTS):
    name = "dead-tts"
    capabilities = TTSCapabilities(streaming=True)
    sample_rate = 24000

    async def synthesize(self, text: str):
        raise ProviderError("dead-tts", "HTTP 503")
        yield b""  # pragma: no cover


async def collect_turn(c: EngineClient, until=lambda x: isinstance(x, m.Metrics), timeout=30):
    msgs, audio = [], bytearray()

    async def loop():
        while True:
            r = await c.recv()
            if r.audio is not None:
                audio.extend(r.audio)
            elif r.message is not None:
                msgs.append(r.message)
                if until(r.message):
                    return

    await asyncio.wait_for(loop(), timeout)
    return msgs, bytes(audio)


async def still_alive(c: EngineClient) -> None:
    await c.send(m.Ping(id="alive"))
    msgs, _ = await collect_turn(c, until=lambda x: isinstance(x, m.Pong))
    assert msgs[-1].id == "alive"


async def test_llm_outage_is_reported_and_apologised(engine_factory):
    async with engine_factory(FailingLLM()) as eng:
        c = await EngineClient.connect(eng.url, m.SessionStart(token=eng.token()))
        await c.send(m.TextInput(text="hello"))
        msgs, audio = await collect_turn(c)
        err = next(x for x in msgs if isinstance(x, m.Error))
        assert err.code == "provider_failed" and not err.fatal and "refused" in err.message
        done = next(x for x in msgs if isinstance(x, m.AgentDone))
        assert "sorry" in done.text.lower()
        assert len(audio) > 1000  # the apology is spoken
        await still_alive(c)
        await c.close()


async def test_tts_outage_keeps_the_text_and_the_session(engine_factory):
    async with engine_factory(ScriptedLLM(), tts=DeadTTS()) as eng:
        c = await EngineClient.connect(eng.url, m.SessionStart(token=eng.token()))
        await c.send(m.TextInput(text="hello"))
        msgs, audio = await collect_turn(c)
        assert any(isinstance(x, m.Error) and x.code == "tts_failed" for x in msgs)
        done = next(x for x in msgs if isinstance(x, m.AgentDone))
        assert done.text == "You said: hello" and not done.interrupted
        assert audio == b""
        await still_alive(c)
        await c.close()


async def speak(eng, text: str):
    c = await EngineClient.connect(eng.url, m.SessionStart(token=eng.token()))
    up = RealtimeStreamer(c.send_audio)
    up.start()
    up.say(np.concatenate([silence(200), piper_speech(text)]))
    return c, up


async def test_stt_outage_apologises(engine_factory):
    async with engine_factory(ScriptedLLM(), stt=DeadSTT()) as eng:
        c, up = await speak(eng, "Open the readme.")
        msgs, audio = await collect_turn(c, until=lambda x: isinstance(x, m.AudioEnd))
        err = next(x for x in msgs if isinstance(x, m.Error))
        assert err.code == "stt_failed" and not err.fatal
        assert len(audio) > 1000  # "Sorry, I couldn't make out what you said."
        await still_alive(c)
        await up.stop()
        await c.close()


async def test_stt_fallback_takes_over(engine_factory, whisper):
    async with engine_factory(ScriptedLLM(), stt=FallbackSTT(DeadSTT(), whisper)) as eng:
        c, up = await speak(eng, "Open the readme.")
        msgs, _ = await collect_turn(c, until=lambda x: isinstance(x, m.AgentDone))
        final = next(x for x in msgs if isinstance(x, m.TranscriptFinal))
        assert "read" in final.text.lower()
        assert not any(isinstance(x, m.Error) for x in msgs)
        await up.stop()
        await c.close()


async def test_cartesia_voice_through_the_engine(engine_factory):
    """The real Cartesia client against the vendor double, inside a session."""
    from tests.providers.doubles.cartesia import CartesiaDouble

    async with CartesiaDouble().running() as double:
        tts = CartesiaTTS(api_key=double.api_key, base_url=double.url)
        async with engine_factory(ScriptedLLM(), tts=tts) as eng:
            c = await EngineClient.connect(eng.url, m.SessionStart(token=eng.token()))
            await c.send(m.TextInput(text="hello there"))
            msgs, audio = await collect_turn(c)
            end = next(x for x in msgs if isinstance(x, m.AudioEnd))
            decoded, rate = sf.read(io.BytesIO(audio))
            assert rate == 24000 and abs(len(decoded) / rate * 1000 - end.duration_ms) < 100
            await c.close()
        await tts.aclose()
