"""CartesiaTTS against the local TTS WebSocket double."""

from __future__ import annotations

import asyncio
import struct

import pytest

from voco.providers.base import ProviderError
from voco.providers.cartesia_tts import CartesiaTTS

from .doubles.cartesia import CartesiaDouble, tone
from .doubles.net import black_hole, refused_port


def make_tts(url: str, **kw: object) -> CartesiaTTS:
    opts: dict[str, object] = {"api_key": "sk_car_test", "base_url": url, "voice_id": "voice-1"}
    opts.update(kw)
    return CartesiaTTS(**opts)


async def synth(tts: CartesiaTTS, text: str) -> bytes:
    return b"".join([c async for c in tts.synthesize(text)])


async def test_streams_pcm_for_a_clause(cartesia_double: CartesiaDouble) -> None:
    tts = make_tts(cartesia_double.url)
    chunks = [c async for c in tts.synthesize("Hello there.")]
    assert len(chunks) > 1  # streamed, not one blob
    pcm = b"".join(chunks)
    assert pcm == tone(24_000, 40 * len("Hello there."))
    assert tts.sample_rate == 24_000 and tts.capabilities.streaming
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    assert max(samples) > 7000  # real audio, not silence

    request = cartesia_double.requests[0]
    assert request["model_id"] == "sonic-2"
    assert request["transcript"] == "Hello there."
    assert request["voice"] == {"mode": "id", "id": "voice-1"}
    assert request["output_format"] == {
        "container": "raw",
        "encoding": "pcm_s16le",
        "sample_rate": 24_000,
    }
    assert request["continue"] is False and request["context_id"]
    headers = cartesia_double.handshake_headers[0]
    assert headers["Authorization"] == "Bearer sk_car_test"
    assert headers["Cartesia-Version"]
    assert "Sec-WebSocket-Extensions" not in headers  # PCM: no deflate
    await tts.aclose()


async def test_one_socket_for_many_clauses(cartesia_double: CartesiaDouble) -> None:
    tts = make_tts(cartesia_double.url)
    await tts.warmup()
    first = await synth(tts, "First clause.")
    second = await synth(tts, "Second one.")
    assert first and second
    assert cartesia_double.connections == 1
    contexts = {r["context_id"] for r in cartesia_double.requests}
    assert len(contexts) == 2
    await tts.aclose()


async def test_concurrent_clauses_are_demultiplexed(cartesia_double: CartesiaDouble) -> None:
    tts = make_tts(cartesia_double.url)
    a, b = await asyncio.gather(synth(tts, "short"), synth(tts, "a much longer clause here"))
    assert len(a) == len(tone(24_000, 200))
    assert len(b) == len(tone(24_000, 40 * 25))
    assert cartesia_double.connections == 1
    await tts.aclose()


async def test_empty_text_makes_no_request(cartesia_double: CartesiaDouble) -> None:
    tts = make_tts(cartesia_double.url)
    assert await synth(tts, "   ") == b""
    assert cartesia_double.requests == []
    await tts.aclose()


