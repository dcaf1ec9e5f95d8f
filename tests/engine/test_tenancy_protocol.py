"""Tenancy over the real protocol: ownership and projects enforced by the
tenant store (RLS on Postgres), one run per thread, turns recorded."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from tests.fakes import ScriptedLLM
from tests.store.pgtools import fresh_database
from voco.local.engine_client import EngineClient, SessionRefused
from voco.protocol import messages as m
from voco.providers.base import ChatMessage, LLMEvent, ToolSpec
from voco.store import open_store
from voco.store.audit_db import verify_database
from voco.store.embedded import EmbeddedPostgres

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def store(pg: EmbeddedPostgres) -> AsyncIterator[Any]:
    async with open_store(fresh_database(pg.url)) as s:
        yield s


def user() -> str:
    return str(uuid.uuid4())


async def connect(url: str, token: str, **start: Any) -> EngineClient:
    return await EngineClient.connect(url, m.SessionStart(token=token, **start))


async def say(c: EngineClient, text: str) -> m.AgentDone:
    """Send a typed turn and wait for *its* ``agent.done`` (a reply still playing
    when the text arrives is cut first and gets an ``agent.done`` of its own)."""
    await c.send(m.TextInput(text=text))
    turn_id: str | None = None
    while True:
        r = await c.recv()
        if isinstance(r.message, m.TranscriptFinal) and r.message.text == text:
            turn_id = r.message.turn_id
        if isinstance(r.message, m.AgentDone) and r.message.turn_id == turn_id:
            return r.message


async def test_another_users_thread_is_4403_and_unknown_is_a_new_one(
    engine_factory: Any, store: Any
) -> None:
    alice, bob = user(), user()
    async with engine_factory(
        ScriptedLLM(), checkpointer=store.checkpointer, tenants=store.tenants
    ) as eng:
        a = await connect(eng.url, eng.token(alice))
        await say(a, "hello")
        await a.close()
        thread = a.ready.thread_id
        with pytest.raises(SessionRefused) as e:
            await connect(eng.url, eng.token(bob), thread_id=thread)
        assert e.value.code == 4403 and e.value.error is not None
        assert e.value.error.message == "not your thread"
        # an id nobody has: a new thread and a non-fatal notice
        c = await EngineClient.connect(
            eng.url, m.SessionStart(token=eng.token(bob), thread_id="no-such-thread")
        )
        assert c.ready.thread_id != "no-such-thread"
        notice = (await c.recv()).message
        assert isinstance(notice, m.Error) and notice.code == "thread_not_found"
        assert not notice.fatal
        await c.close()
        # alice still resumes her own
        again = await connect(eng.url, eng.token(alice), thread_id=thread)
        assert again.ready.thread_id == thread
        await again.close()


@pytest.mark.parametrize("backend", ["memory", "postgres"])
async def test_project_scoped_token_cannot_open_another_projects_thread(
    engine_factory: Any, store: Any, backend: str
) -> None:
    alice = user()
    kw = {"checkpointer": store.checkpointer, "tenants": store.tenants}
    async with engine_factory(ScriptedLLM(), **(kw if backend == "postgres" else {})) as eng:
        a = await connect(eng.url, eng.token(alice), project_id="p1")
        await say(a, "in project one")
        await a.close()
        thread = a.ready.thread_id
        with pytest.raises(SessionRefused) as e:
            await connect(
                eng.url, eng.token(alice, project_id="p2"), project_id="p2", thread_id=thread
            )
        assert e.value.code == 4403
        ok = await connect(
            eng.url, eng.token(alice, project_id="p1"), project_id="p1", thread_id=thread
        )
        assert ok.ready.thread_id == thread
        await ok.close()


async def test_turns_and_audit_rows_are_written(engine_factory: Any, store: Any) -> None:
    alice = user()
    async with engine_factory(
        ScriptedLLM(), checkpointer=store.checkpointer, tenants=store.tenants
    ) as eng:
        a = await connect(eng.url, eng.token(alice))
        done = await say(a, "write this down")
        while (await a.recv()).message != m.State(value="listening"):
            pass  # played out: a turn is recorded when its audio has ended
        await a.close()
        await asyncio.sleep(0)  # let the handler's release run after the close
    await store.tenants.flush()
    with psycopg.connect(store.url) as c:
        rows = c.execute(
            "select transcript, reply, interrupted, model from public.turns where thread_id = %s",
            (a.ready.thread_id,),
        ).fetchall()
        assert rows == [("write this down", done.text, False, done.model)]
        kinds = [
            r[0]
            for r in c.execute(
                "select e.kind from public.audit_events e join public.org_members m"
                " on m.org_id = e.org_id where m.user_id = %s order by e.seq",
                (alice,),
            ).fetchall()
        ]
    # member.added: the org_members trigger audits the owner row of the personal org
    assert kinds[:5] == ["member.added", "org.created", "project.created", "session.start", "turn"]
    assert (await verify_database(store.url)).ok


class GatedLLM(ScriptedLLM):
    """The first model call waits for ``gate``; ``second`` is set when a second
    call starts (which the one-run-per-thread rule must prevent meanwhile)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.second = asyncio.Event()
        self.gate = asyncio.Event()
        self.n = 0

    async def stream(
        self, *, system: str, messages: list[ChatMessage], tools: list[ToolSpec], tier: str
    ) -> AsyncIterator[LLMEvent]:
        self.n += 1
        if self.n == 1:
            self.entered.set()
            await self.gate.wait()
        else:
            self.second.set()
        async for ev in super().stream(system=system, messages=messages, tools=tools, tier=tier):
            yield ev


