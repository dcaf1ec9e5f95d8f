"""False interruptions and own-voice echo (issue 10 §2): figures, no assertions.

    uv run python bench/bench_bargein.py [--rounds N] [--echo-db -20] [--delay-ms 150]
        [--only false|real|echo]

Figures depend on the CPU being free: on a shared machine pin it
(``taskset -c 0``) and say how loaded it was.

Against the embedded stack (Silero VAD, Whisper, Piper) over the real protocol,
speech streamed in real time:

* 20 backchannels ("yeah", "uh-huh", "go on", "mm-hmm", …) in five voices
  (Piper at two speeds, espeak-ng in three accents) and four synthetic
  coughs/keyboard clicks over a playing reply: how many were *resumed*
  (``resume_audio``), how many halted for good, how many never halted; the gap
  halt → resume, and where it goes by the engine's own clock (the verdict
  trace engine/barge.py logs on ``voco.barge``): the rest of the user's
  speech, the silence wait, the decode, the verdict, the send;
* 8 real interruptions ("wait", "no, stop", "Stop.", "No.", a request, …, four
  voices): how many stayed cut (target 100 %), when the cut was decided;
  onset captured → ``halt_audio`` at the client (p50/p95) and audio frames of
  the halted response after ``halt_audio`` (before any ``resume_audio``);
* echo: the client plays the reply into its own microphone at ``--echo-db``
  after ``--delay-ms`` (speakers, no echo cancellation): barge-ins while the
  reply plays (target 0), and a person speaking over that echo (still halts).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes import LONG_REPLY, ScriptedLLM
from tests.speech import _piper, espeak_speech, piper_speech, trim
from voco.audio.pcm import FRAME_SAMPLES
from voco.demo import running_engine
from voco.engine.runtime import EngineRuntime
from voco.local.audio_source import Pacer
from voco.local.engine_client import EngineClient
from voco.protocol import messages as m

REPLY = ". ".join(LONG_REPLY.split(". ")[:3]) + "."
# Several voices: Piper at two speeds, espeak-ng in three accents/pitches.
# (voice name -> espeak-ng voice, words per minute, pitch | Piper length scale)
VOICES: dict[str, tuple[str, int, int] | float] = {
    "piper": 1.0,
    "piper-slow": 1.25,
    "espeak-us": ("en-us", 160, 50),
    "espeak-gb-f": ("en-gb+f3", 150, 70),
    "espeak-scot-m": ("en-gb-scotland+m3", 175, 35),
}
# Backchannels as a listener says them (spelled so the synthesizers hum rather
# than read letters out: both read "Mhm." as "M H M"), rotated over the voices.
BACKCHANNEL_WORDS = ["Yeah.", "Okay.", "Right.", "Uh-huh.", "Go on.", "Sure.", "I see.", "Mm-hmm."]
BACKCHANNELS = [
    (voice, BACKCHANNEL_WORDS[(i + k) % len(BACKCHANNEL_WORDS)])
    for i, voice in enumerate(VOICES)
    for k in range(4)
]  # 5 voices x 4 = 20
INTERRUPTIONS = [
    ("piper", "Wait a moment, please."),
    ("piper", "No, stop."),
    ("espeak-us", "Hold on a second."),
    ("espeak-us", "Actually, open the readme."),
    ("espeak-gb-f", "Stop."),
    ("espeak-scot-m", "Wait."),
    ("piper-slow", "No."),
    ("espeak-gb-f", "What was that?"),
]


def cough(rng: np.random.Generator) -> np.ndarray:
    """A cough: two bursts of shaped noise (~150 ms each), loud."""
    out = []
    for _ in range(2):
        n = 16000 * 150 // 1000
        env = np.exp(-np.linspace(0, 6, n)) * np.minimum(1, np.linspace(0, 20, n))
        x = rng.normal(0, 1, n)
        x = np.convolve(x, np.ones(6) / 6, mode="same") * env * 9000
        out += [x, np.zeros(16000 * 80 // 1000)]
    return np.concatenate(out).astype(np.int16)


def clicks(rng: np.random.Generator) -> np.ndarray:
    """Keyboard clacks: 6 sharp transients 90–160 ms apart."""
    x = np.zeros(16000, dtype=np.float64)
    t = 0
    for _ in range(6):
        k = rng.normal(0, 1, 80) * np.exp(-np.arange(80) / 12) * 20000
        x[t : t + 80] += k
        t += int(16000 * rng.uniform(0.09, 0.16))
    return np.clip(x, -32768, 32767).astype(np.int16)


def cough2(rng: np.random.Generator) -> np.ndarray:
    """A single short cough (~120 ms), quieter and darker."""
    n = 16000 * 120 // 1000
    env = np.exp(-np.linspace(0, 5, n)) * np.minimum(1, np.linspace(0, 15, n))
    x = np.convolve(rng.normal(0, 1, n), np.ones(12) / 12, mode="same") * env * 12000
    return x.astype(np.int16)


def speech(voice: str, text: str) -> np.ndarray:
    spec = VOICES[voice]
    if isinstance(spec, float):
        return trim(_piper_at(text, spec))
    name, wpm, pitch = spec
    return trim(_espeak_as(text, name, wpm, pitch))


def _piper_at(text: str, length_scale: float) -> np.ndarray:
    if length_scale == 1.0:
        return piper_speech(text)
    from piper import SynthesisConfig

    v = _piper()
    cfg = SynthesisConfig(length_scale=length_scale, noise_scale=0.8)
    a = np.concatenate([c.audio_float_array for c in v.synthesize(text, cfg)])
    x = soxr.resample(a, v.config.sample_rate, 16000)
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


def _espeak_as(text: str, voice: str, wpm: int, pitch: int) -> np.ndarray:
    if voice == "en-us" and wpm == 160 and pitch == 50:
        return espeak_speech(text)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "s.wav"
        cmd = ["espeak-ng", "-v", voice, "-s", str(wpm), "-p", str(pitch), "-w", str(out), text]
        subprocess.run(cmd, check=True)
        x, rate = sf.read(str(out), dtype="float32")
    x = soxr.resample(x, rate, 16000)
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.array(xs), p)) if xs else float("nan")


def report(name: str, xs: list[float]) -> None:
    if not xs:
        print(f"  {name:52s} no samples")
        return
    print(f"  {name:52s} p50 {pct(xs, 50):7.1f} ms  p95 {pct(xs, 95):7.1f} ms  n={len(xs)}")


class Traces(logging.Handler):
    """The engine's own clock readings of each verdict (engine/barge.py logs
    one record per tentative halt): where the halt -> resume gap goes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.items: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        marks = getattr(record, "barge", None)
        if isinstance(marks, dict):
            self.items.append(marks)


