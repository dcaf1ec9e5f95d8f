"""Admitted capacity: how many sessions one engine core admits before its first
4503, and how those admitted sessions fare (issue 11 §2). No assertions.

    uv run python bench/bench_admission.py [--mode remote|embedded|both]
                                           [--wave 4] [--step 1.0] [--max 160]
                                           [--hold 10] [--settle 3] [--budget 90]
                                           [--fixed N]   # admission off, N sessions

What runs where (2-core machine), as in ``bench/bench_load.py`` (whose engine,
vendor doubles and real-time session client this reuses):

* the engine, ``voco serve --database memory`` with admission control on (the
  default), pinned with ``taskset -c 0``; ``--mode remote`` uses the Deepgram
  and Cartesia doubles for STT/TTS, ``--mode embedded`` Whisper and Piper inside
  the engine; the language model is the Anthropic double in both;
* this generator and the doubles on core 1.

The ramp: every ``--step`` seconds ``--wave`` new sessions connect (each a new
user: the per-user cap is not what this measures), each streaming real-time
16 kHz audio — silence and an utterance every ~8 s, every other reply barged
into — and pinging once a second, until the engine refuses one with 4503
``at_capacity`` (or ``--max`` are in). A 4503 saying new sessions are "still
settling" (admission lets a ramp grow only as fast as it can measure it) is not
the capacity: the ramp waits its retry-after, as a client would, and goes on.
Then the admitted sessions run on for ``--hold`` seconds, and the figures are
theirs at the admitted load: ping round trip p50/p99, first reply audio after
the end of an utterance p50/p90, frames the engine did not read (dropped),
errors — and whether they meet issue 11's bar for the admitted load (ping p99
< 50 ms, first audio p50 ≤ 0.6 s). During the hold one more session is tried
every second: each is refused (counted) or, if headroom came back, admitted and
measured with the others.

``--fixed N`` runs the engine with ``--admission off`` and N sessions: the
check on "refuses far too early" — if N above the admitted count still meets
the bar, admission is too cautious there. Each mode is bounded by
``--budget`` seconds of ramp (plus the hold).

Figures depend on what else the machine runs; say so when quoting them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_load as load  # the bench directory is not a package

ROOM_DBFS = -70.0  # the same quiet room as bench_load's default


@dataclass
class Ramp:
    admitted: list[load.LoadSession] = field(default_factory=list)
    refused_at: int | None = None  # sessions admitted when the first 4503 came
    refusal: dict[str, Any] = field(default_factory=dict)
    refusals: int = 0  # every 4503 (the ramp's first, and the hold's probes)
    reasons: dict[str, int] = field(default_factory=dict)  # message → count
    other_failures: list[str] = field(default_factory=list)
    settling: int = 0  # 4503s that only slow the ramp down ("still settling")
    settle_retry_s: float = 0.0  # the latest such refusal's retry-after


async def open_or_refused(url: str, token: str, ramp: Ramp) -> Any | None:
    """A started session, or None; the first ``at_capacity`` refusal is recorded."""
    import websockets

    try:
        ws = await websockets.connect(url, max_size=4 << 20, open_timeout=30)
    except Exception as exc:
        ramp.other_failures.append(f"connect: {type(exc).__name__}")
        return None
    try:
        await ws.send(json.dumps({"type": "session.start", "token": token}))
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if msg["type"] == "session.ready":
                return ws
            if msg["type"] == "error" and msg.get("fatal"):
                break
    except websockets.ConnectionClosed:
        msg = {}
    except Exception as exc:
        ramp.other_failures.append(f"start: {type(exc).__name__}")
        await ws.close()
        return None
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.wait_closed(), 5)
    code = ws.close_code
    if (code == 4503 or msg.get("code") == "at_capacity") and "settling" in str(
        msg.get("message", "")
    ):  # a rate, not the capacity: the ramp honours the retry-after and goes on
        ramp.settling += 1
        ramp.settle_retry_s = max(0.1, (msg.get("retry_after_ms") or 1000) / 1000)
    elif code == 4503 or msg.get("code") == "at_capacity":
        ramp.refusals += 1
        why = str(msg.get("message", "")).split("(")[-1].split(")")[0]
        ramp.reasons[why] = ramp.reasons.get(why, 0) + 1
        if ramp.refused_at is None:
            ramp.refused_at = len(ramp.admitted)
            ramp.refusal = {"code": code, "message": msg.get("message", "")}
            ramp.refusal["retry_after_ms"] = msg.get("retry_after_ms")
    else:
        ramp.other_failures.append(f"closed {code}: {msg.get('code', '?')}")
    return None


async def ticker(sessions: list[load.LoadSession], figs: load.Figures, stop: asyncio.Event) -> None:
    """Every 32 ms, one chunk (and pings) for every admitted session — the list
    grows during the ramp."""
    loop = asyncio.get_running_loop()
    due = loop.time()
    while not stop.is_set():
        now = time.monotonic()
        if sessions and sessions[0].measuring:
            figs.tick_lag_ms.append((loop.time() - due) * 1000)
        for s in list(sessions):
            try:
                await s.tick(now)
            except Exception as exc:  # closed by the engine
                figs.errors.append(type(exc).__name__)
                sessions.remove(s)
        due += load.CHUNK_MS / 1000
        await asyncio.sleep(max(0.0, due - loop.time()))


def admit(ramp: Ramp, ws: Any, figs: load.Figures, utter: list[bytes], barge: list[bytes]) -> None:
    offset = 1.0 + (len(ramp.admitted) * 0.37) % load.CYCLE_S  # staggered utterances
    s = load.LoadSession(ws, figs, utter, barge, offset_s=offset)
    s.reader = asyncio.create_task(s.read())
    ramp.admitted.append(s)


async def measure(mode: str, args: argparse.Namespace, urls: dict[str, str]) -> None:
    # bench_load's sessions take pre-framed chunks and a framed room between
    # utterances (its main() sets that up; this bench must too)
    utter = load.chunked(load.speech_pcm("list the files please"))
    barge = load.chunked(load.speech_pcm("no, stop"))
    load.SILENCE[:] = load.room_noise(ROOM_DBFS)
    fixed = args.fixed is not None
    with tempfile.TemporaryDirectory() as home:
        engine = load.start_engine(mode, urls, Path(home), "off" if fixed else "measured")
        with contextlib.suppress(subprocess.TimeoutExpired):
            engine.proc.wait(0.5)  # a bad flag ends its log without "ready on"
        if engine.proc.poll() is not None:
            raise SystemExit(f"mode {mode}: the engine exited ({engine.proc.returncode})")
        figs, ramp = load.Figures(), Ramp()
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(ramp.admitted, figs, stop))
        try:
            print(
                f"mode {mode}: engine pid {engine.proc.pid} on core 0, load on core 1; "
                + (
                    f"{args.fixed} sessions, admission off"
                    if fixed
                    else f"ramp +{args.wave} sessions every {args.step:g} s"
                )
                + f"; machine load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            await asyncio.sleep(args.settle)  # admission learns the idle baseline
            t0 = time.monotonic()
            goal = args.fixed if fixed else args.max
            while (
                ramp.refused_at is None
                and len(ramp.admitted) < goal
                and time.monotonic() - t0 < args.budget
            ):
                wave = min(args.wave, goal - len(ramp.admitted))
                opened = await asyncio.gather(
                    *(open_or_refused(engine.url, engine.token(), ramp) for _ in range(wave))
                )
                for ws in opened:
                    if ws is not None:
                        admit(ramp, ws, figs, utter, barge)
                elapsed = time.monotonic() - t0
                print(f"  t={elapsed:5.1f} s admitted {len(ramp.admitted)}", flush=True)
                if ramp.refused_at is None and len(ramp.admitted) < goal:
                    pause = max(args.step, ramp.settle_retry_s)  # as a client retries
                    ramp.settle_retry_s = 0.0
                    await asyncio.sleep(min(pause, max(0.0, t0 + args.budget - time.monotonic())))
            ramp_s = time.monotonic() - t0
            for s in ramp.admitted:  # the figures are of the admitted load only
                s.measuring = True
            end = time.monotonic() + args.hold
            while time.monotonic() < end:  # one probe a second: refused, or admitted
                await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
                if not fixed and time.monotonic() < end - 2:
                    ws = await open_or_refused(engine.url, engine.token(), ramp)
                    if ws is not None:
                        admit(ramp, ws, figs, utter, barge)
                        ramp.admitted[-1].measuring = True
            for s in ramp.admitted:
                s.measuring = False
            report(mode, ramp, figs, ramp_s, args)
        finally:
            stop.set()
            await tick
            for s in ramp.admitted:
                if s.reader is not None:
                    s.reader.cancel()
            await asyncio.gather(*(s.ws.close() for s in ramp.admitted), return_exceptions=True)
            engine.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                engine.proc.wait(15)
            if engine.proc.poll() is None:
                engine.proc.kill()


PING_P99_MS = 50.0  # issue 11 §2: what the admitted sessions must keep
FIRST_AUDIO_P50_MS = 600.0


def report(
    mode: str, ramp: Ramp, figs: load.Figures, ramp_s: float, args: argparse.Namespace
) -> None:
    pct = load.pct
    if args.fixed is not None:
        head = f"{len(ramp.admitted)} of {args.fixed} sessions open (admission off)"
    elif ramp.refused_at is None:
        head = f"no 4503 within --max {args.max} / --budget {args.budget:g} s: admitted "
        head += f"{len(ramp.admitted)} (capacity ≥ that)"
    else:
        r = ramp.refusal
        head = (
            f"admitted {ramp.refused_at} before the first 4503 "
            f"(retry_after_ms {r.get('retry_after_ms')}: {r.get('message', '')!r})"
        )
    errs = {e: figs.errors.count(e) for e in set(figs.errors)}
    ping99, audio50 = pct(figs.ping_ms, 99), pct(figs.first_audio_ms, 50)
    met = [
        f"ping p99 < {PING_P99_MS:g} ms: {'yes' if ping99 < PING_P99_MS else 'NO'}",
        f"first audio p50 ≤ {FIRST_AUDIO_P50_MS:g} ms: "
        + ("n/a (no reply measured)" if not figs.first_audio_ms else "")
        + ("" if not figs.first_audio_ms else "yes" if audio50 <= FIRST_AUDIO_P50_MS else "NO"),
    ]
    print(f"mode {mode}: {head}; ramp {ramp_s:.0f} s", flush=True)
    print(
        f"  refusals {ramp.refusals} {ramp.reasons or ''} (+{ramp.settling} 'still settling', "
        f"retried); at the end {len(ramp.admitted)} "
        f"admitted (the hold's probes included)",
        flush=True,
    )
    print(
        f"  over {args.hold:g} s at that load: ping p50 {pct(figs.ping_ms, 50):.1f} "
        f"p99 {ping99:.1f} ms (n={len(figs.ping_ms)}); first audio p50 "
        f"{audio50:.0f} p90 {pct(figs.first_audio_ms, 90):.0f} ms "
        f"(n={len(figs.first_audio_ms)}); dropped {figs.dropped}/{figs.sent + figs.dropped}; "
        f"generator lag p99 {pct(figs.tick_lag_ms, 99):.1f} ms; errors {errs or '-'}; "
        f"other failures {sorted(set(ramp.other_failures)) or '-'}",
        flush=True,
    )
    print(f"  the bar: {'; '.join(met)}", flush=True)


async def main(args: argparse.Namespace) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {1})
    doubles = subprocess.Popen(
        ["taskset", "-c", "1", sys.executable, load.__file__, "_doubles"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert doubles.stdout is not None and doubles.stdin is not None
    try:
        urls = json.loads(doubles.stdout.readline())
        for mode in ("remote", "embedded") if args.mode == "both" else (args.mode,):
            await measure(mode, args, urls)
    finally:
        doubles.stdin.close()
        doubles.wait(10)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=["remote", "embedded", "both"], default="both")
    p.add_argument("--wave", type=int, default=4, help="sessions added per step")
    p.add_argument("--step", type=float, default=1.0, help="seconds between waves")
    p.add_argument("--max", type=int, default=160, help="stop the ramp here if never refused")
    p.add_argument("--settle", type=float, default=3.0, help="idle seconds before the ramp")
    p.add_argument("--hold", type=float, default=10.0, help="seconds measured at the admitted load")
    p.add_argument("--budget", type=float, default=90.0, help="seconds of ramp at most, per mode")
    p.add_argument("--fixed", type=int, default=None, help="N sessions with --admission off")
    asyncio.run(main(p.parse_args()))
