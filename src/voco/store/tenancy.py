"""What the engine asks of tenant data, and the in-memory implementation.

The engine touches tenant data in exactly three places, so this interface is
small: :meth:`TenantStore.open_session` (first contact, project, thread
ownership, the per-user session cap — every refusal a
:class:`SessionRefused` carrying the protocol's close code), and on the
returned :class:`SessionGrant` :meth:`~SessionGrant.run_lock` (one graph run
per thread at a time), :meth:`~SessionGrant.record_turn` (a finished or
interrupted turn with its tool actions and audit rows) and
:meth:`~SessionGrant.release`. The Postgres implementation
(:mod:`voco.store.pg_tenants`) enforces ownership with row-level security;
:class:`MemoryTenantStore` (``--database memory``, tests) keeps the same rules
in dictionaries.

``record_turn`` never blocks its caller: writing happens on a task the store
owns (and drains on :meth:`TenantStore.aclose`), so no database round trip
sits in the WebSocket reader path or delays ``agent.done``.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import json
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

from voco.auth.tokens import Principal

MAX_SESSIONS_PER_USER = 16
SYSTEM_ORG = "00000000-0000-0000-0000-000000000000"


class SessionRefused(Exception):
    """``session.start`` is refused: close ``code`` with ``error``/``message``
    (and ``retry_after_ms`` when trying again later is the remedy)."""

    def __init__(
        self, code: int, error: str, message: str, retry_after_ms: int | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.error, self.message = code, error, message
        self.retry_after_ms = retry_after_ms


def digest(value: Any) -> tuple[int, str]:
    """(size in bytes, SHA-256 hex) of a JSON value — what the trail keeps
    instead of file contents, command output or tokens."""
    data = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )
    return len(data), hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ToolActionRecord:
    request_id: str
    action: str
    decision: str  # auto | approved | rejected | unanswered
    status: str  # success | error | rejected
    error_code: str | None
    payload_bytes: int
    payload_sha256: str
    result_bytes: int | None = None
    result_sha256: str | None = None


@dataclass(frozen=True)
class TurnRecord:
    turn_id: str
    response_id: str
    transcript: str
    reply: str
    interrupted: bool
    model: str
    heard_text: str | None = None
    timings: dict[str, int] = field(default_factory=dict)
    tool_actions: tuple[ToolActionRecord, ...] = ()
    # usage, in whole units (voco.billing.meters): written with the turn
    user_speech_ms: int = 0
    assistant_audio_ms: int = 0  # audio actually sent to the client
    stt_audio_ms: int = 0
    # model -> (input, output) tokens, summed over the turn's model calls as
    # the providers report them (Anthropic always; OpenAI-compatible servers
    # only when they stream usage; command mode none): no row for a zero
    llm_tokens: dict[str, tuple[int, int]] = field(default_factory=dict)


def as_uuid(user_id: str) -> str | None:
    try:
        return str(uuid.UUID(user_id))
    except ValueError:
        return None


class SessionGrant(abc.ABC):
    """An admitted session: its thread, and the slot it holds until released."""

    def __init__(self, *, thread_id: str, user_id: str, org_id: str | None, notice: str | None):
        self.thread_id = thread_id
        self.user_id = user_id
        self.org_id = org_id
        # set when the requested thread did not exist (non-fatal thread_not_found)
        self.notice = notice

    @abc.abstractmethod
    def run_lock(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Held around a graph run: runs on one thread queue, never overlap."""

    @abc.abstractmethod
    def record_turn(self, record: TurnRecord) -> None:
        """Store a finished or interrupted turn (in the background, in order)."""

    @abc.abstractmethod
    async def release(self) -> None:
        """The session ended: give its slot back (idempotent)."""


class TenantStore(abc.ABC):
    max_sessions: int = MAX_SESSIONS_PER_USER

    @abc.abstractmethod
    async def open_session(
        self, principal: Principal, *, project_id: str, thread_id: str | None, session_id: str
    ) -> SessionGrant:
        """Admit a session or raise :class:`SessionRefused`."""

    async def record_auth_failure(self, reason: str) -> None:  # noqa: B027 (optional hook)
        """A token did not verify (no tenant is known); stores without a
        trail for it ignore it."""

    async def flush(self) -> None:  # noqa: B027 (optional hook)
        """Wait until every scheduled write has been stored (memory: at once)."""

    async def aclose(self) -> None:
        await self.flush()


