"""Admission figures (no assertions: numbers to read, on whatever machine runs it).

    uv run python bench/bench_admission.py [--sweep 8,24,48] [--seconds 8]
                                           [--max-sessions N]

One in-process engine (embedded Silero VAD, Whisper, Piper; command-mode LLM;
memory store). For each N of the sweep, N clients connect at once and stream
real-time silence (32 ms frames); each pings every 250 ms and sends one typed
turn ("list the files") after 2 s. Prints per N: admitted vs refused (4503),
ping round-trip p50/p99 of admitted sessions, first reply audio p50/p90 after
the typed turn, and the engine's capacity estimate (``voco_capacity_sessions``).
The load generator shares the engine's process and machine: figures are a
lower bound of what a dedicated core gives.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FRAME = bytes(1024)  # 512 samples of silence


def pct(xs: list[float], q: float) -> str:
    return f"{np.percentile(xs, q) * 1000:.0f}" if xs else "-"


async def client(url: str, token: str, seconds: float, out: dict[str, Any]) -> None:
    import websockets

    async with websockets.connect(url, ping_interval=None) as ws:
        await ws.send(json.dumps({"type": "session.start", "token": token}))
        while True:
            try:
                raw = await ws.recv()
            except websockets.ConnectionClosed as exc:
                out["refused"] = exc.rcvd.code if exc.rcvd else None
                return
            if isinstance(raw, str) and json.loads(raw)["type"] == "session.ready":
                break
        out["admitted"] = True
        pings: dict[int, float] = {}
        t0 = time.monotonic()
        asked: float | None = None

        async def send() -> None:
            nonlocal asked
            n = 0
            while (now := time.monotonic()) - t0 < seconds:
                await ws.send(FRAME)
                if n % 8 == 0:
                    pings[n] = time.monotonic()
                    await ws.send(json.dumps({"type": "ping", "id": n}))
                if asked is None and now - t0 > 2.0:
                    asked = time.monotonic()
                    await ws.send(json.dumps({"type": "text.input", "text": "list the files"}))
                n += 1
                await asyncio.sleep(max(0.0, t0 + n * 0.032 - time.monotonic()))

        async def recv() -> None:
            async for raw in ws:
                now = time.monotonic()
                if isinstance(raw, bytes):
                    if asked is not None and "first_audio" not in out:
                        out["first_audio"] = now - asked
                    continue
                msg = json.loads(raw)
                if msg["type"] == "pong" and msg.get("id") in pings:
                    out.setdefault("rtt", []).append(now - pings.pop(msg["id"]))
                elif msg["type"] == "mcp.request":  # no runtime here: refuse, like one would
                    await ws.send(
                        json.dumps(
                            {
                                "type": "mcp.response",
                                "id": msg["id"],
                                "status": "error",
                                "code": "denied",
                                "summary": "bench",
                            }
                        )
                    )

        reader = asyncio.create_task(recv())
        await send()
        reader.cancel()


def capacity(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("voco_capacity_sessions "):
                return line.split()[1]
    return "?"


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep", default="8,24,48")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--max-sessions", type=int, default=None)
    args = ap.parse_args()

    from voco.engine.admission import AdmissionConfig
    from voco.engine.runtime import EngineConfig, EngineRuntime
    from voco.engine.server import create_app, uvicorn_options
    from voco.serving import serving

    cfg = EngineConfig(llm="command", database="memory")
    rt = await EngineRuntime.create(cfg)
    app = create_app(rt, admission=AdmissionConfig(max_sessions=args.max_sessions))
    print("N  admitted refused  ping_p50 ping_p99 (ms)  first_audio_p50 p90 (ms)  capacity")
    try:
        async with serving(app, **uvicorn_options()) as port:
            url = f"ws://127.0.0.1:{port}/v1/session"
            for n in (int(x) for x in args.sweep.split(",")):
                outs: list[dict[str, Any]] = [{} for _ in range(n)]
                tokens = [rt.auth.issue(f"bench-{i}") for i in range(n)]
                await asyncio.gather(
                    *(client(url, t, args.seconds, o) for t, o in zip(tokens, outs, strict=True)),
                    return_exceptions=True,
                )
                rtt = [x for o in outs for x in o.get("rtt", [])]
                fa = [o["first_audio"] for o in outs if "first_audio" in o]
                adm = sum(1 for o in outs if o.get("admitted"))
                ref = sum(1 for o in outs if o.get("refused") == 4503)
                print(
                    f"{n:<3}{adm:>9}{ref:>8}  {pct(rtt, 50):>8} {pct(rtt, 99):>8}"
                    f"       {pct(fa, 50):>15} {pct(fa, 90):>4}        {capacity(port)}"
                )
                await asyncio.sleep(1.0)
    finally:
        await rt.aclose()


if __name__ == "__main__":
    asyncio.run(main())
