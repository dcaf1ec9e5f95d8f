"""A turn's record as one statement (store/turn_write.py): the same rows, the
audit chain in order, all-or-nothing under RLS, and one round trip."""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.store.pgtools import TracedConnection, fresh_database
from voco.auth.tokens import Principal
from voco.store import open_store
from voco.store.audit_db import verify_database
from voco.store.embedded import EmbeddedPostgres
from voco.store.tenancy import ToolActionRecord, TurnRecord
from voco.store.turn_write import record_params

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def store(pg: EmbeddedPostgres) -> AsyncIterator[Any]:
    async with open_store(fresh_database(pg.url), connection_class=TracedConnection) as s:
        yield s


def action(n: int, **kw: Any) -> ToolActionRecord:
    return ToolActionRecord(
        f"req{n}", "read_file", "auto", "success", kw.get("code"), 10 + n, f"{n:x}" * 64,
        kw.get("result_bytes"), kw.get("result_sha256"),
    )  # fmt: skip


def record(turn: str, *actions: ToolActionRecord) -> TurnRecord:
    return TurnRecord(
        turn, "resp", "hi", "hello", False, "m", heard_text=None, timings={"llm_ms": 5},
        tool_actions=actions, user_speech_ms=1500, assistant_audio_ms=3200,
        llm_tokens={"m": (800, 40)},
    )  # fmt: skip


async def open_grant(store: Any) -> Any:
    user = str(uuid.uuid4())
    p = Principal(user, None, {"sub": user, "aud": "authenticated"})
    return await store.tenants.open_session(p, project_id="p", thread_id=None, session_id="s")


async def rows(store: Any, sql: str, *params: Any) -> list[dict[str, Any]]:
    async with store.pool.connection() as conn:
        cur = await conn.execute(sql, params)
        return list(await cur.fetchall())


async def test_tool_actions_usage_and_audit_rows_in_order(store: Any) -> None:
    g = await open_grant(store)
    acts = (action(1), action(2, code="E_X"), action(3, result_bytes=7, result_sha256="c" * 64))
    g.record_turn(record("t1", *acts))
    g.record_turn(record("t2"))
    await store.tenants.flush()
    tools = await rows(
        store,
        "select turn_id, request_id, error_code, payload_bytes, result_bytes, result_sha256,"
        " user_id::text as user_id from public.tool_actions where thread_id = %s order by id",
        g.thread_id,
    )
    assert [(t["request_id"], t["error_code"], t["payload_bytes"]) for t in tools] == [
        ("req1", None, 11), ("req2", "E_X", 12), ("req3", None, 13),
    ]  # fmt: skip
    assert tools[2]["result_bytes"] == 7 and tools[2]["result_sha256"] == "c" * 64
    assert {t["user_id"] for t in tools} == {g.user_id}  # auth.uid(), not a parameter
    turns = await rows(
        store, "select turn_id, timings from public.turns where thread_id = %s order by id",
        g.thread_id,
    )  # fmt: skip
    assert [(t["turn_id"], t["timings"]) for t in turns] == [
        ("t1", {"llm_ms": 5}), ("t2", {"llm_ms": 5}),
    ]  # fmt: skip
    audit = await rows(
        store,
        "select kind, subject, detail from public.audit_events where org_id = %s order by seq",
        g.org_id,
    )
    tail = [(a["kind"], a["subject"]) for a in audit if a["kind"] in ("tool.action", "turn")]
    assert tail == [
        ("tool.action", "req1"), ("tool.action", "req2"), ("tool.action", "req3"),
        ("turn", "t1"), ("turn", "t2"),
    ]  # fmt: skip
    turn_detail = next(a["detail"] for a in audit if a["subject"] == "t1")
    assert turn_detail == {
        "thread": g.thread_id, "session": "s", "interrupted": False, "model": "m", "tools": 3
    }  # fmt: skip
    usage = await rows(
        store, "select turn_id, meter, value from public.usage_events order by turn_id, meter"
    )
    assert [(u["turn_id"], u["meter"], u["value"]) for u in usage if u["turn_id"] == "t1"] == [
        ("t1", "voco_assistant_audio_ms", 3200), ("t1", "voco_llm_input_tokens", 800),
        ("t1", "voco_llm_output_tokens", 40), ("t1", "voco_tool_actions", 3),
        ("t1", "voco_user_speech_ms", 1500),
    ]  # fmt: skip
    await g.release()
    await store.tenants.flush()
    assert (await verify_database(store.url)).ok


async def test_a_retried_record_bills_nothing_twice(store: Any) -> None:
    g = await open_grant(store)
    g.record_turn(record("t1"))
    g.record_turn(record("t1"))
    await store.tenants.flush()
    expected = json.loads(
        record_params(record("t1"), org="o", thread_id="x", session_id="s")["usage"]
    )
    assert len(expected) == 4  # speech, audio, tokens in and out
    ids = await rows(store, "select id::text as id from public.usage_events order by id")
    assert [r["id"] for r in ids] == sorted(e["id"] for e in expected)
    # the turn row itself is recorded twice (turns have no natural key), as before
    assert await rows(store, "select count(*) as n from public.turns") == [{"n": 2}]


async def test_a_refused_row_rolls_back_the_whole_record(store: Any) -> None:
    """A forged org (another tenant's) fails RLS on the turn row: no tool
    action, usage or audit row of that turn exists anywhere, and the failure is
    logged (the conversation is still in the checkpoint)."""
    victim = await open_grant(store)
    g = await open_grant(store)
    g.org_id = victim.org_id  # the engine bug RLS must catch
    before = await rows(store, "select count(*) as n from public.audit_events")
    g.record_turn(record("forged", action(1)))
    await store.tenants.flush()
    for table in ("turns", "tool_actions", "usage_events"):
        assert await rows(store, f"select count(*) as n from public.{table}") == [{"n": 0}]
    assert await rows(store, "select count(*) as n from public.audit_events") == before
    assert (await verify_database(store.url)).ok


async def test_one_round_trip_four_statements(store: Any) -> None:
    """Load-independent: begin, the claims, the record, commit — one Sync."""
    g = await open_grant(store)
    g.record_turn(record("warm", action(1)))  # prepares the statement on a connection
    await store.tenants.flush()
    trace = Path(tempfile.mkdtemp(prefix="voco-trace-"))
    TracedConnection.start(trace)
    try:
        g.record_turn(record("t1", action(1), action(2)))
        await store.tenants.flush()
    finally:
        trips, statements = TracedConnection.stop()
        trace.rmdir()
    assert (trips, statements) == (1, 4)
