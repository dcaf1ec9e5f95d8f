"""DeepgramSTT against the local live-transcription double (real WebSocket)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from voco.providers.base import ProviderError, SpeechStream
from voco.providers.deepgram_stt import DeepgramSTT

from .doubles.deepgram import DeepgramDouble
from .doubles.net import black_hole, refused_port

CHUNK = 1024  # 32 ms at 16 kHz, the engine's frame size (not a multiple of 20 ms)


def make_stt(url: str, **kw: object) -> DeepgramSTT:
    opts: dict[str, object] = {"api_key": "dg-test", "base_url": url}
    opts.update(kw)
    return DeepgramSTT(**opts)


async def push_all(stream: SpeechStream, pcm: bytes, realtime: bool = False) -> None:
    for i in range(0, len(pcm), CHUNK):
        await stream.push(pcm[i : i + CHUNK])
        if realtime:
            await asyncio.sleep(0.001)


async def transcribe(stt: DeepgramSTT, double: DeepgramDouble, words: str) -> str:
    """One whole utterance of ``words`` (the double's scripted audio)."""
    stream = await stt.open_stream()
    await push_all(stream, double.audio(words, trailing_silence_ms=40))
    return await stream.finish()


async def until(cond: Callable[[], bool]) -> None:
    """Until ``cond()`` holds: what the double saw, not a guess at how long it takes
    (the test's timeout bounds a hang)."""
    while not cond():  # noqa: ASYNC110 (the double's state has no event)
        await asyncio.sleep(0.01)


async def test_transcribes_with_interim_results(deepgram_double: DeepgramDouble) -> None:
    stt = make_stt(deepgram_double.url)
    partials: list[str] = []

    async def on_partial(text: str) -> None:
        partials.append(text)

    stream = await stt.open_stream(on_partial)
    await push_all(stream, deepgram_double.audio("list the files", trailing_silence_ms=100), True)
    assert await stream.finish() == "list the files"
    await stt.aclose()

    assert partials and partials[0] in ("list", "list the")
    assert all(p for p in partials)
    session = deepgram_double.sessions[0]
    assert session.headers["Authorization"] == "Token dg-test"
    assert "Sec-WebSocket-Extensions" not in session.headers  # PCM: no deflate
    assert session.query["model"] == "nova-3"
    assert session.query["encoding"] == "linear16"
    assert session.query["sample_rate"] == "16000"
    assert session.query["channels"] == "1"
    assert session.query["interim_results"] == "true"
    assert session.query["endpointing"] == "300"
    assert session.control == ["Finalize", "CloseStream"]
    assert any(r["from_finalize"] for r in session.results)
    assert session.closed_with == (1000, "")


async def test_final_segments_are_concatenated(deepgram_double: DeepgramDouble) -> None:
    stt = make_stt(deepgram_double.url, endpointing_ms=200)
    stream = await stt.open_stream()
    pcm = deepgram_double.audio("list the files", trailing_silence_ms=400)
    pcm += deepgram_double.audio("run tests", trailing_silence_ms=60)
    await push_all(stream, pcm)
    assert await stream.finish() == "list the files run tests"
    finals = [r for r in deepgram_double.sessions[0].results if r["is_final"]]
    assert finals[0]["speech_final"] is True
    assert finals[-1]["from_finalize"] is True
    await stt.aclose()


async def test_no_wait_when_everything_is_already_final(deepgram_double: DeepgramDouble) -> None:
    """Deepgram may not answer Finalize when nothing is buffered; don't wait for it.

    The double never answers Finalize and the wait bound is an hour: a client that
    waited would hang until the test's timeout instead of returning."""
    deepgram_double.finalize_responds = False
    stt = make_stt(deepgram_double.url, endpointing_ms=300, finalize_timeout=3600.0)
    endpointed = asyncio.Event()

    async def on_partial(text: str) -> None:  # called after each result is taken in
        if any(r.get("is_final") for r in deepgram_double.sessions[-1].results):
            endpointed.set()

    stream = await stt.open_stream(on_partial)
    # 20 ms gap after the last word + 280 ms = exactly the 300 ms endpoint.
    await push_all(stream, deepgram_double.audio("read readme", trailing_silence_ms=280))
    await endpointed.wait()  # the endpointed final has arrived
    assert await stream.finish() == "read readme"
    assert "Finalize" not in deepgram_double.sessions[-1].control
    await stt.aclose()


async def test_missing_finalize_reply_falls_back_to_hypothesis(
    deepgram_double: DeepgramDouble,
) -> None:
    deepgram_double.finalize_responds = False
    stt = make_stt(deepgram_double.url, finalize_timeout=0.3)
    partials: list[str] = []

    async def on_partial(text: str) -> None:
        partials.append(text)

    stream = await stt.open_stream(on_partial)
    await push_all(stream, deepgram_double.audio("open main", trailing_silence_ms=40), True)
    await until(lambda: "open main" in partials)  # the hypothesis it falls back on
    assert await stream.finish() == "open main"
    await stt.aclose()


async def test_keepalive_holds_an_idle_stream_open(deepgram_double: DeepgramDouble) -> None:
    deepgram_double.idle_timeout = 0.4
    stt = make_stt(deepgram_double.url, keepalive_interval=0.1)
    stream = await stt.open_stream()
    # idle, no audio at all, for longer than the idle timeout: 6 keepalives 0.1 s apart
    await until(lambda: deepgram_double.sessions[0].control.count("KeepAlive") >= 6)
    await push_all(stream, deepgram_double.audio("run tests", trailing_silence_ms=40))
    assert await stream.finish() == "run tests"
    await stt.aclose()
    control = deepgram_double.sessions[0].control
    assert control.count("KeepAlive") >= 3
    assert deepgram_double.sessions[0].closed_with == (1000, "")


async def test_idle_stream_without_keepalive_is_closed(deepgram_double: DeepgramDouble) -> None:
    deepgram_double.idle_timeout = 0.2
    stt = make_stt(deepgram_double.url, keepalive_interval=None)
    stream = await stt.open_stream()
    await until(lambda: deepgram_double.sessions[0].closed_with is not None)  # idle timeout
    with pytest.raises(ProviderError) as info:
        await push_all(stream, deepgram_double.audio("run tests"))
        await stream.finish()
    assert info.value.retryable
    assert "1011" in info.value.message and "NET-0001" in info.value.message
    await stream.aclose()
    await stt.aclose()


async def test_barge_in_abandons_the_utterance(deepgram_double: DeepgramDouble) -> None:
    """An abandoned utterance's audio is flushed before its connection is
    pooled: its words never reach the utterance that takes the connection next."""
    stt = make_stt(deepgram_double.url)
    heard: list[str] = []

    async def on_partial(text: str) -> None:
        heard.append(text)

    stream = await stt.open_stream(on_partial)
    await push_all(stream, deepgram_double.audio("list the"))
    await stream.aclose()
    await stream.aclose()  # idempotent
    with pytest.raises(ProviderError) as info:
        await stream.push(b"\0\0" * 512)
    assert not info.value.retryable
    await until(lambda: stt.idle_connections == 1)  # flushed, then pooled
    session = deepgram_double.sessions[0]
    assert session.control == ["Finalize"]
    assert any(
        r["from_finalize"] and r["channel"]["alternatives"][0]["transcript"] == "list the"
        for r in session.results
    )

    nxt = await stt.open_stream(on_partial)
    heard.clear()
    await push_all(nxt, deepgram_double.audio("run tests", trailing_silence_ms=40))
    assert await nxt.finish() == "run tests"
    assert heard and all("list" not in h for h in heard)
    assert len(deepgram_double.sessions) == 1
    await stt.aclose()
    assert session.control == ["Finalize", "Finalize", "CloseStream"]
    assert session.closed_with == (1000, "")


async def test_utterances_share_a_pooled_connection(deepgram_double: DeepgramDouble) -> None:
    stt = make_stt(deepgram_double.url)
    for words in ("list the files", "run tests", "open main"):
        assert await transcribe(stt, deepgram_double, words) == words
        assert stt.idle_connections == 1
    assert len(deepgram_double.sessions) == 1
    assert deepgram_double.sessions[0].control == ["Finalize"] * 3
    await stt.aclose()
    assert deepgram_double.sessions[0].closed_with == (1000, "")


async def test_a_result_for_audio_before_the_utterance_is_dropped(
    deepgram_double: DeepgramDouble,
) -> None:
    """Results are placed by the audio they cover: a late one for the
    previous utterance's audio is never the next utterance's words."""
    deepgram_double.late_results = True
    stt = make_stt(deepgram_double.url)
    heard: list[str] = []

    async def on_partial(text: str) -> None:
        heard.append(text)

    first = await stt.open_stream()
    await push_all(first, deepgram_double.audio("list the files", trailing_silence_ms=40))
    assert await first.finish() == "list the files"
    second = await stt.open_stream(on_partial)
    await push_all(second, deepgram_double.audio("run tests", trailing_silence_ms=40), True)
    assert await second.finish() == "run tests"
    results = deepgram_double.sessions[0].results
    flushed = next(i for i, r in enumerate(results) if r["from_finalize"])
    late = [r["channel"]["alternatives"][0]["transcript"] for r in results[flushed + 1 :]]
    assert "list the files" in late  # it was sent, after the first utterance's flush
    assert heard and all("list" not in h for h in heard)
    await stt.aclose()


async def test_concurrent_utterances_get_their_own_connections(
    deepgram_double: DeepgramDouble,
) -> None:
    """One utterance at a time per connection; the pool keeps at most
    ``pool_size`` idle ones and closes the rest."""
    stt = make_stt(deepgram_double.url, pool_size=1)
    a, b = await stt.open_stream(), await stt.open_stream()
    await push_all(a, deepgram_double.audio("list the files", trailing_silence_ms=40))
    await push_all(b, deepgram_double.audio("run tests", trailing_silence_ms=40))
    assert await asyncio.gather(a.finish(), b.finish()) == ["list the files", "run tests"]
    assert len(deepgram_double.sessions) == 2
    assert stt.idle_connections == 1
    await until(lambda: sum(s.closed_with is not None for s in deepgram_double.sessions) == 1)
    await stt.aclose()


async def test_an_unused_pooled_connection_is_closed(deepgram_double: DeepgramDouble) -> None:
    stt = make_stt(deepgram_double.url, keepalive_interval=0.05, pool_idle_s=0.2)
    assert await transcribe(stt, deepgram_double, "please") == "please"
    assert stt.idle_connections == 1
    await until(lambda: deepgram_double.sessions[0].closed_with == (1000, ""))
    assert stt.idle_connections == 0
    await stt.aclose()


async def test_a_pooled_connection_the_service_closed_is_replaced(
    deepgram_double: DeepgramDouble,
) -> None:
    deepgram_double.idle_timeout = 0.2
    stt = make_stt(deepgram_double.url, keepalive_interval=None)
    assert await transcribe(stt, deepgram_double, "please") == "please"
    await until(lambda: stt.idle_connections == 0)  # the reader saw NET-0001's close
    assert deepgram_double.sessions[0].closed_with is not None
    assert await transcribe(stt, deepgram_double, "run tests") == "run tests"
    assert len(deepgram_double.sessions) == 2
    await stt.aclose()


async def test_a_flush_without_reply_retires_the_connection(
    deepgram_double: DeepgramDouble,
) -> None:
    """A connection whose Finalize went unanswered may still deliver that
    audio's results: it is never handed to another utterance."""
    deepgram_double.finalize_responds = False
    stt = make_stt(deepgram_double.url, finalize_timeout=0.2)
    stream = await stt.open_stream()
    await push_all(stream, deepgram_double.audio("open main", trailing_silence_ms=40), True)
    await until(lambda: any(not r["is_final"] for r in deepgram_double.sessions[0].results))
    assert await stream.finish() == "open main"  # the last hypothesis
    assert stt.idle_connections == 0
    await until(lambda: deepgram_double.sessions[0].closed_with == (1000, ""))
    await stt.aclose()


async def test_no_pool_closes_each_connection(deepgram_double: DeepgramDouble) -> None:
    stt = make_stt(deepgram_double.url, pool_size=0)
    for words in ("please", "run tests"):
        assert await transcribe(stt, deepgram_double, words) == words
    await until(lambda: all(s.closed_with == (1000, "") for s in deepgram_double.sessions))
    assert len(deepgram_double.sessions) == 2
    await stt.aclose()


async def test_cancelled_finish_releases_the_socket(deepgram_double: DeepgramDouble) -> None:
    deepgram_double.finalize_responds = False
    stt = make_stt(deepgram_double.url, finalize_timeout=30)
    stream = await stt.open_stream()
    await push_all(stream, deepgram_double.audio("list", trailing_silence_ms=40))
    task = asyncio.create_task(stream.finish())
    await until(lambda: "Finalize" in deepgram_double.sessions[0].control)  # finish waits
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await stt.aclose()
    assert deepgram_double.sessions[0].closed_with == (1000, "")


async def test_env_configuration(
    deepgram_double: DeepgramDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-test")
    monkeypatch.setenv("DEEPGRAM_BASE_URL", deepgram_double.url.replace("ws://", "http://"))
    stt = DeepgramSTT()
    assert await transcribe(stt, deepgram_double, "please") == "please"
    await stt.aclose()


def test_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    with pytest.raises(ProviderError) as info:
        DeepgramSTT()
    assert not info.value.retryable


async def test_bad_key_is_not_retryable(deepgram_double: DeepgramDouble) -> None:
    stt = make_stt(deepgram_double.url, api_key="wrong")
    with pytest.raises(ProviderError) as info:
        await stt.open_stream()
    assert not info.value.retryable and "401" in info.value.message


async def test_handshake_5xx_is_retryable(deepgram_double: DeepgramDouble) -> None:
    deepgram_double.handshake_status = 503
    stt = make_stt(deepgram_double.url)
    with pytest.raises(ProviderError) as info:
        await stt.open_stream()
    assert info.value.retryable and "503" in info.value.message


async def test_connect_refused() -> None:
    stt = make_stt(f"ws://127.0.0.1:{refused_port()}")
    with pytest.raises(ProviderError) as info:
        await stt.open_stream()
    assert info.value.retryable and "connect failed" in info.value.message


async def test_connect_timeout() -> None:
    async with black_hole() as port:
        stt = make_stt(f"ws://127.0.0.1:{port}", connect_timeout=0.3)
        with pytest.raises(ProviderError) as info:
            await stt.open_stream()
        assert info.value.retryable and "timed out" in info.value.message


async def test_silent_service_times_out(deepgram_double: DeepgramDouble) -> None:
    deepgram_double.silent = True
    stt = make_stt(deepgram_double.url, finalize_timeout=0.3)
    stream = await stt.open_stream()
    await push_all(stream, deepgram_double.audio("list the files"))
    with pytest.raises(ProviderError) as info:
        await stream.finish()
    assert info.value.retryable and "timed out" in info.value.message
    await stt.aclose()


async def test_connection_dropped_mid_stream(deepgram_double: DeepgramDouble) -> None:
    deepgram_double.drop_after_bytes = 8000
    stt = make_stt(deepgram_double.url)
    stream = await stt.open_stream()
    with pytest.raises(ProviderError) as info:
        await push_all(stream, deepgram_double.audio("list the files"), True)
        await stream.finish()  # the failure surfaces in push or here, whichever comes first
    assert info.value.retryable and "dropped" in info.value.message
    await stream.aclose()
    await stt.aclose()


async def test_error_message_from_service(deepgram_double: DeepgramDouble) -> None:
    deepgram_double.error_after_bytes = 4096
    stt = make_stt(deepgram_double.url)
    stream = await stt.open_stream()
    with pytest.raises(ProviderError) as info:
        await push_all(stream, deepgram_double.audio("list the files"), True)
        await stream.finish()  # the failure surfaces in push or here, whichever comes first
    assert info.value.retryable and "model crashed" in info.value.message
    await stream.aclose()
    await stt.aclose()


async def test_a_malformed_result_fails_the_utterance(deepgram_double: DeepgramDouble) -> None:
    """A result whose timing is not a number ends the utterance with a clear
    error (it cannot be placed on the audio), not a dead reader and a hang."""
    deepgram_double.malformed_results = True
    stt = make_stt(deepgram_double.url, finalize_timeout=3600.0)
    with pytest.raises(ProviderError) as info:
        await transcribe(stt, deepgram_double, "list the files")
    assert "malformed result" in info.value.message
    assert stt.idle_connections == 0
    await stt.aclose()


async def test_provider_aclose_closes_open_streams(deepgram_double: DeepgramDouble) -> None:
    stt = make_stt(deepgram_double.url)
    stream = await stt.open_stream()
    await push_all(stream, deepgram_double.audio("list"))
    await stt.aclose()
    assert deepgram_double.sessions[0].closed_with == (1000, "")
    with pytest.raises(ProviderError):
        await stream.push(b"\0\0")


async def test_project_vocabulary_goes_as_keyterms(deepgram_double: DeepgramDouble) -> None:
    stt = make_stt(deepgram_double.url)
    names = ["README.md", "main.py", "README.md", " ", *[f"n{i}.py" for i in range(100)]]
    stream = await stt.open_stream(vocabulary=names)
    await stream.aclose()
    plain = await stt.open_stream()
    await plain.aclose()
    first, second = deepgram_double.sessions[-2:]
    assert first.keyterms[:3] == ["README.md", "main.py", "n0.py"]
    assert len(first.keyterms) == 50
    assert second.keyterms == []
    assert "keywords=" in make_stt(deepgram_double.url, model="nova-2").stream_url(["main.py"])
