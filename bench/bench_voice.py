"""Voice-loop benchmarks on this machine (no assertions: figures to read).

    uv run python bench/bench_voice.py [--trials N]

Prints percentiles for
  * barge-in latency at the client: first speech sample captured → halt_audio
    received (speech is streamed in real time, onset aligned to a frame);
  * end of speech → first reply audio byte at the client, both from the last
    voiced sample and from the engine's end-of-turn decision (which waits
    ``end_silence_ms`` of silence);
  * the engine's own overhead per turn (e2e minus STT, LLM and TTS time);
  * Silero VAD cost per stream per 32 ms chunk at 1/32/128 concurrent streams,
    batched vs one call per stream.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes import LONG_REPLY, ScriptedLLM
from tests.speech import espeak_speech, piper_speech, trim
from voco.audio.pcm import FRAME_SAMPLES
from voco.audio.vad import SileroVAD, VadStream
from voco.compose import running_engine
from voco.engine.runtime import EngineRuntime
from voco.local.engine_client import EngineClient
from voco.local.mcp_bridge import McpBridge
from voco.local.streamer import RealtimeStreamer
from voco.protocol import messages as m

INTERRUPTIONS = [
    ("piper", "Wait a moment, please."),
    ("piper", "No, stop."),
    ("espeak", "Hold on a second."),
    ("espeak", "Actually, open the readme."),
]
QUESTIONS = [
    ("piper", "What files are in this project?"),
    ("espeak", "Run the tests."),
    ("piper", "Open the readme."),
    ("espeak", "Show me the git status."),
]


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.array(xs), p)) if xs else float("nan")


def report(name: str, xs: list[float], unit: str = "ms") -> None:
    if not xs:
        print(f"{name:58s} no samples")
        return
    print(
        f"{name:58s} p50 {pct(xs, 50):7.1f} {unit}  p95 {pct(xs, 95):7.1f} {unit}  "
        f"min {min(xs):6.1f}  max {max(xs):6.1f}  n={len(xs)}"
    )


def speech(voice: str, text: str) -> np.ndarray:
    return trim(piper_speech(text) if voice == "piper" else espeak_speech(text))


def prepare_speech() -> None:
    """Synthesize every clip up front: doing it inside a trial would block the
    event loop that paces the uplink, and count as engine latency."""
    for voice, text in INTERRUPTIONS + QUESTIONS:
        speech(voice, text)


async def recv_until(client: EngineClient, pred, log: list, timeout: float = 30.0):
    async def loop():
        while True:
            r = await client.recv()
            log.append(r)
            if r.message is not None and pred(r.message):
                return r

    return await asyncio.wait_for(loop(), timeout)


async def barge_in_trial(url: str, token: str, voice: str, text: str, rng) -> dict:
    client = await EngineClient.connect(url, m.SessionStart(token=token))
    up = RealtimeStreamer(client.send_audio)
    up.start()
    log: list = []
    try:
        await client.send(m.TextInput(text="Tell me about this project."))
        start = await recv_until(client, lambda x: isinstance(x, m.AudioStart), log)
        await asyncio.sleep(0.4 + rng.random())
        onset_ms = up.say(speech(voice, text))
        halt = await recv_until(client, lambda x: isinstance(x, m.HaltAudio), log)
        captured = up.capture_time(onset_ms)
        after = 0
        t_end = time.monotonic() + 0.5
        while time.monotonic() < t_end:  # any audio of that response after the halt?
            try:
                r = await asyncio.wait_for(client.recv(), t_end - time.monotonic())
            except TimeoutError:
                break
            if r.audio is not None:
                after += 1
            if isinstance(r.message, m.AudioStart):
                break
        return {
            "latency_ms": (halt.at - captured) * 1000,
            "t_ms_delta": halt.message.t_ms - onset_ms,
            "audio_after_halt": after,
            "response_ok": halt.message.response_id == start.message.response_id,
        }
    finally:
        await up.stop()
        await client.close()


async def turn_trial(
    url: str, token: str, voice: str, text: str, end_silence_ms: int, bridge: McpBridge | None
) -> dict:
    client = await EngineClient.connect(url, m.SessionStart(token=token))
    up = RealtimeStreamer(client.send_audio)
    up.start()
    try:
        await asyncio.sleep(0.3)
        up.say(speech(voice, text))
        first_audio = None
        metrics = None
        speech_end_ms = None
        while metrics is None:
            r = await asyncio.wait_for(client.recv(), 30)
            if r.audio is not None and first_audio is None:
                first_audio = r.at
            if isinstance(r.message, m.VadSpeechEnd):
                speech_end_ms = r.message.t_ms  # the engine's end of voiced speech
            if isinstance(r.message, m.McpRequest) and bridge is not None:
                bridge.submit(r.message, client)
            if isinstance(r.message, m.Metrics):
                metrics = r.message.model_dump()
        assert first_audio is not None and speech_end_ms is not None
        # capture time of the last voiced sample, and of the end-of-turn decision
        last = up.capture_time(speech_end_ms)
        decided = up.capture_time(speech_end_ms + end_silence_ms)
        return {
            "from_speech_end_ms": (first_audio - last) * 1000,
            "from_endpoint_ms": (first_audio - decided) * 1000,
            "metrics": metrics,
        }
    finally:
        await up.stop()
        await client.close()


def vad_cost(silero: SileroVAD, streams: int, chunks: int = 200) -> tuple[float, float]:
    """µs per stream per chunk: (batched, one call per stream)."""
    rng = np.random.default_rng(0)
    frames = (rng.standard_normal((chunks, streams, FRAME_SAMPLES)) * 0.05).astype(np.float32)
    st = [VadStream() for _ in range(streams)]
    t = time.perf_counter()
    for c in range(chunks):
        silero.step(st, list(frames[c]))
    batched = (time.perf_counter() - t) / (chunks * streams) * 1e6
    st = [VadStream() for _ in range(streams)]
    n = max(1, min(chunks, 4000 // streams))
    t = time.perf_counter()
    for c in range(n):
        for k in range(streams):
            silero.step([st[k]], [frames[c, k]])
    single = (time.perf_counter() - t) / (n * streams) * 1e6
    return batched, single


async def main(trials: int) -> None:
    rng = np.random.default_rng(7)
    prepare_speech()
    silero = SileroVAD()
    print("Silero VAD cost per stream per 32 ms chunk (budget: 32 000 µs realtime):")
    for n in (1, 32, 128):
        b, s = vad_cost(silero, n)
        print(
            f"  {n:4d} streams: batched {b:8.1f} µs   unbatched {s:8.1f} µs   "
            f"batching gain x{s / b:4.1f}   streams per core at real time ≈ {32000 / b:6.0f}"
        )

    rt_long = await EngineRuntime.create(llm=ScriptedLLM(lambda msgs: [LONG_REPLY]))
    async with running_engine(rt_long) as url:
        token = rt_long.auth.issue("bench")
        res = []
        for i in range(trials):
            voice, text = INTERRUPTIONS[i % len(INTERRUPTIONS)]
            res.append(await barge_in_trial(url, token, voice, text, rng))
        print("\nBarge-in (64 ms rule, real-time speech, embedded stack):")
        report("  onset captured -> halt_audio at client", [r["latency_ms"] for r in res])
        report("  halt_audio.t_ms - onset (stream time)", [r["t_ms_delta"] for r in res])
        print(
            f"  audio frames after halt: {sum(r['audio_after_halt'] for r in res)} "
            f"in {len(res)} trials; wrong response id: "
            f"{sum(not r['response_ok'] for r in res)}"
        )
    await rt_long.aclose()

    repo = Path(__file__).resolve().parents[1]
    for label, llm in [
        ("scripted one-sentence reply", ScriptedLLM(lambda msgs: ["Sure, I can help with that."])),
        ("offline command mode, tools answered by the real sandbox", None),
    ]:
        rt = await EngineRuntime.create(llm=llm)
        end_sil = rt.turn_config.end_silence_ms
        bridge = McpBridge([repo], "deny") if llm is None else None
        async with running_engine(rt) as url:
            token = rt.auth.issue("bench")
            res = []
            failed = 0
            for i in range(trials):
                voice, text = QUESTIONS[i % len(QUESTIONS)]
                try:
                    res.append(await turn_trial(url, token, voice, text, end_sil, bridge))
                except TimeoutError:
                    failed += 1  # no reply within 30 s: counted, not hidden
            if failed:
                print(f"\n  {failed} of {trials} turns got no reply within 30 s")
        if bridge is not None:
            await bridge.aclose()
        await rt.aclose()
        print(
            f"\nEnd of speech -> first reply audio byte ({label}; end-of-turn silence "
            f"{end_sil} ms):"
        )
        report("  from the engine's end-of-turn decision", [r["from_endpoint_ms"] for r in res])
        report(
            "  from the last voiced sample (incl. silence wait)",
            [r["from_speech_end_ms"] for r in res],
        )
        for k in ("stt_ms", "llm_ttft_ms", "tts_ttfb_ms", "e2e_ms", "engine_overhead_ms"):
            report(f"  engine metrics: {k}", [r["metrics"][k] for r in res if k in r["metrics"]])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    asyncio.run(main(ap.parse_args().trials))