class Writer:
    """Background writes, in order per session, drained on close."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._tail: dict[str, asyncio.Task[None]] = {}

    def schedule(self, key: str, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        prev = self._tail.get(key)

        async def after() -> None:
            if prev is not None:
                with contextlib.suppress(BaseException):
                    await prev
            await coro

        task = asyncio.ensure_future(after())
        self._tasks.add(task)
        self._tail[key] = task

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if self._tail.get(key) is t:
                del self._tail[key]

        task.add_done_callback(done)
        return task

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


class ThreadQueue:
    """In-process half of the one-run-per-thread rule: a lock per thread that
    exists only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self.waits = 0  # runs that had to queue behind another (instrumentation)
        self.waited = asyncio.Event()

    @contextlib.asynccontextmanager
    async def hold(self, thread_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(thread_id, (asyncio.Lock(), 0))
        self._locks[thread_id] = (lock, users + 1)
        try:
            if lock.locked():
                self.waits += 1
                self.waited.set()
            async with lock:
                yield
        finally:
            lock, users = self._locks[thread_id]
            if users == 1:
                del self._locks[thread_id]
            else:
                self._locks[thread_id] = (lock, users - 1)


@dataclass
class StoredThread:
    owner: str
    project_id: str
    # the recent turns only: this store is for tests and demos, not for keeping
    turns: deque[TurnRecord] = field(default_factory=lambda: deque(maxlen=100))


class MemoryTenantStore(TenantStore):
    """Same rules as Postgres, kept in this process (nothing survives it)."""

    def __init__(self, max_sessions: int = MAX_SESSIONS_PER_USER) -> None:
        self.max_sessions = max_sessions
        self.threads: dict[str, StoredThread] = {}
        self.active: Counter[str] = Counter()
        # (user, kind, detail), the recent ones: this store is for tests and demos
        self.audit: deque[tuple[str, str, dict[str, Any]]] = deque(maxlen=10_000)
        self.queue = ThreadQueue()

    async def open_session(
        self, principal: Principal, *, project_id: str, thread_id: str | None, session_id: str
    ) -> SessionGrant:
        user = principal.user_id
        # reserve before any await, so concurrent starts cannot all pass the check
        if self.active[user] >= self.max_sessions:
            self.audit.append((user, "session.refused", {"reason": "rate_limited"}))
            raise SessionRefused(
                4429, "rate_limited", f"at most {self.max_sessions} concurrent sessions per user"
            )
        self.active[user] += 1
        try:
            return self._admit(principal, project_id, thread_id, session_id)
        except BaseException:
            self._store_release(user)
            raise

    def _store_release(self, user: str) -> None:
        """One of ``user``'s sessions ended: a user with none left has no entry
        (a count of 0 kept per user ever seen grew with every new user)."""
        self.active[user] -= 1
        if self.active[user] <= 0:
            del self.active[user]

    def forget(self, thread_id: str) -> None:
        """Memory mode evicted the thread's checkpoints: it no longer exists, so a
        resume says ``thread_not_found`` instead of silently starting empty."""
        self.threads.pop(thread_id, None)

    def _admit(
        self, principal: Principal, project_id: str, thread_id: str | None, session_id: str
    ) -> SessionGrant:
        user = principal.user_id
        notice = None
        if thread_id:
            found = self.threads.get(thread_id)
            if found is None:
                notice = f"thread {thread_id!r} does not exist; started a new one"
                thread_id = None
            elif found.owner != user:
                self.audit.append((user, "session.refused", {"reason": "not_owner"}))
                raise SessionRefused(4403, "forbidden", "not your thread")
            elif found.project_id != project_id:
                self.audit.append((user, "session.refused", {"reason": "other_project"}))
                raise SessionRefused(4403, "forbidden", "this thread belongs to another project")
        if not thread_id:
            thread_id = uuid.uuid4().hex
            self.threads[thread_id] = StoredThread(user, project_id)
        self.audit.append((user, "session.start", {"session": session_id, "thread": thread_id}))
        return _MemoryGrant(self, thread_id=thread_id, user_id=user, notice=notice)


class _MemoryGrant(SessionGrant):
    def __init__(self, store: MemoryTenantStore, **kw: Any) -> None:
        super().__init__(org_id=None, **kw)
        self._store = store
        self._released = False

    def run_lock(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._store.queue.hold(self.thread_id)

    def record_turn(self, record: TurnRecord) -> None:
        self._store.threads[self.thread_id].turns.append(record)
        self._store.audit.append((self.user_id, "turn", {"turn": record.turn_id}))

    async def release(self) -> None:
        if not self._released:
            self._released = True
            self._store._store_release(self.user_id)
            self._store.audit.append((self.user_id, "session.end", {"thread": self.thread_id}))
