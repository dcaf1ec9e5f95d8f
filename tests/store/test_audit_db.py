# ruff: noqa: E501 (SQL reads best on one line)
"""The database audit trail: a hash chain per organisation that names any
edited, deleted, reordered or inserted row."""

from __future__ import annotations

import asyncio
import json
import uuid

import psycopg
import pytest

from tests.store.pgtools import fresh_database
from voco.cli import main
from voco.store.audit_db import verify_database
from voco.store.embedded import EmbeddedPostgres
from voco.store.migrate import migrate_url


def seed(url: str, n: int = 5) -> str:
    user = str(uuid.uuid4())
    with psycopg.connect(url, autocommit=True) as c, c.transaction():
        c.execute(
            "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": user, "role": "authenticated"}),),
        )
        org = c.execute(
            "insert into public.organizations (name, personal_for) values ('x', auth.uid()) returning id"
        ).fetchone()
        assert org is not None
        c.execute("insert into public.org_members values (%s, auth.uid(), 'owner')", (org[0],))
        for i in range(n):
            c.execute(
                "select public.audit_append(%s, 'turn', %s, %s::jsonb)",
                (org[0], f"t{i}", json.dumps({"n": i, "text": "é ünïcode"})),
            )
    return str(org[0])


@pytest.fixture
def db(pg: EmbeddedPostgres) -> str:
    url = fresh_database(pg.url)
    asyncio.run(migrate_url(url))
    return url


def superuser(url: str, sql: str, *args: object) -> None:
    with psycopg.connect(url, autocommit=True) as c, c.transaction():
        c.execute(
            "set local session_replication_role = replica"
        )  # triggers off: an attacker with DB access
        c.execute(sql, args)


async def test_intact_chain_verifies(db: str) -> None:
    seed(db)
    seed(db)
    result = await verify_database(db)
    # 2 orgs x (member.added from the org_members trigger + 5 turns)
    assert result.ok and result.rows == 12 and result.orgs == 2


async def test_edited_row_is_named(db: str) -> None:
    org = seed(db)
    superuser(
        db,
        "update public.audit_events set detail = '{\"n\": 99}' where org_id = %s and seq = 3",
        org,
    )
    result = await verify_database(db)
    assert [str(p) for p in result.problems] == [
        f"org {org} seq 3: hash does not match its contents (edited)"
    ]


async def test_deleted_row_is_named(db: str) -> None:
    org = seed(db)
    superuser(db, "delete from public.audit_events where org_id = %s and seq = 2", org)
    result = await verify_database(db)
    assert {(p.seq, p.what.split()[0]) for p in result.problems} >= {(3, "rows")}
    assert "missing (deleted)" in str(result.problems[0])


async def test_reordered_rows_are_named(db: str) -> None:
    org = seed(db)
    for step in (
        "set seq = -2 where seq = 2",
        "set seq = 2 where seq = 4",
        "set seq = 4 where seq = -2",
    ):
        superuser(db, f"update public.audit_events {step} and org_id = %s", org)
    result = await verify_database(db)
    assert result.problems and {p.seq for p in result.problems} & {2, 3, 4}
    assert all(p.org == org for p in result.problems)


async def test_inserted_row_is_named(db: str) -> None:
    org = seed(db)
    superuser(db, "update public.audit_events set seq = -seq where org_id = %s and seq >= 3", org)
    superuser(db, "update public.audit_events set seq = 1 - seq where org_id = %s and seq < 0", org)
    superuser(
        db,
        "insert into public.audit_events (org_id, seq, at, kind, prev_hash, hash)"
        " select org_id, 3, now(), 'forged', hash, repeat('f', 64) from public.audit_events"
        " where org_id = %s and seq = 2",
        org,
    )
    result = await verify_database(db)
    assert any(p.seq == 3 and "edited" in p.what for p in result.problems)
    assert any(p.seq == 4 and "link" in p.what for p in result.problems)


async def test_concurrent_appenders_keep_one_chain(db: str) -> None:
    org = seed(db, n=0)
    user_row = None
    with psycopg.connect(db) as c:
        user_row = c.execute(
            "select user_id from public.org_members where org_id = %s", (org,)
        ).fetchone()
    assert user_row is not None

    def append_many() -> None:
        for _ in range(10):
            with psycopg.connect(db, autocommit=True) as c, c.transaction():
                c.execute(
                    "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                    (json.dumps({"sub": str(user_row[0])}),),
                )
                c.execute("select public.audit_append(%s, 'x', null, '{}')", (org,))

    await asyncio.gather(*(asyncio.to_thread(append_many) for _ in range(4)))
    result = await verify_database(db)
    assert result.ok and result.rows == 41  # + the owner's member.added


def test_cli_verify_database(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    org = seed(db)
    assert main(["audit", "verify", "--database", db]) == 0
    assert "intact" in capsys.readouterr().out
    superuser(db, "delete from public.audit_events where org_id = %s and seq = 5", org)
    superuser(db, "update public.audit_events set kind = 'x' where org_id = %s and seq = 1", org)
    assert main(["audit", "verify", "--database", db]) == 1
    out = capsys.readouterr().out
    assert f"org {org} seq 1" in out
