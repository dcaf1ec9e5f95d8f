"""A turn cut by a drain is in the thread once after the client re-sends it.

The bug this pins (issue 11 §2): an engine drained (SIGTERM) while a typed
turn was still thinking left that turn in the thread's checkpoint as a lone
user message; the client (``ResumingSession`` — ``voco talk``, ``voco local``
and the page's relay all use it) reconnects, sees a turn with no reply and
re-sends it, so the next model call saw the user's words twice.

Everything is real but the models: the engine the ``voco serve`` SIGTERM path
runs (``EngineServer``), its drain, the real client, and the thread store —
the in-memory saver shared by both engines, and the embedded Postgres
(checkpoints and tenants), which is what engines share in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import ScriptedLLM
from tests.local.ui.test_relay_engine_restart import Store, StuckLLM, engine
from voco.agent.graph import build_graph
from voco.audio.vad import SileroVAD
from voco.auth.tokens import TokenAuthority
from voco.local.engine_client import Received
from voco.local.resuming import ResumingSession
from voco.protocol import messages as m
from voco.serving import free_port
from voco.store import open_store

pytestmark = pytest.mark.timeout(180)

ALICE = "0a11ce00-0000-4000-8000-000000000001"  # the Postgres store keys users by UUID
ASKED = "what is in main"


@dataclass
class PgStore:
    """The same three things as the memory ``Store``, from the embedded Postgres."""

    saver: Any
    tenants: Any
    auth: TokenAuthority


@contextlib.asynccontextmanager
async def thread_store(kind: str) -> AsyncIterator[Any]:
    if kind == "memory":
        yield Store()
        return
    d = Path(tempfile.mkdtemp(prefix="voco-pg-"))
    try:
        async with open_store(pgdata=d / "pgdata") as pg:
            yield PgStore(pg.checkpointer, pg.tenants, TokenAuthority())
    finally:
        shutil.rmtree(d, ignore_errors=True)


async def read_all(session: ResumingSession, out: list[Received], done: asyncio.Event) -> None:
    """The client's reader: ``recv`` is where a loss is noticed and resumed."""
    while True:
        item = await session.recv()
        out.append(item)
        if isinstance(item.message, m.AgentDone) and not item.message.interrupted:
            done.set()


@pytest.mark.parametrize("kind", ["memory", "postgres"])
async def test_a_turn_cut_by_the_drain_is_in_the_thread_once_after_the_resend(
    kind: str, silero: SileroVAD, whisper: Any, piper: Any
) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/v1/session"
    stuck, answering = StuckLLM(), ScriptedLLM()
    async with thread_store(kind) as store:
        token = store.auth.issue(ALICE)
        client = ResumingSession(url, lambda tid: m.SessionStart(token=token, thread_id=tid))
        seen: list[Received] = []
        answered = asyncio.Event()
        async with engine(port, store, stuck, silero, whisper, piper, drain_s=0.5):
            await client.open()
            thread = client.thread_id
            reader = asyncio.create_task(read_all(client, seen, answered))
            await client.send_text(ASKED)
            await stuck.started.wait()  # thinking when the drain starts: it will be cut
        # drained: the turn was cut, the session closed 1012; the client retries
        try:
            async with engine(port, store, answering, silero, whisper, piper, drain_s=5):
                await asyncio.wait_for(answered.wait(), 60)
                assert client.thread_id == thread and client.resent == 1
                graph = build_graph(store.saver)
                state = await graph.aget_state({"configurable": {"thread_id": thread}})
                await client.close()
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
    # the model answering the re-sent turn saw the user's words once
    assert len(answering.calls) == 1
    assert [x.content for x in answering.calls[0]].count(ASKED) == 1
    # and the thread holds that user message once, answered once
    msgs = state.values["messages"]
    assert [x["content"] for x in msgs if x["role"] == "user"] == [ASKED]
    assert [x["content"] for x in msgs if x["role"] == "assistant"] == [f"You said: {ASKED}"]
    dones = [r.message for r in seen if isinstance(r.message, m.AgentDone)]
    assert [d.text for d in dones if not d.interrupted] == [f"You said: {ASKED}"]


def _msg(role: str, content: str, msg_id: str) -> dict[str, Any]:
    return {"id": msg_id, "role": role, "content": content}


def test_the_rollback_takes_only_the_cut_turn_out() -> None:
    from voco.agent.state import merge_messages
    from voco.engine.ending import rollback_updates
    from voco.engine.record import Turn

    thread = [
        _msg("user", "earlier", "u0"),
        _msg("assistant", "an earlier reply", "a0"),
        _msg("user", ASKED, "u1"),  # the cut turn: its user message and a tool step
        {"id": "a1", "role": "assistant", "content": "", "tool_calls": [{"id": "c1"}]},
        {"id": "t1", "role": "tool", "content": "{}", "tool_call_id": "c1"},
        _msg("user", "another session's later turn", "u2"),
        _msg("assistant", "its reply", "a2"),
    ]
    updates = rollback_updates(thread, Turn("turn", "u1", ASKED))
    assert [u["id"] for u in updates] == ["u1", "a1", "t1"]
    assert [x["id"] for x in merge_messages(thread, updates)] == ["u0", "a0", "u2", "a2"]
    # a turn the run never stored (cut before the checkpoint) removes nothing
    assert rollback_updates(thread, Turn("turn", "nope", ASKED)) == []
