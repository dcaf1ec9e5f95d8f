"""Resuming a conversation over the real protocol, across an engine restart,
with the real Postgres store (issue: durable state)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.fakes import ScriptedLLM
from voco.local.engine_client import EngineClient, SessionRefused
from voco.protocol import messages as m
from voco.store import open_store

pytestmark = pytest.mark.timeout(120)

# the Postgres store keys users by UUID (Supabase `sub`)
ALICE = "0a11ce00-0000-4000-8000-000000000001"
MALLORY = "3a11047e-0000-4000-8000-000000000002"


@pytest.fixture
def pgdata():
    d = Path(tempfile.mkdtemp(prefix="voco-pg-"))
    yield d / "pgdata"
    shutil.rmtree(d, ignore_errors=True)


async def one_turn(url: str, token: str, text: str, thread_id: str | None = None):
    c = await EngineClient.connect(url, m.SessionStart(token=token, thread_id=thread_id))
    notices = []
    await c.send(m.TextInput(text=text))
    while True:
        r = await c.recv()
        if isinstance(r.message, m.Error):
            notices.append(r.message)
        if isinstance(r.message, m.AgentDone):
            break
    await c.close()
    return c.ready, notices


async def test_thread_survives_an_engine_restart(engine_factory, pgdata):
    async with open_store(pgdata=pgdata) as store:
        llm1 = ScriptedLLM()
        async with engine_factory(
            llm1, checkpointer=store.checkpointer, tenants=store.tenants
        ) as eng:
            token = eng.token(ALICE)
            ready, _ = await one_turn(eng.url, token, "remember the word pelican")
            thread = ready.thread_id
    # a new store and a new engine: nothing survives but the database files
    async with open_store(pgdata=pgdata) as store:
        llm2 = ScriptedLLM()
        async with engine_factory(
            llm2, checkpointer=store.checkpointer, tenants=store.tenants
        ) as eng:
            ready, notices = await one_turn(eng.url, eng.token(ALICE), "what word?", thread)
            assert ready.thread_id == thread and not notices
            seen = [x.content for x in llm2.calls[-1]]
            assert seen[0] == "remember the word pelican"
            assert seen[1] == "You said: remember the word pelican"
            assert seen[-1] == "what word?"
            with pytest.raises(SessionRefused) as e:
                await one_turn(eng.url, eng.token(MALLORY), "hi", thread)
            assert e.value.code == 4403
