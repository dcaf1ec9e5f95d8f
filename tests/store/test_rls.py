# ruff: noqa: E501, SIM117 (SQL reads best on one line; connect, then each transaction)
"""Tenant isolation enforced by Postgres: two tenants, every table, as the API
role a Supabase REST client (or a buggy engine) would use."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.store.pgtools import fresh_database
from voco.store.embedded import EmbeddedPostgres
from voco.store.migrate import migrate_url

ALICE, AMY, BOB = (str(uuid.uuid4()) for _ in range(3))  # A's owner, A's member, B's owner


@contextmanager
def as_user(conn: psycopg.Connection[Any], user: str, **claims: Any) -> Iterator[None]:
    with conn.transaction():
        conn.execute(
            "select set_config('role', 'authenticated', true),"
            " set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": user, "role": "authenticated", **claims}),),
        )
        yield


@pytest.fixture(scope="module")
def db(pg: EmbeddedPostgres) -> str:
    url = fresh_database(pg.url)
    asyncio.run(migrate_url(url))
    return url


@pytest.fixture(scope="module")
def tenants(db: str) -> dict[str, str]:
    """Org A (alice owner, amy member) with a thread, a turn, a tool action and
    audit rows; org B (bob owner). Built through the policies themselves."""
    with psycopg.connect(db, autocommit=True) as c:
        ids: dict[str, str] = {}
        for user, key in ((ALICE, "A"), (BOB, "B")):
            with as_user(c, user):
                row = c.execute(
                    "insert into public.organizations (name, personal_for)"
                    " values ('Personal', auth.uid()) returning id"
                ).fetchone()
                assert row is not None
                ids[key] = org = str(row[0])
                c.execute(
                    "insert into public.org_members (org_id, user_id, role)"
                    " values (%s, auth.uid(), 'owner')",
                    (org,),
                )
                c.execute(
                    "insert into public.projects (org_id, id, created_by) values (%s, 'p', auth.uid())",
                    (org,),
                )
                c.execute(
                    "insert into public.threads (id, org_id, project_id, owner_id)"
                    " values (%s, %s, 'p', auth.uid())",
                    (f"thread-{key}", org),
                )
                c.execute(
                    "insert into public.turns (org_id, thread_id, user_id, session_id, turn_id,"
                    " response_id, transcript, reply) values (%s, %s, auth.uid(), 's', 't', 'r',"
                    " 'hi', 'hello')",
                    (org, f"thread-{key}"),
                )
                c.execute(
                    "insert into public.tool_actions (org_id, thread_id, user_id, turn_id,"
                    " request_id, action, decision, status, payload_bytes, payload_sha256)"
                    " values (%s, %s, auth.uid(), 't', 'c1', 'read_file', 'auto', 'success', 2,"
                    " 'ab')",
                    (org, f"thread-{key}"),
                )
                c.execute("select public.audit_append(%s, 'turn', 't', '{}')", (org,))
        with as_user(c, ALICE):
            c.execute(
                "insert into public.org_members (org_id, user_id, role) values (%s, %s, 'member')",
                (ids["A"], AMY),
            )
        return ids


TABLES = [
    "organizations",
    "org_members",
    "projects",
    "threads",
    "turns",
    "tool_actions",
    "audit_events",
]


def org_col(table: str) -> str:
    return "id" if table == "organizations" else "org_id"


@pytest.mark.parametrize("table", TABLES)
def test_tenant_b_cannot_read_update_or_delete_a(
    db: str, tenants: dict[str, str], table: str
) -> None:
    a = tenants["A"]
    col = org_col(table)
    with psycopg.connect(db, autocommit=True) as c:
        with as_user(c, BOB):
            rows = c.execute(
                f"select count(*) from public.{table} where {col} = %s", (a,)
            ).fetchone()
            assert rows == (0,)
        for stmt in (
            f"update public.{table} set {col} = {col} where {col} = %s",
            f"delete from public.{table} where {col} = %s",
        ):
            try:
                with as_user(c, BOB):
                    cur = c.execute(stmt, (a,))
                    assert cur.rowcount == 0, stmt
            except errors.InsufficientPrivilege:
                pass  # refused outright: no grant for this role
        # and A's rows are all still there
        n = c.execute(f"select count(*) from public.{table} where {col} = %s", (a,)).fetchone()
        assert n is not None and n[0] >= 1


FORGED = {
    "organizations": "insert into public.organizations (id, name) values (%(a)s, 'mine now')",
    "org_members": "insert into public.org_members (org_id, user_id, role) values (%(a)s, %(bob)s, 'owner')",
    "projects": "insert into public.projects (org_id, id, created_by) values (%(a)s, 'x', %(bob)s)",
    "threads": "insert into public.threads (id, org_id, project_id, owner_id) values ('forged', %(a)s, 'p', %(bob)s)",
    "turns": "insert into public.turns (org_id, thread_id, user_id, session_id, turn_id, response_id,"
    " transcript, reply) values (%(a)s, 'thread-A', %(bob)s, 's', 't', 'r', 'x', 'y')",
    "tool_actions": "insert into public.tool_actions (org_id, thread_id, user_id, turn_id, request_id,"
    " action, decision, status, payload_bytes, payload_sha256) values (%(a)s, 'thread-A', %(bob)s,"
    " 't', 'c', 'run_command', 'auto', 'success', 1, 'x')",
    "audit_events": "insert into public.audit_events (org_id, seq, at, kind, prev_hash, hash)"
    " values (%(a)s, 99, now(), 'forged', 'x', 'y')",
}


@pytest.mark.parametrize("table", TABLES)
def test_tenant_b_cannot_insert_with_a_forged_org(
    db: str, tenants: dict[str, str], table: str
) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        with pytest.raises(errors.InsufficientPrivilege), as_user(c, BOB):
            c.execute(FORGED[table], {"a": tenants["A"], "bob": BOB})


def test_tenant_b_cannot_append_to_a_s_audit_chain(db: str, tenants: dict[str, str]) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        with pytest.raises(errors.InsufficientPrivilege), as_user(c, BOB):
            c.execute("select public.audit_append(%s, 'forged', null, '{}')", (tenants["A"],))


def test_anon_sees_nothing(db: str, tenants: dict[str, str]) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        for table in TABLES:
            with pytest.raises(errors.InsufficientPrivilege), c.transaction():
                c.execute("set local role anon")
                c.execute(f"select * from public.{table}")


def test_engine_schema_is_out_of_reach(db: str, tenants: dict[str, str]) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        with pytest.raises(errors.InsufficientPrivilege), as_user(c, ALICE):
            c.execute("select * from engine.session_leases")


def test_audit_rows_cannot_be_changed_even_by_the_owner(db: str, tenants: dict[str, str]) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        for stmt in (
            "update public.audit_events set kind = 'x'",
            "delete from public.audit_events",
        ):
            with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
                c.execute(stmt)  # as the table owner / superuser: the trigger refuses


def test_member_versus_owner_within_one_org(db: str, tenants: dict[str, str]) -> None:
    a = tenants["A"]
    with psycopg.connect(db, autocommit=True) as c:
        with as_user(c, AMY):
            # co-members and the org are visible; alice's conversation is not
            assert c.execute(
                "select count(*) from public.org_members where org_id = %s", (a,)
            ).fetchone() == (2,)
            assert c.execute(
                "select count(*) from public.organizations where id = %s", (a,)
            ).fetchone() == (1,)
            assert c.execute(
                "select count(*) from public.threads where org_id = %s", (a,)
            ).fetchone() == (0,)
            assert c.execute(
                "select count(*) from public.turns where org_id = %s", (a,)
            ).fetchone() == (0,)
            # the org's audit trail is for owners/admins
            assert c.execute(
                "select count(*) from public.audit_events where org_id = %s", (a,)
            ).fetchone() == (0,)
            # a member changes nobody's role, not even its own
            cur = c.execute("update public.org_members set role = 'owner' where org_id = %s", (a,))
            assert cur.rowcount == 0
        for stmt, args in (
            (
                "insert into public.org_members (org_id, user_id, role) values (%s, %s, 'member')",
                (a, str(uuid.uuid4())),
            ),
            (
                "insert into public.projects (org_id, id, created_by) values (%s, 'new', auth.uid())",
                (a,),
            ),
        ):
            with pytest.raises(errors.InsufficientPrivilege), as_user(c, AMY):
                c.execute(stmt, args)
        with as_user(c, ALICE):
            assert c.execute(
                "select count(*) from public.audit_events where org_id = %s", (a,)
            ).fetchone() == (3,)  # + the trigger's two member.added rows
            cur = c.execute(
                "update public.org_members set role = 'admin' where org_id = %s and user_id = %s",
                (a, AMY),
            )
            assert cur.rowcount == 1
        with as_user(c, AMY):  # now an admin: may add members, but not make owners
            c.execute(
                "insert into public.org_members (org_id, user_id, role) values (%s, %s, 'member')",
                (a, str(uuid.uuid4())),
            )
        with pytest.raises(errors.InsufficientPrivilege), as_user(c, AMY):
            c.execute(
                "insert into public.org_members (org_id, user_id, role) values (%s, %s, 'owner')",
                (a, str(uuid.uuid4())),
            )


def test_project_scoped_token_sees_only_its_project(db: str, tenants: dict[str, str]) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        with as_user(c, ALICE, project_id="other"):
            assert c.execute("select count(*) from public.threads").fetchone() == (0,)
        with as_user(c, ALICE, project_id="p"):
            assert c.execute("select count(*) from public.threads").fetchone() == (1,)


def test_every_public_table_has_forced_rls_and_no_api_owner(
    db: str, tenants: dict[str, str]
) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        rows = c.execute(
            "select c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner)"
            " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'public' and c.relkind = 'r'"
        ).fetchall()
    assert {r[0] for r in rows} >= set(TABLES)
    for name, enabled, forced, owner in rows:
        assert enabled and forced, name
        assert owner not in ("anon", "authenticated", "service_role", "authenticator"), name
