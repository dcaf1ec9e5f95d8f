"""Turn-end benchmarks (issue 10 §1): figures to read, no assertions.

    taskset -c 0 uv run python bench/bench_turns.py [--trials N] [--splits N]
        [--only latency|splits] [--llm scripted|command] [--stt whisper:tiny|whisper:base]
        [--stt-window-s S]

Embedded stack (Silero VAD, Whisper, Piper), one session at a time, speech
streamed in real time. Prints

* **last voiced sample → first reply audio byte** at the client, p50/p90, for
  a scripted fast LLM (one short sentence, no tools) and for the offline
  command mode with its tools answered by the real sandbox. "Last voiced
  sample" is the true end of the synthesized clip (its trailing silence
  trimmed), not the engine's own VAD estimate;
* **split turns** on utterances said with a 500–800 ms hesitation in the
  middle (two halves synthesized separately, silence between), in several
  espeak-ng voices and Piper: a split is more than one ``transcript.final``
  for one utterance, or reply audio starting inside the hesitation;
* **turns per plain utterance** (no hesitation): should be exactly one.
* **where the time went** (engine clock, ms after the last voiced frame the
  VAD saw; ``engine/turn_timeline.py``): the VAD's own lag behind the true end
  (stream time), when the speculative decode started and its duration, when
  the turn was confirmed, when the speculative reply started and had its
  first audio, when that audio was released — and how often the speculative
  reply was the one that answered.

Short runs only: the machine is shared. The figures depend on its load.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes import ScriptedLLM
from tests.speech import piper_speech, silence, trim
from voco.audio.pcm import SAMPLE_RATE
from voco.demo import running_engine
from voco.engine.runtime import EngineConfig, EngineRuntime
from voco.local.engine_client import EngineClient
from voco.local.mcp_bridge import McpBridge
from voco.local.streamer import RealtimeStreamer
from voco.protocol import messages as m

VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-us+m4", "piper"]
PLAIN = [
    "Show me the git status.",
    "What files are in this project?",
    "Open the readme.",
    "List the source folder.",
    "Read the pyproject file.",
]
# people hesitate before the content word: after a preposition, an article,
# "called", a conjunction, a filler
HALVES = [
    ("Read the first ten lines of", "the config file."),
    ("Open the file called", "main dot py."),
    ("Search the project for", "the word session."),
    ("Show me what is in", "the source folder."),
    ("List the files in the", "tests folder."),
    ("Read the readme and", "tell me what it says."),
    ("Show me the git status, um", "of this project."),
    ("What is the name of", "this project?"),
    ("Open the", "readme file."),
    ("Search for the word", "listener in the engine."),
    ("Read the file called", "pyproject dot toml."),
    ("Tell me about the tests in", "the audio folder."),
]


@functools.cache
def espeak(text: str, voice: str) -> np.ndarray:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SystemExit("espeak-ng is not installed (scripts/setup.sh installs it)")
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "s.wav"
        subprocess.run([exe, "-v", voice, "-s", "165", "-w", str(out), text], check=True)
        x, rate = sf.read(str(out), dtype="float32")
    x = soxr.resample(x, rate, SAMPLE_RATE)
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


def speech(voice: str, text: str) -> np.ndarray:
    return trim(piper_speech(text) if voice == "piper" else espeak(text, voice))


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.array(xs), p)) if xs else float("nan")


def report(name: str, xs: list[float]) -> None:
    if not xs:
        print(f"  {name:50s} no samples")
        return
    print(
        f"  {name:50s} p50 {pct(xs, 50):6.0f} ms  p90 {pct(xs, 90):6.0f} ms  "
        f"min {min(xs):5.0f}  max {max(xs):5.0f}  n={len(xs)}"
    )


async def utterance_trial(
    url: str, token: str, pcm: np.ndarray, bridge: McpBridge | None, settle_s: float
) -> dict[str, Any]:
    """Say ``pcm`` once; collect what the engine did about it."""
    client = await EngineClient.connect(url, m.SessionStart(token=token))
    up = RealtimeStreamer(client.send_audio)
    up.start()
    finals: list[str] = []
    vad_end_ms: int | None = None
    first_audio: float | None = None
    metrics: dict[str, Any] | None = None
    try:
        await asyncio.sleep(0.3)
        onset = up.say(pcm)
        end_ms = onset + len(pcm) * 1000 // SAMPLE_RATE
        hard_stop = time.monotonic() + 20
        while time.monotonic() < hard_stop:
            said = up.capture_time(end_ms)
            if metrics is not None and time.monotonic() > said + settle_s:
                break
            try:
                r = await asyncio.wait_for(client.recv(), 0.2)
            except TimeoutError:
                continue
            if r.audio is not None and first_audio is None:
                first_audio = r.at
            msg = r.message
            if isinstance(msg, m.TranscriptFinal):
                finals.append(msg.text)
            elif isinstance(msg, m.VadSpeechEnd) and vad_end_ms is None:
                vad_end_ms = msg.t_ms
            elif isinstance(msg, m.McpRequest) and bridge is not None:
                bridge.submit(msg, client)
            elif isinstance(msg, m.Metrics):
                metrics = msg.model_dump()
        last_voiced = up.capture_time(end_ms)
        return {
            "finals": finals,
            "latency_ms": None if first_audio is None else (first_audio - last_voiced) * 1000,
            "metrics": metrics or {},
            "vad_lag_ms": None if vad_end_ms is None else vad_end_ms - end_ms,
        }
    finally:
        await up.stop()
        await client.close()


STEPS = (
    "eot_decode_start_ms",
    "eot_decode_ms",
    "eot_transcript_ms",
    "eot_confirmed_ms",
    "eot_spec_start_ms",
    "eot_spec_audio_ms",
    "eot_release_ms",
)


def make_stt(name: str, window_s: float | None) -> Any:
    """The engine's STT by name (``whisper``: the registry's default model),
    optionally with another minimum encoder window."""
    from voco.providers.registry import make_stt as registry_stt
    from voco.providers.whisper_stt import WhisperSTT

    stt = registry_stt(name)
    if window_s is None:
        return stt
    return WhisperSTT(model=stt.model, min_context_s=window_s)


async def latency_run(
    label: str, llm: Any, trials: int, repo: Path, stt: str, window_s: float | None
) -> None:
    rt = await EngineRuntime.create(
        EngineConfig(database="memory"), llm=llm, stt=make_stt(stt, window_s)
    )
    observed: list[dict[str, int]] = []
    rt.turn_observers.append(lambda fields: observed.append(dict(fields)))
    # an audit log of its own: the bench must not write (or trip over) the user's
    audit = Path(tempfile.mkdtemp(prefix="bench-turns-")) / "audit.jsonl"
    bridge = McpBridge([repo], "deny", audit_path=audit) if llm is None else None
    res = []
    async with running_engine(rt) as url:
        token = rt.auth.issue("bench")
        for i in range(trials):
            voice = VOICES[i % len(VOICES)]
            text = PLAIN[i % len(PLAIN)]
            observed.clear()
            r = await utterance_trial(url, token, speech(voice, text), bridge, 0.2)
            r["steps"] = observed[-1] if observed else {}
            res.append(r)
    if bridge is not None:
        await bridge.aclose()
    await rt.aclose()
    print(f"\nLast voiced sample -> first reply audio byte ({label}):")
    report("at the client", [r["latency_ms"] for r in res if r["latency_ms"] is not None])
    for k in ("stt_ms", "llm_ttft_ms", "tts_ttfb_ms", "e2e_ms", "engine_overhead_ms"):
        report(f"engine metrics: {k}", [r["metrics"][k] for r in res if k in r["metrics"]])
    print("  where the time went (engine clock, ms after the VAD's last voiced frame):")
    report(
        "VAD lag behind the true end (stream ms)",
        [r["vad_lag_ms"] for r in res if r["vad_lag_ms"] is not None],
    )
    for k in STEPS:
        report(k, [r["steps"][k] for r in res if k in r["steps"]])
    taken = sum("eot_spec_start_ms" in r["steps"] for r in res)
    print(f"  speculative reply answered {taken} of {len(res)} turns")
    turns = [len(r["finals"]) for r in res]
    print(f"  turns per plain utterance: {turns.count(1)} of {len(turns)} exactly one {turns}")


async def split_run(n: int, rng: np.random.Generator, stt: str, window_s: float | None) -> None:
    llm = ScriptedLLM(lambda msgs: ["Sure, I can help with that."])
    rt = await EngineRuntime.create(
        EngineConfig(database="memory"), llm=llm, stt=make_stt(stt, window_s)
    )
    split = 0
    rows = []
    async with running_engine(rt) as url:
        token = rt.auth.issue("bench")
        for i in range(n):
            voice = VOICES[i % len(VOICES)]
            a, b = HALVES[i % len(HALVES)]
            gap = int(rng.integers(500, 801))
            pcm = np.concatenate([speech(voice, a), silence(gap), speech(voice, b)])
            r = await utterance_trial(url, token, pcm, None, 0.3)
            bad = len(r["finals"]) != 1
            split += bad
            rows.append((voice, gap, a, b, r["finals"]))
    await rt.aclose()
    print(f"\nMid-sentence hesitation of 500-800 ms: {split} split turns of {n} utterances")
    for voice, gap, a, b, finals in rows:
        mark = "SPLIT" if len(finals) != 1 else "ok   "
        print(f"  {mark} {voice:15s} {gap:3d} ms  {a!r} | {b!r} -> {finals}")


async def main(
    trials: int, splits: int, what: str, llms: str, stt: str, window_s: float | None
) -> None:
    rng = np.random.default_rng(10)
    repo = Path(__file__).resolve().parents[1]
    for voice in VOICES:  # synthesize up front: not inside a timed trial
        for text in PLAIN:
            speech(voice, text)
    print("(figures from a shared, loaded machine: read them as rough)")
    if what in ("all", "latency"):
        if llms in ("both", "scripted"):
            scripted = ScriptedLLM(lambda msgs: ["Sure, I can help with that."])
            label = "scripted fast LLM, one sentence"
            await latency_run(label, scripted, trials, repo, stt, window_s)
        if llms in ("both", "command"):
            label = "offline command mode, real sandbox"
            await latency_run(label, None, trials, repo, stt, window_s)
    if what in ("all", "splits"):
        await split_run(splits, rng, stt, window_s)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--splits", type=int, default=24)
    ap.add_argument("--only", choices=["all", "latency", "splits"], default="all")
    ap.add_argument("--llm", choices=["both", "scripted", "command"], default="both")
    ap.add_argument("--stt", choices=["whisper", "whisper:tiny", "whisper:base"], default="whisper")
    ap.add_argument(
        "--stt-window-s", type=float, default=None, help="Whisper's minimum encoder window"
    )
    args = ap.parse_args()
    asyncio.run(main(args.trials, args.splits, args.only, args.llm, args.stt, args.stt_window_s))
