"""The listener's per-frame path in one process, with and without the energy gate.

    uv run python bench/bench_vad_gate.py [--sessions 100] [--seconds 16] [--room-dbfs -70]

No assertions: figures to read. Why this exists next to bench_load.py: on a
shared machine the end-to-end bench measures the machine's other tenants as
much as the engine. This one counts only CPU time (``time.process_time``) the
per-frame path consumed per second of session audio, which does not depend on
how much of the core the scheduler gave us.

What runs: N :class:`~voco.engine.listener.Listener` s on one real
:class:`~voco.audio.vad.BatchedVAD` (Silero), a no-op speech-to-text stream and
host (hand-written fakes: the recogniser is remote in this mode), fed 32 ms
frames tick by tick as fast as they go (not paced: CPU per audio second is the
figure), room noise with an espeak-ng utterance every 8 s per session,
staggered. Printed per mode: CPU µs per frame, % of a core per real-time
session, sessions per core by that figure, and how many frames the model
scored.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_load import CHUNK_BYTES, CHUNK_MS, CYCLE_S, room_noise, speech_pcm

from voco.audio.gate import GateConfig
from voco.audio.turns import TurnConfig
from voco.audio.vad import BatchedVAD, SileroVAD
from voco.engine.listener import Listener, ListenerHost
from voco.engine.record import Turn
from voco.engine.turn_end import TurnEndConfig
from voco.providers.base import STT, ProviderError, SpeechStream, STTCapabilities


class NullStream(SpeechStream):
    async def push(self, pcm: bytes) -> None:
        pass

    async def finish(self) -> str:
        return "list the files"

    async def aclose(self) -> None:
        pass


class NullSTT(STT):
    name = "null"
    capabilities = STTCapabilities(streaming=True, interim_results=False)

    async def open_stream(self, on_partial: Any = None, **kw: Any) -> SpeechStream:
        return NullStream()


class Host(ListenerHost):
    turns = 0

    async def send(self, msg: Any) -> None:
        pass

    async def user_started_speaking(self, confirmed_ms: int, onset_ms: int) -> None:
        pass

    async def user_turn(self, turn: Turn) -> None:
        Host.turns += 1

    async def nothing_heard(self) -> None:
        pass

    async def not_understood(self, turn: Turn, exc: ProviderError) -> None:
        pass


class Runtime:
    """The fields of EngineRuntime a Listener reads."""

    def __init__(self, vad: BatchedVAD) -> None:
        self.vad = vad
        self.stt = NullSTT()
        self.turn_config = TurnConfig()
        self.turn_end = TurnEndConfig()


async def run(model: SileroVAD, gate: GateConfig | None, n: int, seconds: float, room: list[bytes]):
    vad = BatchedVAD(model, gate=gate)
    rt: Any = Runtime(vad)
    tasks: set[asyncio.Task[Any]] = set()

    def spawn(aw: Any) -> None:
        t = asyncio.ensure_future(aw)
        tasks.add(t)
        t.add_done_callback(tasks.discard)

    listeners = [Listener(rt, Host(), clock=time.monotonic, spawn=spawn) for _ in range(n)]
    utter = speech_pcm("list the files please")
    utter_frames = [utter[i : i + CHUNK_BYTES] for i in range(0, len(utter), CHUNK_BYTES)]
    per_cycle = int(CYCLE_S * 1000 / CHUNK_MS)
    ticks = int(seconds * 1000 / CHUNK_MS)
    starts = [k * per_cycle // n for k in range(n)]

    def frame(k: int, t: int) -> bytes:
        i = (t - starts[k]) % per_cycle
        return utter_frames[i] if i < len(utter_frames) else room[(t + k) % len(room)]

    async def feed(k: int, t: int) -> None:
        await listeners[k].on_audio([frame(k, t)], t)

    cpu0 = time.process_time()
    for t in range(ticks):
        await asyncio.gather(*(feed(k, t) for k in range(n)))
    cpu = time.process_time() - cpu0
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    vad.close()
    frames = n * ticks
    return cpu, frames, vad.frames


async def harness(n: int, seconds: float) -> float:
    """CPU per frame of this script's own tick loop (one task per session per
    tick, as ``gather`` makes them): subtracted, it is not the engine's."""

    async def nothing(k: int, t: int) -> None:
        pass

    ticks = int(seconds * 1000 / CHUNK_MS)
    cpu0 = time.process_time()
    for t in range(ticks):
        await asyncio.gather(*(nothing(k, t) for k in range(n)))
    return (time.process_time() - cpu0) / (n * ticks)


async def main(args: argparse.Namespace) -> None:
    model = SileroVAD()
    room = room_noise(None if args.room_dbfs >= 0 else args.room_dbfs)
    own = await harness(args.sessions, args.seconds)
    print(f"harness: {own * 1e6:.1f} µs CPU per frame (subtracted below)", flush=True)
    for name, gate in (("ungated", None), ("gated", GateConfig())):
        Host.turns = 0
        cpu, frames, scored = await run(model, gate, args.sessions, args.seconds, room)
        per_frame = cpu / frames - own
        share = per_frame * 1000 / CHUNK_MS  # core-seconds per audio second
        print(
            f"{name:8s} N={args.sessions}: {per_frame * 1e6:6.1f} µs CPU per frame, "
            f"{share * 100:.3f} % of a core per real-time session "
            f"(~{1 / share:.0f} sessions/core for this path), model scored "
            f"{scored}/{frames} frames, turns {Host.turns}",
            flush=True,
        )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=100)
    p.add_argument("--seconds", type=float, default=16.0, help="audio seconds per session")
    p.add_argument("--room-dbfs", type=float, default=-70.0, help="room noise (0: zeros)")
    asyncio.run(main(p.parse_args()))