async def test_cancel_on_barge_in(cartesia_double: CartesiaDouble) -> None:
    cartesia_double.chunk_delay = 0.02
    tts = make_tts(cartesia_double.url)
    got: list[bytes] = []
    first = asyncio.Event()

    async def speak() -> None:
        async for chunk in tts.synthesize("This is a rather long sentence to speak aloud."):
            got.append(chunk)
            first.set()

    task = asyncio.create_task(speak())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await cartesia_double.until(lambda: bool(cartesia_double.cancels))
    context_id = cartesia_double.requests[0]["context_id"]
    assert cartesia_double.cancels == [context_id]
    chunk_bytes = 24_000 * cartesia_double.chunk_ms // 1000 * 2
    total = -(-len(tone(24_000, 40 * 46)) // chunk_bytes)  # chunks of the whole clause
    assert cartesia_double.chunks_sent[context_id] < total  # generation really stopped
    # The same socket keeps working for the next clause.
    assert await synth(tts, "Next.")
    assert cartesia_double.connections == 1
    await tts.aclose()


async def test_aclose_of_the_generator_cancels_the_context(
    cartesia_double: CartesiaDouble,
) -> None:
    cartesia_double.chunk_delay = 0.02
    tts = make_tts(cartesia_double.url)
    gen = tts.synthesize("Long enough to be interrupted, surely.")
    assert await anext(gen)
    await gen.aclose()
    await cartesia_double.until(lambda: bool(cartesia_double.cancels))
    assert cartesia_double.cancels == [cartesia_double.requests[0]["context_id"]]
    await tts.aclose()


async def test_finished_clause_is_not_cancelled(cartesia_double: CartesiaDouble) -> None:
    tts = make_tts(cartesia_double.url)
    await synth(tts, "Done.")
    # a cancel for it would go out before the next request on the same socket:
    # once the double has answered that one, it would have seen the cancel
    await synth(tts, "Next.")
    assert cartesia_double.connections == 1
    assert cartesia_double.cancels == []
    await tts.aclose()


async def test_env_configuration(
    cartesia_double: CartesiaDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARTESIA_API_KEY", "sk_car_test")
    monkeypatch.setenv("CARTESIA_BASE_URL", cartesia_double.url.replace("ws://", "http://"))
    monkeypatch.setenv("VOCO_CARTESIA_VOICE", "env-voice")
    tts = CartesiaTTS()
    assert await synth(tts, "Hi.")
    assert cartesia_double.requests[0]["voice"]["id"] == "env-voice"
    await tts.aclose()


def test_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARTESIA_API_KEY", raising=False)
    with pytest.raises(ProviderError) as info:
        CartesiaTTS()
    assert not info.value.retryable


async def test_bad_key_is_not_retryable(cartesia_double: CartesiaDouble) -> None:
    tts = make_tts(cartesia_double.url, api_key="nope")
    with pytest.raises(ProviderError) as info:
        await synth(tts, "Hello.")
    assert not info.value.retryable and "401" in info.value.message


async def test_handshake_5xx_is_retryable(cartesia_double: CartesiaDouble) -> None:
    cartesia_double.handshake_status = 502
    tts = make_tts(cartesia_double.url)
    with pytest.raises(ProviderError) as info:
        await synth(tts, "Hello.")
    assert info.value.retryable and "502" in info.value.message


async def test_connect_refused() -> None:
    tts = make_tts(f"ws://127.0.0.1:{refused_port()}")
    with pytest.raises(ProviderError) as info:
        await synth(tts, "Hello.")
    assert info.value.provider == "cartesia" and info.value.retryable


async def test_connect_timeout() -> None:
    async with black_hole() as port:
        tts = make_tts(f"ws://127.0.0.1:{port}", connect_timeout=0.3)
        with pytest.raises(ProviderError) as info:
            await synth(tts, "Hello.")
        assert info.value.retryable and "timed out" in info.value.message


async def test_no_audio_times_out_and_cancels(cartesia_double: CartesiaDouble) -> None:
    cartesia_double.stall = True
    tts = make_tts(cartesia_double.url, chunk_timeout=0.3)
    with pytest.raises(ProviderError) as info:
        await synth(tts, "Hello.")
    assert info.value.retryable
    await cartesia_double.until(lambda: bool(cartesia_double.cancels))
    assert cartesia_double.cancels == [cartesia_double.requests[0]["context_id"]]
    await tts.aclose()


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (400, False)])
async def test_error_message(cartesia_double: CartesiaDouble, status: int, retryable: bool) -> None:
    cartesia_double.fail_next = (status, "Generation failed", "voice not found")
    tts = make_tts(cartesia_double.url)
    with pytest.raises(ProviderError) as info:
        await synth(tts, "Hello.")
    assert info.value.retryable is retryable
    assert "voice not found" in info.value.message
    assert await synth(tts, "Again.")  # the socket survives a per-context error
    assert cartesia_double.connections == 1
    await tts.aclose()


async def test_drop_mid_stream_then_reconnect(cartesia_double: CartesiaDouble) -> None:
    cartesia_double.drop_after_chunks = 2
    tts = make_tts(cartesia_double.url)
    got: list[bytes] = []
    with pytest.raises(ProviderError) as info:
        async for chunk in tts.synthesize("A sentence that will be cut off by a drop."):
            got.append(chunk)
    assert len(got) == 2
    assert info.value.retryable and "dropped" in info.value.message
    cartesia_double.drop_after_chunks = None
    assert await synth(tts, "Back again.")
    assert cartesia_double.connections == 2
    await tts.aclose()


async def test_server_closing_an_idle_socket_is_transparent(
    cartesia_double: CartesiaDouble,
) -> None:
    tts = make_tts(cartesia_double.url)
    assert await synth(tts, "One.")
    await cartesia_double.drop_all()  # returns once the client answered the close
    assert await synth(tts, "Two.")
    assert cartesia_double.connections == 2
    await tts.aclose()
