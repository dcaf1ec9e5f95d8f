"""The durable store against a real PostgreSQL 16 (pgserver), never a mock.

One embedded server serves the whole session (it starts once, ~1 s); tests that
are about the embedded server's own life (restart, crash) run their own in a
temp directory.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgserver.postgres_server import PostgresServer
from psycopg import conninfo

from tests.fakes import ScriptedLLM
from tests.store.pgtools import server_dir
from voco.agent.context import AgentContext, Emitter, McpOutcome, McpPort
from voco.agent.graph import build_graph
from voco.providers.base import ChatMessage, ToolCall
from voco.store import ENV_URL, Store, open_store
from voco.store.checkpoints import make_checkpointer
from voco.store.embedded import EmbeddedPostgres
from voco.store.migrate import load_migrations

# ------------------------------------------------------------------ fixtures


@pytest.fixture
def home() -> Iterator[Path]:
    """A per-test ``VOCO_HOME``-like directory for tests that run their own server."""
    with server_dir() as d:
        yield d


@pytest.fixture
def no_env_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)


def uid() -> str:
    return uuid.uuid4().hex


class RecordingEmitter(Emitter):
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def text(self, text: str) -> None:
        self.texts.append(text)


class AnsweringPort(McpPort):
    """Answers every action with the same result."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def call(self, call_id: str, action: str, payload: dict[str, Any]) -> McpOutcome:
        self.calls.append((call_id, action, payload))
        return McpOutcome("success", result=self.result)


class HangingPort(McpPort):
    """Never answers: the engine "dies" while the action is in flight."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def call(self, call_id: str, action: str, payload: dict[str, Any]) -> McpOutcome:
        self.started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def turn(
    store: Store,
    llm: ScriptedLLM,
    text: str,
    *,
    thread: str,
    msg_id: str,
    port: McpPort | None = None,
) -> Any:
    """One turn exactly as the engine's session runs it, on a fresh graph."""
    graph = build_graph(store.checkpointer)
    ctx = AgentContext(llm, RecordingEmitter(), port or AnsweringPort(None), "system")
    await graph.ainvoke(
        {
            "messages": [{"id": msg_id, **ChatMessage("user", text).to_dict()}],
            "thread_id": thread,
            "user_id": "alice",
            "project_id": "p",
            "domain": None,
        },
        {"configurable": {"thread_id": thread}},
        context=ctx,
    )
    return await graph.aget_state({"configurable": {"thread_id": thread}})


def postmaster_running(pgdata: Path) -> bool:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().splitlines()[0]), 0)
    except ProcessLookupError:
        return False
    return True


# ------------------------------------------------------------------- schema


async def test_schema_setup_is_idempotent(pg: EmbeddedPostgres) -> None:
    thread = uid()
    async with open_store(pg.url) as store:
        await turn(store, ScriptedLLM(), "hi", thread=thread, msg_id="u1")
        await make_checkpointer(store.pool, setup=True)
    async with open_store(pg.url) as store:
        state = await build_graph(store.checkpointer).aget_state(
            {"configurable": {"thread_id": thread}}
        )
        assert state.values["messages"][0]["content"] == "hi"


async def test_concurrent_first_setup_on_empty_database(pg: EmbeddedPostgres) -> None:
    """Replicas starting together on a fresh database must not race in DDL."""
    db = f"race_{uid()[:12]}"
    with psycopg.connect(pg.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {db}")
    url = conninfo.make_conninfo(pg.url, dbname=db)
    async with AsyncExitStack() as stack:
        stores = await asyncio.gather(
            *(stack.enter_async_context(open_store(url)) for _ in range(4))
        )
        async with stores[0].pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) AS n, count(DISTINCT v) AS d FROM engine.checkpoint_migrations"
            )
            row = await cur.fetchone()
            assert row is not None and row["n"] == row["d"] > 0
            cur = await conn.execute(
                "SELECT count(*) AS n FROM supabase_migrations.schema_migrations"
            )
            row = await cur.fetchone()
            assert row is not None and row["n"] == len(load_migrations())


# ------------------------------------------------------------- checkpoints


async def test_checkpoint_round_trip_through_the_graph(pg: EmbeddedPostgres) -> None:
    thread = uid()
    llm = ScriptedLLM()
    async with open_store(pg.url) as store:
        state = await turn(store, llm, "hi", thread=thread, msg_id="u1")
    texts = [(m["role"], m["content"]) for m in state.values["messages"]]
    assert texts == [("user", "hi"), ("assistant", "You said: hi")]
    assert state.values["user_id"] == "alice"