TRACES = Traces()


class Uplink:
    """An open microphone: user speech queued by :meth:`say`, plus (optionally)
    the reply this client plays, returning ``delay_ms`` late at ``echo_db``."""

    def __init__(self, client: EngineClient, *, echo_db: float | None, delay_ms: int) -> None:
        self.c = client
        self.queue: deque[np.ndarray] = deque()
        self.playing: deque[float] = deque()  # 16 kHz samples still to play
        self.delay = np.zeros(16 * delay_ms)
        self.gain = None if echo_db is None else 10 ** (echo_db / 20)
        self.frames = 0
        self.t0 = 0.0
        self.task: asyncio.Task[None] | None = None

    def say(self, pcm: np.ndarray) -> int:
        start = (self.frames + len(self.queue)) * 32
        n = -(-len(pcm) // FRAME_SAMPLES) * FRAME_SAMPLES
        padded = np.zeros(n)
        padded[: len(pcm)] = pcm
        self.queue.extend(padded.reshape(-1, FRAME_SAMPLES))
        return start

    def capture_time(self, t_ms: int) -> float:
        return self.t0 + (t_ms - 32) / 1000

    def play(self, pcm24: bytes) -> None:
        x = np.frombuffer(pcm24, dtype="<i2").astype(np.float32)
        self.playing.extend(soxr.resample(x, 24000, 16000))

    def halt(self) -> None:
        self.playing.clear()

    async def run(self) -> None:
        pacer = Pacer()
        self.t0 = pacer.t0
        while True:
            frame = self.queue.popleft() if self.queue else np.zeros(FRAME_SAMPLES)
            out = np.array(
                [self.playing.popleft() if self.playing else 0.0 for _ in range(FRAME_SAMPLES)]
            )
            if self.gain is not None:
                line = np.concatenate([self.delay, out])
                frame = frame + line[:FRAME_SAMPLES] * self.gain
                self.delay = line[FRAME_SAMPLES:]
            self.frames += 1
            await self.c.send_audio(np.clip(frame, -32768, 32767).astype("<i2").tobytes())
            await pacer.tick()


async def trial(
    url: str, token: str, stimulus: np.ndarray | None, *, echo_db: float | None, delay_ms: int,
    wait_s: float = 3.0, listen_s: float = 1.2,
) -> dict[str, Any]:  # fmt: skip
    out = m.AudioConfig(output=m.AudioOutput(encoding="pcm_s16le"))
    client = await EngineClient.connect(url, m.SessionStart(token=token, audio=out))
    up = Uplink(client, echo_db=echo_db, delay_ms=delay_ms)
    up.task = asyncio.create_task(up.run())
    res: dict[str, Any] = {"halts": 0, "resumed": False, "stopped": False, "after": 0}
    first_trace = len(TRACES.items)
    try:
        await client.send(m.TextInput(text="Tell me about this project."))
        rid, onset_ms = None, None
        halted_at = None
        deadline = time.monotonic() + 60
        said_at = None
        while time.monotonic() < deadline:
            try:
                r = await asyncio.wait_for(client.recv(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            msg = r.message
            if r.audio is not None:
                if halted_at is not None and not res["resumed"]:
                    res["after"] += 1
                up.play(r.audio)
            if isinstance(msg, m.AudioStart) and rid is None:
                rid = msg.response_id
                said_at = time.monotonic() + listen_s
            elif isinstance(msg, m.HaltAudio) and msg.response_id == rid:
                res["halts"] += 1
                up.halt()
                if halted_at is None:
                    halted_at = r.at
                    if onset_ms is not None:
                        res["latency_ms"] = (r.at - up.capture_time(onset_ms)) * 1000
                        res["t_ms_delta"] = msg.t_ms - onset_ms
                    deadline = min(deadline, time.monotonic() + wait_s)
            elif isinstance(msg, m.ResumeAudio) and halted_at is not None:
                res["resumed"], res["gap_ms"] = True, (r.at - halted_at) * 1000
                if stimulus is not None:
                    deadline = min(deadline, time.monotonic() + 0.3)
            elif isinstance(msg, m.AgentDone) and msg.interrupted and msg.response_id == rid:
                res["stopped"] = True
                deadline = min(deadline, time.monotonic() + 0.3)
            elif isinstance(msg, m.AudioEnd) and msg.response_id == rid and stimulus is None:
                deadline = min(deadline, time.monotonic() + 1.0)  # echo only: played out
            if said_at is not None and time.monotonic() >= said_at and stimulus is not None:
                onset_ms, said_at = up.say(stimulus), None
                deadline = min(deadline, time.monotonic() + 8)
        if len(TRACES.items) > first_trace:
            res["trace"] = TRACES.items[first_trace]
        return res
    finally:
        if up.task is not None:
            up.task.cancel()
            with contextlib.suppress(BaseException):
                await up.task
        await client.close()


async def safe_trial(*args: Any, **kw: Any) -> dict[str, Any]:
    """A trial that fails (a dropped connection on a starved machine) is counted."""
    try:
        return await trial(*args, **kw)
    except Exception as exc:  # a figure, not a crash
        print(f"  (trial failed: {type(exc).__name__})")
        return {"halts": 0, "resumed": False, "stopped": False, "after": 0, "failed": True}


async def main(rounds: int, echo_db: float, delay_ms: int, only: str | None) -> None:
    rng = np.random.default_rng(3)
    noises = [
        ("cough", cough(rng)),
        ("cough (single)", cough2(rng)),
        ("clicks", clicks(rng)),
        ("clicks (2)", clicks(rng)),
    ]
    trace_log = logging.getLogger("voco.barge")
    trace_log.setLevel(logging.DEBUG)
    trace_log.addHandler(TRACES)
    stimuli = [(f"{v}:{t}", speech(v, t)) for v, t in BACKCHANNELS] + noises
    stops = [(f"{v}:{t}", speech(v, t)) for v, t in INTERRUPTIONS]
    rt = await EngineRuntime.create(llm=ScriptedLLM(lambda msgs: [REPLY]))
    async with running_engine(rt) as url:
        token = rt.auth.issue("bench")
        if only in (None, "false"):
            await false_stops(url, token, rounds, stimuli, delay_ms)
        if only in (None, "real"):
            await real_stops(url, token, rounds, stops, delay_ms)
        if only in (None, "echo"):
            await echo(url, token, rounds, stops, echo_db, delay_ms)
    await rt.aclose()


async def false_stops(url: str, token: str, rounds: int, stimuli: list, delay_ms: int) -> None:
    print("False interruptions (backchannels, a cough, clicks) over a playing reply:")
    false_res = []
    for _ in range(rounds):
        for name, pcm in stimuli:
            r = await safe_trial(url, token, pcm, echo_db=None, delay_ms=delay_ms)
            false_res.append(r)
            what = "resumed" if r["resumed"] else "STOPPED" if r["stopped"] else "no halt"
            gap = f" gap {r['gap_ms']:.0f} ms" if "gap_ms" in r else ""
            tr = r.get("trace")
            heard = f"  heard {tr['words']!r}" if tr and tr.get("words") is not None else ""
            print(f"  {name:28s} {what}{gap}{heard}")
    halted = [r for r in false_res if r["halts"]]
    ok = sum(1 for r in false_res if r["resumed"] or not r["halts"])
    print(
        f"  not a false stop: {ok}/{len(false_res)} ({100 * ok / len(false_res):.0f} %); "
        f"halted {len(halted)}, of which resumed {sum(bool(r['resumed']) for r in halted)}"
    )
    report("halt_audio -> resume_audio gap", [r["gap_ms"] for r in false_res if "gap_ms" in r])
    breakdown([r for r in false_res if r["resumed"]])


def breakdown(rs: list[dict[str, Any]]) -> None:
    """Where the gap goes, from the engine's clock (ms after halt_audio)."""
    trs = [r["trace"] for r in rs if "trace" in r]

    def span(a: str | None, b: str) -> list[float]:
        out = []
        for t in trs:
            start = 0 if a is None else t.get(a)
            if start is not None and t.get(b) is not None:
                out.append(float(t[b] - start))
        return out

    print("  where it goes (engine clock):")
    report("  halt -> end of the user's speech", span(None, "speech_end_ms"))
    report("  speech end -> decode asked (silence wait)", span("speech_end_ms", "decode_start_ms"))
    report("  words asked for -> words (decode)", span("decode_start_ms", "words_ms"))
    report("  speech end -> words", span("speech_end_ms", "words_ms"))
    report("  words -> verdict", span("words_ms", "decided_ms"))
    sent = [r["gap_ms"] - r["trace"]["decided_ms"] for r in rs if "trace" in r and "gap_ms" in r]
    report("  verdict -> resume_audio at the client", sent)


async def real_stops(url: str, token: str, rounds: int, stops: list, delay_ms: int) -> None:
    print("\nReal interruptions:")
    real = []
    for _ in range(rounds):
        for name, pcm in stops:
            r = await safe_trial(url, token, pcm, echo_db=None, delay_ms=delay_ms)
            real.append(r)
            cut = r["stopped"] and not r["resumed"]
            halt = ""  # a slow halt: late in stream time (the VAD) or only at the client (a stall)?
            if "latency_ms" in r:
                halt = f"  halt {r['latency_ms']:.0f} ms (stream {r['t_ms_delta']:.0f})"
            print(f"  {name:28s} {'stopped' if cut else 'NOT STOPPED'}{halt}")
    kept = sum(1 for r in real if r["stopped"] and not r["resumed"])
    print(f"  stayed cut: {kept}/{len(real)} ({100 * kept / len(real):.0f} %)")
    report(
        "halt_audio -> cut decided (engine clock)",
        [float(r["trace"]["decided_ms"]) for r in real if "trace" in r],
    )
    report(
        "onset captured -> halt_audio at the client",
        [r["latency_ms"] for r in real if "latency_ms" in r],
    )
    report(
        "halt_audio.t_ms - onset (stream time)",
        [r["t_ms_delta"] for r in real if "t_ms_delta" in r],
    )
    print(f"  audio frames after halt_audio: {sum(int(r['after']) for r in real)}")


async def echo(
    url: str, token: str, rounds: int, stops: list, echo_db: float, delay_ms: int
) -> None:
    print(f"\nOwn voice at {echo_db:.0f} dB, {delay_ms} ms late (speakers, no AEC):")
    echo_only = [
        await safe_trial(url, token, None, echo_db=echo_db, delay_ms=delay_ms)
        for _ in range(rounds)
    ]
    n = sum(int(r["halts"]) for r in echo_only)
    print(f"  barge-ins while the reply played: {n} in {len(echo_only)} replies")
    over = []
    for _ in range(rounds):
        for _name, pcm in stops[:2]:
            over.append(await safe_trial(url, token, pcm, echo_db=echo_db, delay_ms=delay_ms))
    n_halt = sum(1 for r in over if r["halts"])
    print(f"  a person over the echo: halted {n_halt}/{len(over)}")
    report(
        "onset captured -> halt_audio over echo",
        [r["latency_ms"] for r in over if "latency_ms" in r],
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--echo-db", type=float, default=-20.0)
    ap.add_argument("--delay-ms", type=int, default=150)
    ap.add_argument("--only", choices=["false", "real", "echo"])
    args = ap.parse_args()
    asyncio.run(main(args.rounds, args.echo_db, args.delay_ms, args.only))
