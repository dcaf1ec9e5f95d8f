"""Database cost of the store, short runs on the embedded Postgres.

Prints (never asserts):
* per text turn, the database time the engine spends: thread run lease,
  checkpoint reads/writes, and the RLS transaction that writes the turn, its
  tool actions and audit rows — p50/p95 over N sequential turns;
* 40 simultaneous turns: graph-run completion p50 on memory vs Postgres
  (the ``agent.done`` point of a text turn, without TTS);
* audit append throughput for one organisation (serialised per org) and for
  4 organisations in parallel.

Run: ``uv run python bench/bench_store.py [--per-turn] [--pin]`` (seconds;
``--per-turn`` stops after the per-turn figures; ``--pin`` puts the engine on
core 0 and Postgres on core 1; ``--full-history`` writes every super-step's
checkpoint, as before ``store/ckpt_squash.py``, for A/B runs). Figures from a
shared, loaded machine are indicative only; the round-trip and statement
counts are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langgraph.checkpoint.memory import InMemorySaver

from tests.fakes import ScriptedLLM
from tests.store.pgtools import TracedConnection
from voco.agent.context import AgentContext, Emitter, McpOutcome, McpPort
from voco.agent.graph import build_graph
from voco.auth.tokens import Principal
from voco.providers.base import ChatMessage
from voco.store import open_store
from voco.store.db import as_user
from voco.store.embedded import start_embedded
from voco.store.pg_tenants import audit
from voco.store.tenancy import TurnRecord


class _Quiet(Emitter):
    async def text(self, text: str) -> None:
        pass


class _NoTools(McpPort):
    async def call(self, call_id: str, action: str, payload: dict[str, Any]) -> McpOutcome:
        return McpOutcome("success")


async def run_turn(graph: Any, thread: str, text: str) -> None:
    ctx = AgentContext(ScriptedLLM(), _Quiet(), _NoTools(), "system")
    await graph.ainvoke(
        {
            "messages": [{"id": uuid.uuid4().hex, **ChatMessage("user", text).to_dict()}],
            "thread_id": thread,
            "user_id": "u",
            "project_id": "p",
            "domain": None,
        },
        {"configurable": {"thread_id": thread}},
        context=ctx,
    )


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


# what a voice turn with billing on records: 4 meters and one model's tokens
USAGE = {
    "user_speech_ms": 1800,
    "assistant_audio_ms": 4200,
    "stt_audio_ms": 2300,
    "llm_tokens": {"claude-haiku": (900, 120)},
}


async def per_turn_cost(store: Any, pgdata: Path, *, usage: bool, n: int = 60) -> None:
    """Time inside the database per turn, each part counted once: entering
    the run lock (the lease claim, and the checkpoint read sent with it), the
    checkpoint operations during the graph run (measured inside the saver),
    leaving the lock (the run's checkpoint writes with the lease release), and
    the RLS transaction recording the turn with its audit row. Timed without
    the protocol trace; the round trips are counted in a second, traced pass.
    ``usage``: the turn record carries usage rows (billing on)."""
    user = str(uuid.uuid4())
    p = Principal(user, None, {"sub": user})
    grant = await store.tenants.open_session(p, project_id="bench", thread_id=None, session_id="s")
    graph = build_graph(store.checkpointer)
    saver = store.checkpointer

    async def one(i: int) -> tuple[list[float], list[float]]:
        """([wall s], [engine CPU s]) of (enter, during, leave, record)."""
        c0, t0 = time.thread_time(), time.perf_counter()
        lock = grant.run_lock()
        await lock.__aenter__()
        t1, c1 = time.perf_counter(), time.thread_time()
        db1 = saver.db_s
        await run_turn(graph, grant.thread_id, f"turn {i}")
        during = saver.db_s - db1  # reads not served with the claim, timed flushes
        c2, t2 = time.thread_time(), time.perf_counter()
        await lock.__aexit__(None, None, None)
        t3, c3 = time.perf_counter(), time.thread_time()
        extra: dict[str, Any] = USAGE if usage else {}
        grant.record_turn(TurnRecord(f"t{i}", f"r{i}", f"turn {i}", "reply", False, "m", **extra))
        await store.tenants.flush()
        t4, c4 = time.perf_counter(), time.thread_time()
        return [t1 - t0, during, t3 - t2, t4 - t3], [c1 - c0, 0.0, c3 - c2, c4 - c3]

    await one(-1)
    await store.tenants.leases.renew()  # so the heartbeat is not due during the count
    walls: list[list[float]] = []
    cpus: list[list[float]] = []
    server0 = server_sched(pgdata)
    for i in range(n):
        wall, cpu = await one(i)
        walls.append(wall)
        cpus.append(cpu)
    server1 = server_sched(pgdata)
    await store.tenants.leases.renew()
    trace = Path(tempfile.mkdtemp(prefix="voco-trace-"))
    TracedConnection.start(trace)
    counted = 10
    for i in range(counted):
        await one(n + i)
    trips, stmts = TracedConnection.stop()
    trace.rmdir()
    await grant.release()
    floor = await durable_commit(store)
    ms = 1000.0
    totals = [sum(w) for w in walls]
    part = [pct([w[k] for w in walls], 0.5) * ms for k in range(4)]
    label = "with usage rows (billing on)" if usage else "without usage rows"
    print(
        f"per-turn DB cost {label}, {n} turns: p50 {pct(totals, 0.5) * ms:.1f} ms  "
        f"p95 {pct(totals, 0.95) * ms:.1f} ms  (p50 parts: lease claim + checkpoint read "
        f"{part[0]:.1f}, checkpoint ops during the run {part[1]:.1f}, checkpoint writes + "
        f"lease release {part[2]:.1f}, turn+audit tx {part[3]:.1f})"
    )
    print(
        f"per turn: {trips / counted:.1f} round trips, {stmts / counted:.1f} statements "
        f"(load-independent); flushes as one statement {saver.merged}, as recorded "
        f"{saver.unmerged}"
    )
    cpu = [sum(c[k] for c in cpus) / n * ms for k in range(4)]
    if server0 is not None and server1 is not None:
        pg_cpu, pg_wait = ((server1[k] - server0[k]) / n * ms for k in (0, 1))
        print(
            f"CPU per turn (roughly load-independent): postgres {pg_cpu:.1f} ms (all its"
            f" processes), engine {sum(cpu):.1f} ms (claim {cpu[0]:.1f}, writes {cpu[2]:.1f},"
            f" record {cpu[3]:.1f}); postgres also waited {pg_wait:.1f} ms per turn for a CPU"
            " (the machine's load)"
        )
    print(
        f"one durable single-row commit on this disk (WAL fsync; every turn record pays it): "
        f"p50 {floor * ms:.1f} ms"
    )


def server_pids(pgdata: Path) -> list[int]:
    """The embedded server's postmaster and its children (Linux ``/proc``)."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                pids.append(int(stat.parent.name))
    return pids


def pin(pgdata: Path) -> str:
    """``--pin``: this process on core 0, the database server on core 1 (new
    backends fork from the postmaster and inherit it) — the guide's rule for
    figures on this 2-core machine: the two sides never share a core."""
    if len(os.sched_getaffinity(0)) < 2:
        return "not pinned (fewer than 2 cores)"
    os.sched_setaffinity(0, {0})
    for pid in server_pids(pgdata):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {1})
    return "engine on core 0, Postgres on core 1"


