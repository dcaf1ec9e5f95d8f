"""The fault bench's soak: N sessions talking for minutes, memory watched.

Kept apart from ``bench_faults.py`` (which imports it) because it is the one
scenario that runs for minutes and samples the process tree while it does.

Each of ``sessions`` slots loops until the time is up: open a session (a new
thread), say ``turns_per_thread`` short text turns — each waits for its
``agent.done`` and for the reply to play out (``state: listening``) — then close
and start over on a new thread, so threads accumulate the way many users'
conversations do (what memory mode's bound is for). A session that the engine
closes, or that stops answering for ``stall_s``, counts as *dropped* and the
slot starts again.

Memory: the engine's RSS (this process: the engine runs in-process) every
``sample_s``; on Postgres also the embedded server's proportional set size
(PSS, so shared buffers are not counted once per backend). RSS per session is
(RSS with every session open at the end − RSS before the first session) / N.
Also glibc's heap (in use / free but kept / mmapped) and, once every session
has ended, RSS before and after ``malloc_trim(0)``: that tells memory something
still holds from memory the allocator keeps.

Figures, issue 15 §7 (shared 2-core machine, load average 9–10: turns and
drops there are the machine's, not the engine's; 20 sessions, admission off):

=================  ==================  ==============  =========================  ==========
run                RSS start → end     slope min 1–N   glibc in use start → peak   RSS after
                                                       → all sessions ended        malloc_trim
=================  ==================  ==============  =========================  ==========
memory, 4 min      436 → 514 MB        +8.4 MB/min     174 → 222 → 176 MB          426 MB
  (last 130 s)     511 → 514 MB        ≈ +1.4 MB/min   plateau
memory, 4 min,     388 → 467 MB        +8.8 MB/min     174 → 223 → 176 MB          429 MB
  trim every 15 s
postgres, 4 min    438 → 514 MB        +8.7 MB/min     175 → 225 → 178 MB          430 MB
memory, 3 min *    437 → 505 MB        +6.9 MB/min     174 → 218 → 177 MB          426 MB
postgres, 3 min *  442 → 493 MB        +5.5 MB/min     175 → 202 → 181 MB          436 MB
=================  ==================  ==============  =========================  ==========

(* this bench, after the fixes.) The rise is not a leak: what is in use goes
back to its baseline when the sessions end (the ~2.3 MB each holds while open
— audio buffers, VAD and TTS state — is freed), mmapped blocks grow 27 → 75 MB
in the first 30 s (the ONNX models' arenas reaching their working size) and
then stay, and the rest is free memory glibc keeps (``malloc_trim`` gives it
back: RSS ends *below* where it started). Trimming periodically lowers the level
(~45 MB) but not the warm-up slope, so the engine does not do it. What did grow
without bound was found and fixed: the memory tenant store's per-user session
count (one entry per user ever seen), and the soak's own scripted model, which
kept every conversation it was shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import websockets

from voco.local.engine_client import EngineClient, SessionRefused
from voco.protocol import messages as m


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of one process (``/proc``), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _MallInfo2(ctypes.Structure):
    _FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks")
    _fields_ = [(n, ctypes.c_size_t) for n in (*_FIELDS, "uordblks", "fordblks", "keepcost")]


def _libc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        return libc
    except (OSError, AttributeError):  # not glibc ≥ 2.33: no heap figures
        return None


LIBC = _libc()


def heap_mb() -> tuple[float, float, float] | None:
    """glibc's view of this process's heap, MB: (in use, free but kept, mmapped
    blocks). In use back at its baseline once sessions end while RSS stays up
    is memory the allocator keeps, not memory anything still holds."""
    if LIBC is None:
        return None
    mi = LIBC.mallinfo2()
    return mi.uordblks / 2**20, mi.fordblks / 2**20, mi.hblkhd / 2**20


def trimmed_rss_mb() -> float | None:
    """RSS after ``malloc_trim(0)`` (free heap pages handed back to the OS)."""
    if LIBC is None:
        return None
    LIBC.malloc_trim(0)
    return rss_mb()


def postgres_pss_mb(pgdata: Path | None) -> float | None:
    """PSS of every postgres process serving ``pgdata`` (postmaster and its
    children), MB; None when there is no embedded server to look at."""
    if pgdata is None:
        return None
    key = str(pgdata.resolve())
    postmaster: int | None = None
    procs: dict[int, int] = {}  # pid -> parent
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            procs[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes().decode(errors="ignore")
            if postmaster is None and "postgres" in stat and key in cmd:
                postmaster = int(d.name)
        except OSError:
            continue
    if postmaster is None:
        return None
    total = 0.0
    for pid, parent in procs.items():
        if pid != postmaster and parent != postmaster:
            continue
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) / 1024
    return total


@dataclass
class SoakResult:
    store: str
    minutes: float
    sessions: int
    turns: int = 0
    sessions_opened: int = 0
    dropped: int = 0
    drop_reasons: dict[str, int] = field(default_factory=dict)
    turn_s: list[float] = field(default_factory=list)  # text.input → agent.done
    samples: list[tuple[float, float, float | None]] = field(default_factory=list)  # t, rss, pg
    baseline_mb: float = 0.0
    loaded_mb: float = 0.0  # every session open, at the end
    heap: list[tuple[float, float, float]] = field(default_factory=list)  # in use, free, mmap
    ended_heap: tuple[float, float, float] | None = None  # every session gone, after gc
    ended_rss_mb: float = 0.0
    trimmed_rss_mb: float | None = None  # … and after malloc_trim

    def slope_mb_per_min(self, skip_s: float = 60.0) -> float:
        """Least-squares RSS slope after the first ``skip_s`` (warm-up: models'
        first allocations, pools filling)."""
        pts = [(t, r) for t, r, _ in self.samples if t >= skip_s] or [
            (t, r) for t, r, _ in self.samples
        ]
        if len(pts) < 2:
            return float("nan")
        t, r = np.array(pts).T
        return float(np.polyfit(t / 60, r, 1)[0])

    def pg_slope_mb_per_min(self, skip_s: float = 60.0) -> float | None:
        pts = [(t, p) for t, _, p in self.samples if p is not None and t >= skip_s]
        if len(pts) < 2:
            return None
        t, p = np.array(pts).T
        return float(np.polyfit(t / 60, p, 1)[0])


async def _slot(
    url: str,
    token: str,
    res: SoakResult,
    end: float,
    *,
    turns_per_thread: int,
    think_s: float,
    stall_s: float,
    open_now: list[int],
) -> None:
    n = 0
    while time.monotonic() < end:
        try:
            c = await EngineClient.connect(url, m.SessionStart(token=token))
        except (SessionRefused, OSError) as exc:
            reason = f"refused {getattr(exc, 'code', None) or type(exc).__name__}"
            res.drop_reasons[reason] = res.drop_reasons.get(reason, 0) + 1
            res.dropped += 1
            await asyncio.sleep(1.0)
            continue
        res.sessions_opened += 1
        open_now[0] += 1
        try:
            for _ in range(turns_per_thread):
                if time.monotonic() >= end:
                    break
                n += 1
                t0 = time.monotonic()
                await c.send(m.TextInput(text=f"soak turn {n}"))
                async with asyncio.timeout(stall_s):
                    while not isinstance((await c.recv()).message, m.AgentDone):
                        pass
                    res.turn_s.append(time.monotonic() - t0)
                    while (await c.recv()).message != m.State(value="listening"):
                        pass
                res.turns += 1
                await asyncio.sleep(think_s)
        except (websockets.ConnectionClosed, TimeoutError) as exc:
            reason = (
                f"closed {exc.rcvd.code} {exc.rcvd.reason}"
                if isinstance(exc, websockets.ConnectionClosed) and exc.rcvd
                else type(exc).__name__
            )
            res.drop_reasons[reason] = res.drop_reasons.get(reason, 0) + 1
            res.dropped += 1
        finally:
            open_now[0] -= 1
            with contextlib.suppress(Exception):
                await c.close()


async def soak(
    url: str,
    rt: Any,
    store: str,
    *,
    sessions: int = 20,
    minutes: float = 10.0,
    turns_per_thread: int = 5,
    think_s: float = 1.0,
    sample_s: float = 15.0,
    stall_s: float = 60.0,
    pgdata: Path | None = None,
) -> SoakResult:
    res = SoakResult(store, minutes, sessions)
    res.baseline_mb = rss_mb()
    start = time.monotonic()
    end = start + minutes * 60
    open_now = [0]
    tokens = [rt.auth.issue(f"soak-{i % 8}") for i in range(sessions)]  # ≤ 16 per user

    async def sampler() -> None:
        while True:
            res.samples.append((time.monotonic() - start, rss_mb(), postgres_pss_mb(pgdata)))
            if (h := heap_mb()) is not None:
                res.heap.append(h)
            await asyncio.sleep(sample_s)

    sampling = asyncio.create_task(sampler())
    loaded: list[float] = []

    async def last_sample() -> None:  # every session open, just before the end
        await asyncio.sleep(max(0.0, end - time.monotonic() - sample_s / 2))
        loaded.append(rss_mb())

    tail = asyncio.create_task(last_sample())
    try:
        await asyncio.gather(
            *(
                _slot(
                    url,
                    tok,
                    res,
                    end,
                    turns_per_thread=turns_per_thread,
                    think_s=think_s,
                    stall_s=stall_s,
                    open_now=open_now,
                )
                for tok in tokens
            )
        )
    finally:
        sampling.cancel()
        tail.cancel()
    res.samples.append((time.monotonic() - start, rss_mb(), postgres_pss_mb(pgdata)))
    res.loaded_mb = loaded[0] if loaded else res.samples[-1][1]
    gc.collect()
    res.ended_heap, res.ended_rss_mb = heap_mb(), rss_mb()
    res.trimmed_rss_mb = trimmed_rss_mb()
    return res


def print_soak(res: SoakResult) -> dict[str, str]:
    """Print one store's soak figures; return them for the before/after table."""
    first, last = res.samples[0], res.samples[-1]
    per_session = (res.loaded_mb - res.baseline_mb) / max(1, res.sessions)
    slope = res.slope_mb_per_min()
    turns_s = sorted(res.turn_s)
    p50 = turns_s[len(turns_s) // 2] if turns_s else float("nan")
    print(f"  {res.store}: {res.sessions} sessions × {res.minutes:g} min")
    print(
        f"    turns completed {res.turns} (p50 text.input → agent.done {p50:.2f} s), "
        f"sessions opened {res.sessions_opened}, dropped {res.dropped} {res.drop_reasons or ''}"
    )
    print(
        f"    engine RSS start {first[1]:.0f} MB → end {last[1]:.0f} MB; "
        f"per session {per_session:.1f} MB; slope after min 1 {slope:+.2f} MB/min"
    )
    if first[2] is not None and last[2] is not None:
        pg_slope = res.pg_slope_mb_per_min()
        print(
            f"    embedded postgres PSS start {first[2]:.0f} MB → end {last[2]:.0f} MB; "
            f"slope {pg_slope if pg_slope is not None else float('nan'):+.2f} MB/min"
        )
    print(f"    rss samples (s, MB): {[(int(t), round(r)) for t, r, _ in res.samples]}")
    if res.heap and res.ended_heap is not None:
        (u0, f0, h0), (u1, f1, h1) = res.heap[0], res.ended_heap
        peak = max(u for u, _, _ in res.heap)
        print(
            f"    glibc heap in use {u0:.0f} MB → peak {peak:.0f} → {u1:.0f} MB once every "
            f"session ended; free-but-kept {f0:.0f} → {f1:.0f} MB; mmapped {h0:.0f} → {h1:.0f} MB"
        )
        print(
            f"    RSS with every session ended {res.ended_rss_mb:.0f} MB, after malloc_trim "
            f"{res.trimmed_rss_mb:.0f} MB (start {first[1]:.0f} MB)"
        )
    return {
        "turns": f"{res.turns} turns, {res.dropped} of {res.sessions_opened} sessions dropped",
        "rss": (
            f"{first[1]:.0f} → {last[1]:.0f} MB in {res.minutes:g} min, "
            f"{slope:+.1f} MB/min, {per_session:.1f} MB/session"
        ),
    }


def pid_note() -> str:
    return f"pid {os.getpid()}, affinity {sorted(os.sched_getaffinity(0))}"
