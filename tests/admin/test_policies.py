# ruff: noqa: E501 (SQL reads best on one line)
"""The database is the guard of org administration, whatever the client
(the admin API, PostgREST, a buggy engine): policies and the last-owner
trigger, exercised as the API role with each user's claims."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.admin.sqltools import as_user, personal_org, user


def add(c: psycopg.Connection[Any], org: str, who: str, role: str) -> None:
    c.execute(
        "insert into public.org_members (org_id, user_id, role) values (%s, %s, %s)",
        (org, who, role),
    )


@pytest.fixture
def org(db: str) -> dict[str, str]:
    """Org A: owner, admin, member; org B: its own owner."""
    ids = {"owner": user(), "admin": user(), "member": user(), "other": user()}
    ids["A"] = personal_org(db, ids["owner"])
    ids["B"] = personal_org(db, ids["other"])
    with psycopg.connect(db, autocommit=True) as c, as_user(c, ids["owner"]):
        add(c, ids["A"], ids["admin"], "admin")
        add(c, ids["A"], ids["member"], "member")
    return ids


def test_member_cannot_manage_members(db: str, org: dict[str, str]) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        with pytest.raises(errors.InsufficientPrivilege), as_user(c, org["member"]):
            add(c, org["A"], user(), "member")
        with as_user(c, org["member"]):
            n = c.execute(
                "update public.org_members set role = 'owner' where org_id = %s", (org["A"],)
            ).rowcount
            assert n == 0
            n = c.execute("delete from public.org_members where org_id = %s", (org["A"],)).rowcount
            assert n == 0
            # but sees the co-members
            assert c.execute(
                "select count(*) from public.org_members where org_id = %s", (org["A"],)
            ).fetchone() == (3,)


def test_admin_manages_members_but_not_owners(db: str, org: dict[str, str]) -> None:
    newcomer = user()
    with psycopg.connect(db, autocommit=True) as c:
        with as_user(c, org["admin"]):
            add(c, org["A"], newcomer, "member")
            assert (
                c.execute(
                    "update public.org_members set role = 'admin' where org_id = %s and user_id = %s",
                    (org["A"], newcomer),
                ).rowcount
                == 1
            )
        with pytest.raises(errors.InsufficientPrivilege), as_user(c, org["admin"]):
            add(c, org["A"], user(), "owner")
        with as_user(c, org["admin"]):
            assert (
                c.execute(
                    "update public.org_members set role = 'member' where org_id = %s and user_id = %s",
                    (org["A"], org["owner"]),
                ).rowcount
                == 0
            )
            assert (
                c.execute(
                    "update public.org_members set removed_at = now() where org_id = %s and user_id = %s",
                    (org["A"], org["owner"]),
                ).rowcount
                == 0
            )
        with pytest.raises(errors.InsufficientPrivilege), as_user(c, org["admin"]):
            c.execute(
                "update public.org_members set role = 'owner' where org_id = %s and user_id = %s",
                (org["A"], newcomer),
            )


def test_another_orgs_owner_can_do_nothing(db: str, org: dict[str, str]) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        with pytest.raises(errors.InsufficientPrivilege), as_user(c, org["other"]):
            add(c, org["A"], org["other"], "owner")
        with as_user(c, org["other"]):
            assert c.execute(
                "select count(*) from public.org_members where org_id = %s", (org["A"],)
            ).fetchone() == (0,)
            assert c.execute(
                "select count(*) from public.organizations where id = %s", (org["A"],)
            ).fetchone() == (0,)
            assert (
                c.execute(
                    "update public.org_members set role = 'member' where org_id = %s", (org["A"],)
                ).rowcount
                == 0
            )
            assert (
                c.execute(
                    "update public.organizations set audit_retention_days = 1 where id = %s",
                    (org["A"],),
                ).rowcount
                == 0
            )


def test_creator_may_add_only_the_first_owner_of_its_new_org(db: str) -> None:
    alice, mallory = user(), user()
    with psycopg.connect(db, autocommit=True) as c:
        with as_user(c, alice):
            row = c.execute(
                "insert into public.organizations (name, created_by) values ('Team', auth.uid()) returning id"
            ).fetchone()
            assert row is not None
            new = str(row[0])
        with pytest.raises(errors.InsufficientPrivilege), as_user(c, mallory):
            # someone else cannot claim it, nor create one in alice's name
            add(c, new, mallory, "owner")
        with pytest.raises(errors.InsufficientPrivilege), as_user(c, mallory):
            c.execute(
                "insert into public.organizations (name, created_by) values ('x', %s)", (alice,)
            )
        with as_user(c, alice):
            add(c, new, alice, "owner")
        with pytest.raises(errors.InsufficientPrivilege), as_user(c, mallory):
            add(c, new, mallory, "owner")
        with as_user(c, mallory):
            assert c.execute(
                "select count(*) from public.organizations where id = %s", (new,)
            ).fetchone() == (0,)


def test_last_owner_cannot_be_removed_or_demoted_by_anyone(db: str, org: dict[str, str]) -> None:
    a = org["A"]
    with psycopg.connect(db, autocommit=True) as c:
        for sql in (
            "update public.org_members set role = 'admin' where org_id = %s and user_id = %s",
            "update public.org_members set removed_at = now() where org_id = %s and user_id = %s",
            "update public.org_members set seat_active = false where org_id = %s and user_id = %s",
            "delete from public.org_members where org_id = %s and user_id = %s",
        ):
            with (
                pytest.raises(errors.CheckViolation, match="at least one owner"),
                as_user(c, org["owner"]),
            ):
                c.execute(sql, (a, org["owner"]))
        # not even the table owner gets around it (the trigger, not a policy)
        with pytest.raises(errors.CheckViolation):
            c.execute(
                "delete from public.org_members where org_id = %s and user_id = %s",
                (a, org["owner"]),
            )
        # with a second owner, the first may step down
        with as_user(c, org["owner"]):
            c.execute(
                "update public.org_members set role = 'owner' where org_id = %s and user_id = %s",
                (a, org["admin"]),
            )
            c.execute(
                "update public.org_members set role = 'member' where org_id = %s and user_id = %s",
                (a, org["owner"]),
            )


def test_two_owners_stepping_down_at_once_leave_one(db: str, org: dict[str, str]) -> None:
    a, first, second = org["A"], org["owner"], org["admin"]
    with psycopg.connect(db, autocommit=True) as c, as_user(c, first):
        c.execute(
            "update public.org_members set role = 'owner' where org_id = %s and user_id = %s",
            (a, second),
        )
    both_in = threading.Barrier(2)
    outcomes: list[str] = []

    def step_down(me: str) -> None:
        with psycopg.connect(db, autocommit=True) as c:
            try:
                with as_user(c, me):
                    c.execute("select 1")
                    both_in.wait()
                    c.execute(
                        "update public.org_members set role = 'admin' where org_id = %s and user_id = %s",
                        (a, me),
                    )
                outcomes.append("ok")
            except errors.CheckViolation:
                outcomes.append("refused")

    threads = [threading.Thread(target=step_down, args=(u,)) for u in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "refused"]
    with psycopg.connect(db) as c:
        n = c.execute(
            "select count(*) from public.org_members where org_id = %s and role = 'owner'", (a,)
        ).fetchone()
    assert n == (1,)
