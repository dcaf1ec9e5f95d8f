"""Database cost of the store, short runs on the embedded Postgres.

Prints (never asserts):
* per text turn, the database time the engine spends: thread run lease,
  checkpoint reads/writes, and the RLS transaction that writes the turn, its
  tool actions and audit rows — p50/p95 over N sequential turns;
* 40 simultaneous turns: graph-run completion p50 on memory vs Postgres
  (the ``agent.done`` point of a text turn, without TTS);
* audit append throughput for one organisation (serialised per org) and for
  4 organisations in parallel.

Run: ``uv run python bench/bench_store.py [--per-turn]`` (seconds; ``--per-turn``
stops after the per-turn figures). Figures from a shared, loaded machine are
indicative only; the round-trip and statement counts are not.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langgraph.checkpoint.memory import InMemorySaver
from psycopg import AsyncConnection, pq
from psycopg.rows import DictRow

from tests.fakes import ScriptedLLM
from voco.agent.context import AgentContext, Emitter, McpOutcome, McpPort
from voco.agent.graph import build_graph
from voco.auth.tokens import Principal
from voco.providers.base import ChatMessage
from voco.store import open_store
from voco.store.db import as_user
from voco.store.embedded import start_embedded
from voco.store.pg_tenants import audit
from voco.store.tenancy import TurnRecord


class TracedConnection(AsyncConnection[DictRow]):
    """A pool connection whose libpq protocol trace can be switched on, so the
    bench counts round trips (sync points: ``Sync`` / simple ``Query``
    messages) and statements — figures a loaded machine cannot distort."""

    live: ClassVar[list[TracedConnection]] = []
    trace_dir: ClassVar[Path | None] = None

    @classmethod
    async def connect(cls, *args: Any, **kw: Any) -> Any:  # type: ignore[override]
        conn = await super().connect(*args, **kw)
        cls.live.append(conn)
        if cls.trace_dir is not None:
            conn._start_trace()
        return conn

    def _start_trace(self) -> None:
        assert self.trace_dir is not None
        self._trace = open(self.trace_dir / f"{uuid.uuid4().hex}.trace", "w")  # noqa: SIM115
        self.pgconn.trace(self._trace.fileno())
        self.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    @classmethod
    def start(cls, d: Path) -> None:
        cls.trace_dir = d
        for c in cls.live:
            if not c.closed:
                c._start_trace()

    @classmethod
    def stop(cls) -> tuple[int, int]:
        """(round trips, statements) since :meth:`start`."""
        d, cls.trace_dir = cls.trace_dir, None
        for c in cls.live:
            if not c.closed and hasattr(c, "_trace"):
                c.pgconn.untrace()
                c._trace.close()
        syncs = stmts = 0
        assert d is not None
        for f in d.glob("*.trace"):
            for line in f.read_text().splitlines():
                parts = line.split()
                if len(parts) > 2 and parts[0] == "F":
                    syncs += parts[2] in ("Sync", "Query")
                    stmts += parts[2] in ("Execute", "Query")
            f.unlink()
        return syncs, stmts


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


async def per_turn_cost(store: Any, n: int = 60) -> None:
    """Time inside the database per turn, each part counted once: entering
    the run lock (the lease claim, and the checkpoint read sent with it), the
    checkpoint operations during the graph run (measured inside the saver),
    leaving the lock (the run's checkpoint writes with the lease release), and
    the RLS transaction recording the turn with its audit row."""
    user = str(uuid.uuid4())
    p = Principal(user, None, {"sub": user})
    grant = await store.tenants.open_session(p, project_id="bench", thread_id=None, session_id="s")
    graph = build_graph(store.checkpointer)
    saver = store.checkpointer
    totals, enter, during, leave, record = [], [], [], [], []
    await store.tenants.leases.renew()  # so the heartbeat is not due during the count
    trace = Path(tempfile.mkdtemp(prefix="voco-trace-"))
    TracedConnection.start(trace)
    for i in range(n):
        t0 = time.perf_counter()
        lock = grant.run_lock()
        await lock.__aenter__()
        t1 = time.perf_counter()
        db1 = saver.db_s
        await run_turn(graph, grant.thread_id, f"turn {i}")
        during.append(saver.db_s - db1)  # reads not served with the claim, timed flushes
        t2 = time.perf_counter()
        await lock.__aexit__(None, None, None)
        t3 = time.perf_counter()
        grant.record_turn(TurnRecord(f"t{i}", f"r{i}", f"turn {i}", "reply", False, "m"))
        await store.tenants.flush()
        t4 = time.perf_counter()
        enter.append(t1 - t0)
        leave.append(t3 - t2)
        record.append(t4 - t3)
        totals.append(enter[-1] + during[-1] + leave[-1] + record[-1])
    syncs, stmts = TracedConnection.stop()
    trace.rmdir()
    await grant.release()
    floor = await durable_commit(store)
    print(
        f"flushes merged into one statement: {saver.merged}, sent as recorded: {saver.unmerged}"
    )
    ms = 1000.0
    print(
        f"per-turn DB cost, {n} turns: p50 {pct(totals, 0.5) * ms:.1f} ms  "
        f"p95 {pct(totals, 0.95) * ms:.1f} ms  (p50 parts: lease claim + checkpoint read "
        f"{pct(enter, 0.5) * ms:.1f}, checkpoint ops during the run "
        f"{pct(during, 0.5) * ms:.1f}, checkpoint writes + lease release "
        f"{pct(leave, 0.5) * ms:.1f}, turn+audit tx {pct(record, 0.5) * ms:.1f})"
    )
    print(
        f"per turn: {syncs / n:.1f} round trips (sync points), {stmts / n:.1f} statements "
        "(load-independent)"
    )
    print(
        f"one durable single-row commit on this disk (WAL fsync; every turn record pays it): "
        f"p50 {floor * ms:.1f} ms"
    )


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
        try:
            async with open_store(
                server.url, max_connections=16, connection_class=TracedConnection
            ) as store:
                await per_turn_cost(store)
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
