"""The in-memory tenant store keeps the Postgres store's rules."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from voco.auth.tokens import Principal
from voco.store.tenancy import MemoryTenantStore, SessionRefused


def who(user: str) -> Principal:
    return Principal(user, None, {"sub": user})


async def test_100_simultaneous_starts_admit_exactly_16() -> None:
    store = MemoryTenantStore()
    results = await asyncio.gather(
        *(
            store.open_session(who("u"), project_id="p", thread_id=None, session_id=str(i))
            for i in range(100)
        ),
        return_exceptions=True,
    )
    admitted = [r for r in results if not isinstance(r, BaseException)]
    assert len(admitted) == 16
    assert all(
        isinstance(r, SessionRefused) and r.code == 4429 for r in results if r not in admitted
    )
    for g in admitted:
        await g.release()
    assert store.active["u"] == 0


async def test_ownership_and_projects() -> None:
    store = MemoryTenantStore()
    a = await store.open_session(who("a"), project_id="p", thread_id=None, session_id="1")
    with pytest.raises(SessionRefused) as e:
        await store.open_session(who("b"), project_id="p", thread_id=a.thread_id, session_id="2")
    assert e.value.code == 4403
    with pytest.raises(SessionRefused) as e:
        await store.open_session(who("a"), project_id="q", thread_id=a.thread_id, session_id="3")
    assert e.value.code == 4403
    new = await store.open_session(
        who("b"), project_id="p", thread_id=uuid.uuid4().hex, session_id="4"
    )
    assert new.notice is not None and "does not exist" in new.notice
    # refusals gave their slots back
    assert store.active["a"] == 1 and store.active["b"] == 1