def server_sched(pgdata: Path) -> tuple[float, float] | None:
    """(CPU seconds, run-queue wait seconds) so far of the embedded server's
    processes (Linux ``/proc/<pid>/schedstat``), None where not available."""
    try:
        pids = server_pids(pgdata)
        cpu = wait = 0
        for pid in pids:
            with contextlib.suppress(OSError, ValueError):
                run, queued, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
                cpu, wait = cpu + int(run), wait + int(queued)
        return cpu / 1e9, wait / 1e9
    except (OSError, ValueError, IndexError):
        return None


async def durable_commit(store: Any, n: int = 20) -> float:
    """p50 of a one-row ``synchronous_commit = on`` transaction: the floor the
    turn record cannot go under without risking a finished turn."""
    async with store.pool.connection() as conn:
        await conn.execute("create table if not exists engine.bench_fsync (n int)")
    xs = []
    for i in range(n):
        t0 = time.perf_counter()
        async with store.pool.connection() as conn, conn.pipeline():
            await conn.execute("begin")
            await conn.execute("set local synchronous_commit to on")
            await conn.execute("insert into engine.bench_fsync values (%s)", (i,))
            await conn.execute("commit")
        xs.append(time.perf_counter() - t0)
    async with store.pool.connection() as conn:
        await conn.execute("drop table engine.bench_fsync")
    return pct(xs, 0.5)


async def simultaneous(graph: Any, n: int = 40) -> list[float]:
    t0 = time.perf_counter()
    done: list[float] = []

    async def one(i: int) -> None:
        await run_turn(graph, uuid.uuid4().hex, f"hi {i}")
        done.append(time.perf_counter() - t0)

    await asyncio.gather(*(one(i) for i in range(n)))
    return done


async def audit_throughput(store: Any, n: int = 300) -> None:
    async def org_writer(count: int) -> None:
        user = str(uuid.uuid4())
        p = Principal(user, None, {"sub": user})
        g = await store.tenants.open_session(p, project_id="b", thread_id=None, session_id="s")
        await g.release()
        await store.tenants.flush()
        claims = {"sub": user}

        async def write(k: int) -> None:
            for _ in range(k):
                async with as_user(store.pool, claims) as conn:
                    assert g.org_id is not None
                    await audit(conn, g.org_id, "bench", None, {})

        await asyncio.gather(*(write(count // 8) for _ in range(8)))

    t0 = time.perf_counter()
    await org_writer(n)
    one = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    await asyncio.gather(*(org_writer(n) for _ in range(4)))
    four = 4 * n / (time.perf_counter() - t0)
    print(f"audit append: one org {one:.0f}/s (8 writers); 4 orgs in parallel {four:.0f}/s total")


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="voco-bench-") as d:
        server = await asyncio.to_thread(start_embedded, Path(d) / "pgdata")
        if "--pin" in sys.argv:
            print(pin(server.pgdata))
        try:
            async with open_store(
                server.url, max_connections=16, connection_class=TracedConnection
            ) as store:
                if "--full-history" in sys.argv:  # A/B: every super-step's checkpoint
                    store.checkpointer.squash = False
                await per_turn_cost(store, server.pgdata, usage=False)
                await per_turn_cost(store, server.pgdata, usage=True)
                if "--per-turn" in sys.argv:  # only the per-turn figures (A/B runs)
                    return
                mem = await simultaneous(build_graph(InMemorySaver()))
                pg = await simultaneous(build_graph(store.checkpointer))
                print(
                    f"40 simultaneous turns, run done p50: memory "
                    f"{statistics.median(mem) * 1000:.0f} ms, postgres "
                    f"{statistics.median(pg) * 1000:.0f} ms "
                    f"(max checkpoint ops in flight {store.checkpointer.max_in_flight})"
                )
                await audit_throughput(store)
        finally:
            await asyncio.to_thread(server.stop)


if __name__ == "__main__":
    asyncio.run(main())
