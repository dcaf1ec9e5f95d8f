"""Who owns which conversation thread.

A ``thread_id`` is a capability only together with its owner: resuming someone
else's thread is refused (close 4403). In-memory here; the Postgres store
(issue "Agent brain") implements the same interface so ownership survives a
restart alongside the checkpoints.
"""

from __future__ import annotations

import abc
import asyncio


class ThreadStore(abc.ABC):
    @abc.abstractmethod
    async def owner(self, thread_id: str) -> str | None:
        """The user owning ``thread_id``, or None if it never existed."""

    @abc.abstractmethod
    async def create(self, thread_id: str, user_id: str, project_id: str) -> None: ...


class InMemoryThreadStore(ThreadStore):
    def __init__(self) -> None:
        self._owners: dict[str, str] = {}
        self._lock = asyncio.Lock()

    async def owner(self, thread_id: str) -> str | None:
        return self._owners.get(thread_id)

    async def create(self, thread_id: str, user_id: str, project_id: str) -> None:
        async with self._lock:
            self._owners.setdefault(thread_id, user_id)

    def forget(self, thread_id: str) -> None:
        """The thread's checkpoints were evicted (memory mode): it no longer exists."""
        self._owners.pop(thread_id, None)
