"""Audit retention (purge with a checkpoint the verifier follows) and user
data deletion (conversations gone, the trail intact and content-free)."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import psycopg
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from psycopg import errors

from tests.admin.sqltools import as_user, backdated_event, personal_org, tamper, user
from voco.admin.lifecycle import LifecycleError, purge_audit
from voco.auth.tokens import Principal
from voco.cli import main
from voco.store import open_store
from voco.store.audit_db import verify_database
from voco.store.tenancy import ToolActionRecord, TurnRecord, digest

pytestmark = pytest.mark.timeout(180)


def append(url: str, owner: str, org: str, n: int) -> None:
    with psycopg.connect(url, autocommit=True) as c, as_user(c, owner):
        for i in range(n):
            c.execute("select public.audit_append(%s, 'turn', %s, '{}')", (org, f"t{i}"))


def hashes(url: str, org: str) -> dict[int, str]:
    with psycopg.connect(url) as c:
        rows = c.execute(
            "select seq, hash from public.audit_events where org_id = %s", (org,)
        ).fetchall()
    return {int(s): str(h) for s, h in rows}


async def test_purge_leaves_a_checkpoint_and_a_chain_that_verifies(db: str) -> None:
    alice, bob = user(), user()
    a = personal_org(db, alice, audited=False)
    b = personal_org(db, bob, audited=False)
    for days in (400, 390, 380):
        backdated_event(db, a, days)
    backdated_event(db, a, 10)
    append(db, alice, a, 2)
    backdated_event(db, b, 40)
    append(db, bob, b, 1)
    with psycopg.connect(db, autocommit=True) as c:  # B keeps only 30 days
        c.execute("update public.organizations set audit_retention_days = 30 where id = %s", (b,))
    before = hashes(db, a)
    done = {p.org: p for p in await purge_audit(db)}
    assert set(done) == {a, b}
    assert (done[a].purged_from, done[a].purged_to, done[a].last_hash) == (1, 3, before[3])
    assert (done[b].purged_from, done[b].purged_to) == (1, 1)
    assert sorted(hashes(db, a)) == [4, 5, 6, 7]
    with psycopg.connect(db) as c:
        kind, detail = c.execute(
            "select kind, detail from public.audit_events where org_id = %s and seq = 7", (a,)
        ).fetchone() or ("", {})
    assert kind == "retention.checkpoint" and detail["retention_days"] == 365
    assert (await verify_database(db)).ok
    # nothing more is old enough; a year later the rest goes, and still verifies
    assert await purge_audit(db, a) == []
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    [again] = await purge_audit(db, a, now=later)
    assert (again.purged_from, again.purged_to) == (4, 7)
    assert sorted(hashes(db, a)) == [8]
    assert (await verify_database(db)).ok


async def test_tampering_after_a_purge_is_named(db: str) -> None:
    alice = user()
    org = personal_org(db, alice, audited=False)
    for days in (500, 450):
        backdated_event(db, org, days)
    append(db, alice, org, 3)
    await purge_audit(db, org)  # removes 1..2, checkpoint is seq 6
    assert (await verify_database(db)).ok
    tamper(db, "update public.audit_events set subject = 'x' where org_id = %s and seq = 4", org)
    problems = [str(p) for p in (await verify_database(db)).problems]
    assert problems == [f"org {org} seq 4: hash does not match its contents (edited)"]


async def test_a_prefix_deleted_outside_the_purge_is_named(db: str) -> None:
    alice = user()
    org = personal_org(db, alice, audited=False)
    backdated_event(db, org, 500)
    append(db, alice, org, 3)
    await purge_audit(db, org)  # removes 1, checkpoint is seq 5
    tamper(db, "delete from public.audit_events where org_id = %s and seq = 2", org)
    problems = [str(p) for p in (await verify_database(db)).problems]
    assert f"org {org} seq 3: rows 1..2 are missing (deleted)" in problems
    # a forged checkpoint cannot explain it either: it is a chain row like any other
    tamper(
        db,
        "update public.audit_events set detail = jsonb_set(detail, '{purged_to}', '2')"
        " where org_id = %s and kind = 'retention.checkpoint'",
        org,
    )
    problems = [str(p) for p in (await verify_database(db)).problems]
    assert f"org {org} seq 5: hash does not match its contents (edited)" in problems


def test_only_the_purge_path_deletes_audit_rows(db: str) -> None:
    alice = user()
    org = personal_org(db, alice)
    with psycopg.connect(db, autocommit=True) as c:
        # the table owner itself, outside audit_purge: the trigger refuses
        with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
            c.execute("delete from public.audit_events where org_id = %s", (org,))
        for role in ("authenticated", "service_role"):
            with pytest.raises(errors.InsufficientPrivilege), c.transaction():
                c.execute(
                    "select set_config('role', %s, true),"
                    " set_config('request.jwt.claims', %s, true),"
                    " set_config('voco.audit_purge', %s, true)",
                    (role, json.dumps({"sub": alice, "role": role}), f"{org}:99"),
                )
                c.execute("delete from public.audit_events where org_id = %s", (org,))
            with pytest.raises(errors.InsufficientPrivilege), c.transaction():
                c.execute("select set_config('role', %s, true)", (role,))
                c.execute("select public.audit_purge(%s)", (org,))
        n = c.execute("select count(*) from public.audit_events where org_id = %s", (org,))
        assert n.fetchone() == (2,)  # member.added (trigger) + org.created


async def test_purge_refuses_bad_input(db: str) -> None:
    with pytest.raises(LifecycleError):
        await purge_audit(db, "not-an-org")
    with pytest.raises(LifecycleError):
        await purge_audit(db, str(uuid.uuid4()))


async def _conversation(store: object, who: str, text: str) -> str:
    tenants = store.tenants  # type: ignore[attr-defined]
    principal = Principal(who, None, {"sub": who, "role": "authenticated"})
    grant = await tenants.open_session(principal, project_id="p", thread_id=None, session_id="s")
    size, sha = digest({"path": "plan.txt", "content": text})
    grant.record_turn(
        TurnRecord(
            turn_id="t1", response_id="r1", transcript=text, reply=f"noted: {text}",
            interrupted=False, model="m",
            tool_actions=(
                ToolActionRecord("c1", "write_file", "approved", "success", None, size, sha),
            ),
        )
    )  # fmt: skip
    await grant.release()
    await tenants.flush()
    config = {"configurable": {"thread_id": grant.thread_id, "checkpoint_ns": ""}}
    await store.checkpointer.aput(config, empty_checkpoint(), {}, {})  # type: ignore[attr-defined]
    return str(grant.thread_id)


async def test_delete_user_removes_conversations_and_keeps_a_content_free_trail(db: str) -> None:
    alice, bob = user(), user()
    async with open_store(db) as store:
        mine = await _conversation(store, alice, "alice secret plan")
        theirs = await _conversation(store, bob, "bob secret plan")
    assert await _run_cli(["admin", "delete-user", alice, "--database", db]) == 0
    with psycopg.connect(db) as c:
        for thread, left in ((mine, 0), (theirs, 1)):
            for sql in (
                "select count(*) from public.threads where id = %s",
                "select count(*) from public.turns where thread_id = %s",
                "select count(*) from public.tool_actions where thread_id = %s",
                "select count(*) from engine.checkpoints where thread_id = %s",
            ):
                assert c.execute(sql, (thread,)).fetchone() == (left,), (sql, thread)
        row = c.execute(
            "select detail from public.audit_events where kind = 'user.deleted' and subject = %s",
            (alice,),
        ).fetchone()
        assert row is not None and row[0] == {"threads": 1, "turns": 1, "tool_actions": 1}
        trail = " ".join(str(r) for r in c.execute("select * from public.audit_events").fetchall())
    assert "secret plan" not in trail  # the trail never held content
    assert await _run_cli(["audit", "verify", "--database", db]) == 0


async def test_delete_user_refuses_a_non_uuid(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await _run_cli(["admin", "delete-user", "alice", "--database", db]) == 2
    assert "UUID" in capsys.readouterr().err


async def _run_cli(argv: list[str]) -> int:
    import asyncio

    return await asyncio.to_thread(main, argv)