async def test_conversation_survives_engine_restart(home: Path, no_env_url: None) -> None:
    """Close pool and server, start both again on the same data dir, resume."""
    pgdata = home / "pgdata"
    thread = uid()
    read = ToolCall("c1", "read_file", {"path": "README.md"})

    def script(msgs: list[ChatMessage]) -> list[str | ToolCall]:
        if msgs[-1].role == "tool":
            return ["It is a voice assistant."]
        if len(msgs) == 1:
            return [read]
        return [f"You asked before: {msgs[0].content}"]

    llm1 = ScriptedLLM(script)
    port = AnsweringPort({"content": "# Voco"})
    async with open_store(pgdata=pgdata) as store:
        assert store.embedded is not None
        await turn(store, llm1, "what is this project?", thread=thread, msg_id="u1", port=port)
    assert port.calls == [("c1", "read_file", {"path": "README.md"})]
    assert not postmaster_running(pgdata), "closing the store must stop the server"

    llm2 = ScriptedLLM(script)
    async with open_store(pgdata=pgdata) as store:
        assert postmaster_running(pgdata)
        graph = build_graph(store.checkpointer)
        before = await graph.aget_state({"configurable": {"thread_id": thread}})
        roles = [m["role"] for m in before.values["messages"]]
        assert roles == ["user", "assistant", "tool", "assistant"]
        assert before.values["messages"][1]["tool_calls"][0]["arguments"] == {"path": "README.md"}
        after = await turn(store, llm2, "and again?", thread=thread, msg_id="u2")

    seen = llm2.calls[0]
    assert [m.role for m in seen] == ["user", "assistant", "tool", "assistant", "user"]
    assert seen[0].content == "what is this project?"
    assert seen[3].content == "It is a voice assistant."
    assert after.values["messages"][-1]["content"] == "You asked before: what is this project?"


async def test_action_in_flight_when_engine_died_is_closed_after_restart(
    home: Path, no_env_url: None
) -> None:
    """The checkpoint keeps a pending MCP action; the next run reports its
    outcome as unknown instead of leaving a dangling tool call."""
    pgdata = home / "pgdata"
    thread = uid()

    def script(msgs: list[ChatMessage]) -> list[str | ToolCall]:
        if msgs[-1].role == "tool":
            return ["I could not confirm that."]
        return [ToolCall("w1", "write_file", {"path": "a.txt", "content": "x"})]

    port = HangingPort()
    async with open_store(pgdata=pgdata) as store:
        run = asyncio.create_task(
            turn(store, ScriptedLLM(script), "write it", thread=thread, msg_id="u1", port=port)
        )
        await asyncio.wait_for(port.started.wait(), 10)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    llm = ScriptedLLM(script)
    async with open_store(pgdata=pgdata) as store:
        graph = build_graph(store.checkpointer)
        left = await graph.aget_state({"configurable": {"thread_id": thread}})
        assert left.values["pending_mcp_action"]["id"] == "w1"
        state = await turn(store, llm, "did it work?", thread=thread, msg_id="u2")
    tool = next(m for m in state.values["messages"] if m["role"] == "tool")
    assert tool["tool_call_id"] == "w1" and tool["is_error"]
    assert "runtime_disconnected" in tool["content"]
    assert state.values["pending_mcp_action"] is None


# ------------------------------------------------------- where the db lives


async def test_database_url_env_skips_embedded_server(
    pg: EmbeddedPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_URL, pg.url)
    monkeypatch.setenv("VOCO_HOME", str(tmp_path))
    servers_before = dict(PostgresServer._instances)
    async with open_store() as store:
        assert store.embedded is None
        assert store.url == pg.url
        assert dict(PostgresServer._instances) == servers_before
        thread = uid()
        await turn(store, ScriptedLLM(), "hi", thread=thread, msg_id="u1")
    assert not (tmp_path / "pgdata").exists()
    assert postmaster_running(pg.pgdata), "an external server is never stopped by the store"
    async with open_store(pg.url) as store:
        state = await build_graph(store.checkpointer).aget_state(
            {"configurable": {"thread_id": thread}}
        )
        assert state.values["messages"]


async def test_embedded_default_lives_under_voco_home(
    home: Path, monkeypatch: pytest.MonkeyPatch, no_env_url: None
) -> None:
    monkeypatch.setenv("VOCO_HOME", str(home))
    async with open_store() as store:
        assert store.embedded is not None
        assert store.embedded.pgdata == (home / "pgdata").resolve()
        assert (home / "pgdata" / "PG_VERSION").exists()
    assert not postmaster_running(home / "pgdata")


async def test_two_stores_on_one_data_dir_share_the_server(home: Path, no_env_url: None) -> None:
    pgdata = home / "pgdata"
    async with open_store(pgdata=pgdata) as a:
        async with open_store(pgdata=pgdata) as b:
            assert a.url == b.url
        assert postmaster_running(pgdata), "the first store still needs it"
        async with a.pool.connection() as conn:
            await conn.execute("select 1")
    assert not postmaster_running(pgdata)


async def test_server_left_by_a_killed_engine_is_reused_then_stopped(
    home: Path, no_env_url: None
) -> None:
    """A crashed engine leaves postgres running and its PID registered; the next
    engine attaches to that server, sees the data, and stops it on exit."""
    pgdata = home / "pgdata"
    thread = uid()
    crash = textwrap.dedent(
        f"""
        import asyncio, os
        from pathlib import Path
        from voco.store import open_store

        async def main():
            async with open_store(pgdata=Path({str(pgdata)!r})) as store:
                async with store.pool.connection() as conn:
                    await conn.execute("create table public.crash_marker (t text)")
                    await conn.execute("insert into public.crash_marker values (%s)", ({thread!r},))
                os._exit(9)  # no cleanup, no atexit: like SIGKILL

        asyncio.run(main())
        """
    )
    env = {k: v for k, v in os.environ.items() if k != ENV_URL}
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", crash], env=env, capture_output=True, timeout=60
    )
    assert proc.returncode == 9, proc.stderr.decode()
    assert postmaster_running(pgdata)
    async with open_store(pgdata=pgdata) as store:
        assert store.embedded is not None
        async with store.pool.connection() as conn:
            cur = await conn.execute("select t from public.crash_marker")
            assert await cur.fetchall() == [{"t": thread}]
    assert not postmaster_running(pgdata)
