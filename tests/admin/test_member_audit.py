"""Member changes made directly (PostgREST, SQL as an API role) are audited
by the database in the same transaction; the admin API's own changes are
audited exactly once (it relies on the same trigger)."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.admin.sqltools import as_user, personal_org, user
from voco.store.audit_db import verify_database


def trail(db: str, org: str) -> list[tuple[str, str | None, Any, str | None]]:
    with psycopg.connect(db, autocommit=True) as c:
        rows = c.execute(
            "select kind, subject, detail, actor::text from public.audit_events"
            " where org_id = %s and kind like 'member.%%' order by seq",
            (org,),
        ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def test_direct_member_changes_are_each_audited_once(db: str) -> None:
    owner, amy = user(), user()
    org = personal_org(db, owner)
    with psycopg.connect(db, autocommit=True) as c:
        with as_user(c, owner):
            c.execute(
                "insert into public.org_members (org_id, user_id, role) values (%s, %s, 'member')",
                (org, amy),
            )
        with as_user(c, owner):
            c.execute(
                "update public.org_members set role = 'admin' where org_id = %s and user_id = %s",
                (org, amy),
            )
        with as_user(c, owner):
            c.execute(
                "update public.org_members set seat_active = false"
                " where org_id = %s and user_id = %s",
                (org, amy),
            )
        with as_user(c, owner):
            c.execute(
                "update public.org_members set removed_at = now()"
                " where org_id = %s and user_id = %s",
                (org, amy),
            )
        with as_user(c, owner):
            c.execute(
                "update public.org_members set removed_at = null, seat_active = true"
                " where org_id = %s and user_id = %s",
                (org, amy),
            )
        with as_user(c, owner):
            c.execute(
                "delete from public.org_members where org_id = %s and user_id = %s", (org, amy)
            )
    assert trail(db, org) == [
        ("member.added", owner, {"role": "owner"}, owner),
        ("member.added", amy, {"role": "member"}, owner),
        ("member.role_changed", amy, {"from": "member", "to": "admin"}, owner),
        ("member.seat", amy, {"active": False}, owner),
        ("member.removed", amy, {"role": "admin"}, owner),
        ("member.added", amy, {"role": "admin"}, owner),
        ("member.removed", amy, {"role": "admin", "deleted": True}, owner),
    ]
    assert asyncio.run(verify_database(db)).ok


def test_a_refused_change_leaves_no_audit_row(db: str) -> None:
    owner, member = user(), user()
    org = personal_org(db, owner)
    with psycopg.connect(db, autocommit=True) as c:
        with as_user(c, owner):
            c.execute(
                "insert into public.org_members (org_id, user_id, role) values (%s, %s, 'member')",
                (org, member),
            )
        before = trail(db, org)
        with pytest.raises(errors.InsufficientPrivilege), as_user(c, member):
            c.execute(
                "insert into public.org_members (org_id, user_id, role) values (%s, %s, 'admin')",
                (org, user()),
            )
        # a member's update is filtered by RLS: nothing changes, nothing is audited
        with as_user(c, member):
            cur = c.execute(
                "update public.org_members set role = 'owner' where org_id = %s and user_id = %s",
                (org, member),
            )
            assert cur.rowcount == 0
    assert trail(db, org) == before


def test_the_trigger_function_is_not_callable_by_api_roles(db: str) -> None:
    owner = user()
    personal_org(db, owner)
    with (
        psycopg.connect(db, autocommit=True) as c,
        pytest.raises(errors.InsufficientPrivilege),
        as_user(c, owner),
    ):
        c.execute("select public.audit_member_change()")