@pytest.mark.parametrize("backend", ["memory", "postgres"])
async def test_two_sessions_on_one_thread_lose_no_finished_turn(
    engine_factory: Any, store: Any, backend: str
) -> None:
    alice = user()
    llm = GatedLLM()
    kw = {"checkpointer": store.checkpointer, "tenants": store.tenants}
    async with engine_factory(llm, **(kw if backend == "postgres" else {})) as eng:
        tenants = eng.runtime.tenants
        a = await connect(eng.url, eng.token(alice))
        thread = a.ready.thread_id
        b = await connect(eng.url, eng.token(alice), thread_id=thread)
        await a.send(m.TextInput(text="one"))
        await llm.entered.wait()
        await b.send(m.TextInput(text="two"))
        # either b's run queued behind a's (the fix) or it ran alongside (the bug)
        waits = [asyncio.ensure_future(e.wait()) for e in (tenants.queue.waited, llm.second)]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        llm.gate.set()
        for c in (a, b):
            while not isinstance((await c.recv()).message, m.AgentDone):
                pass
        for c in (a, b):  # both replies played out: "three" cuts nothing
            while (await c.recv()).message != m.State(value="listening"):
                pass
        await say(a, "three")
        state = await eng.runtime.graph.aget_state({"configurable": {"thread_id": thread}})
        await a.close()
        await b.close()
    said = [(x["role"], x["content"]) for x in state.values["messages"]]
    assert [t for r, t in said if r == "user"] == ["one", "two", "three"]
    replies = [t for r, t in said if r == "assistant"]
    assert replies == ["You said: one", "You said: two", "You said: three"]


async def test_a_session_start_while_the_database_is_unreachable_is_4503_with_a_retry(
    engine_factory: Any,
) -> None:
    """The engine runs, its database does not answer (down, a network cut):
    the client is told so with the retryable close code its reconnect loop
    honours, not an internal error."""
    from psycopg_pool import AsyncConnectionPool

    from voco.store.pg_tenants import PostgresTenantStore

    pool: Any = AsyncConnectionPool("postgresql://voco@127.0.0.1:9/none", open=False, timeout=0.5)
    await pool.open(wait=False)
    try:
        async with engine_factory(ScriptedLLM(), tenants=PostgresTenantStore(pool)) as eng:
            with pytest.raises(SessionRefused) as e:
                await connect(eng.url, eng.token(user()))
    finally:
        await pool.close()
    assert e.value.code == 4503 and e.value.error is not None
    assert e.value.error.code == "at_capacity" and e.value.error.retry_after_ms == 2000
    assert "unavailable" in e.value.error.message
