"""``--database memory`` is bounded: idle threads are evicted least recently
used first, a held thread never is, and each thread keeps only its newest
checkpoints — while every conversation still reads back whole."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.engine.test_protocol_conformance import started, turn
from tests.fakes import ScriptedLLM
from voco.auth.claims import Principal
from voco.engine.memory_store import BoundedMemorySaver
from voco.store.tenancy import MemoryTenantStore, SessionRefused

pytestmark = pytest.mark.timeout(120)


async def until(cond: Callable[[], bool]) -> None:
    """Until ``cond()`` holds (the module's timeout bounds a hang)."""
    while not cond():  # noqa: ASYNC110 (store state has no event)
        await asyncio.sleep(0.01)


def bounded(n: int) -> tuple[BoundedMemorySaver, MemoryTenantStore]:
    threads = MemoryTenantStore()
    return BoundedMemorySaver(n, on_evict=threads.forget), threads


async def one_turn_thread(eng: Any, saver: BoundedMemorySaver, text: str) -> str:
    peer, ready = await started(eng.url, eng.token())
    await turn(peer, text)
    await peer.close()
    await until(lambda: ready["thread_id"] not in saver._pins)
    return str(ready["thread_id"])


async def test_idle_threads_beyond_the_bound_are_evicted_and_said_gone(engine_factory) -> None:
    saver, threads = bounded(2)
    async with engine_factory(ScriptedLLM(), checkpointer=saver, tenants=threads) as eng:
        eng.runtime.retention = saver
        ids = [await one_turn_thread(eng, saver, f"turn {i}") for i in range(4)]
        assert saver.threads == 2 and saver.evicted == 2
        assert set(saver.storage) == set(ids[2:])  # the least recently used went
        peer, _ = await started(eng.url, eng.token(), thread_id=ids[0])
        notice = (await peer.until_type("error"))[-1]
        assert notice["code"] == "thread_not_found" and not notice["fatal"]
        await peer.close()
        peer, _ = await started(eng.url, eng.token(), thread_id=ids[3])  # kept: resumes
        r = await turn(peer, "again")
        assert r.one("agent.done")["text"] == "You said: again"
        state = await eng.runtime.graph.aget_state({"configurable": {"thread_id": ids[3]}})
        assert [m["content"] for m in state.values["messages"] if m["role"] == "user"] == [
            "turn 3",
            "again",
        ]
        await peer.close()


async def test_a_thread_held_by_a_session_is_never_evicted(engine_factory) -> None:
    saver, threads = bounded(1)
    async with engine_factory(ScriptedLLM(), checkpointer=saver, tenants=threads) as eng:
        eng.runtime.retention = saver
        holder, ready = await started(eng.url, eng.token())
        await turn(holder, "keep me")
        for i in range(3):
            await one_turn_thread(eng, saver, f"other {i}")
        assert ready["thread_id"] in saver.storage  # the oldest, but held
        assert saver.threads <= 2  # the bound holds for everything idle
        r = await turn(holder, "still here?")
        assert r.one("agent.done")["text"] == "You said: still here?"
        await holder.close()


async def test_a_long_thread_keeps_few_checkpoints_and_all_its_messages(engine_factory) -> None:
    saver, threads = bounded(10)
    async with engine_factory(ScriptedLLM(), checkpointer=saver, tenants=threads) as eng:
        eng.runtime.retention = saver
        peer, ready = await started(eng.url, eng.token())
        tid = ready["thread_id"]
        for i in range(6):
            await turn(peer, f"n{i}", barrier=False)
        blobs_after_6 = sum(1 for k in saver.blobs if k[0] == tid)
        for i in range(6, 9):
            await turn(peer, f"n{i}", barrier=False)
        assert len(saver.storage[tid][""]) <= saver.keep
        assert sum(1 for k in saver.blobs if k[0] == tid) <= blobs_after_6  # not growing
        state = await eng.runtime.graph.aget_state({"configurable": {"thread_id": tid}})
        users = [m["content"] for m in state.values["messages"] if m["role"] == "user"]
        assert users == [f"n{i}" for i in range(9)]
        await peer.close()


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError):
        BoundedMemorySaver(0)


async def test_the_session_count_per_user_holds_only_users_with_sessions() -> None:
    """Count-based: however many users come and go, the per-user session
    counter holds only the ones with a session open (it kept a 0 per user
    ever seen)."""
    store = MemoryTenantStore(max_sessions=2)
    for i in range(200):
        p = Principal(user_id=f"user-{i}", project_id=None, claims={})
        grants = [
            await store.open_session(p, project_id="p", thread_id=None, session_id=f"s{i}{k}")
            for k in range(2)
        ]
        with pytest.raises(SessionRefused):  # refused: no slot taken, none to give back
            await store.open_session(p, project_id="p", thread_id=None, session_id="x")
        assert store.active[p.user_id] == 2
        for g in grants:
            await g.release()
            await g.release()  # twice: once counted
    assert len(store.active) == 0
