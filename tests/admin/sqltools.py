"""Direct SQL for the admin tests: acting as a user under RLS, as an attacker
with database access, and writing correctly chained audit rows in the past."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg


@contextmanager
def as_user(conn: psycopg.Connection[Any], user: str) -> Iterator[None]:
    with conn.transaction():
        conn.execute(
            "select set_config('role', 'authenticated', true),"
            " set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": user, "role": "authenticated"}),),
        )
        yield


def user() -> str:
    return str(uuid.uuid4())


def personal_org(url: str, owner: str, *, audited: bool = True) -> str:
    """The owner's personal organisation, made through the policies.
    ``audited=False``: an organisation with an empty trail (the owner's row
    inserted with triggers off, so not even the member.added row exists)."""
    with psycopg.connect(url, autocommit=True) as c, as_user(c, owner):
        row = c.execute(
            "insert into public.organizations (name, personal_for) values ('Personal', auth.uid())"
            " returning id"
        ).fetchone()
        assert row is not None
        if audited:
            c.execute(
                "insert into public.org_members (org_id, user_id, role)"
                " values (%s, auth.uid(), 'owner')",
                (row[0],),
            )
            c.execute("select public.audit_append(%s, 'org.created', null, '{}')", (row[0],))
    if not audited:
        tamper(
            url,
            "insert into public.org_members (org_id, user_id, role) values (%s, %s, 'owner')",
            row[0],
            owner,
        )
    return str(row[0])


def tamper(url: str, sql: str, *args: object) -> None:
    """As a superuser with triggers off: what an attacker with database access does."""
    with psycopg.connect(url, autocommit=True) as c, c.transaction():
        c.execute("set local session_replication_role = replica")
        c.execute(sql, args)


def backdated_event(url: str, org: str, days_ago: int, kind: str = "turn") -> None:
    """Append a correctly chained audit row dated ``days_ago`` days back (rows
    that old cannot be written through audit_append, which stamps the clock)."""
    with psycopg.connect(url, autocommit=True) as c, c.transaction():
        c.execute(
            """
            with last as (
              select coalesce(max(seq), 0) as seq,
                     coalesce((select hash from public.audit_events where org_id = %(org)s
                               order by seq desc limit 1), repeat('0', 64)) as prev
              from public.audit_events where org_id = %(org)s),
            row as (
              select %(org)s::uuid as org, last.seq + 1 as seq,
                     date_trunc('milliseconds', now() - make_interval(days => %(days)s)) as at,
                     last.prev from last)
            insert into public.audit_events (org_id, seq, at, actor, kind, subject, detail,
                                             prev_hash, hash)
            select org, seq, at, null, %(kind)s, null, '{}'::jsonb, prev,
                   encode(sha256(convert_to(public.audit_payload(prev, org, seq, at, null,
                          %(kind)s, null, '{}'::jsonb), 'UTF8')), 'hex')
            from row
            """,
            {"org": org, "days": days_ago, "kind": kind},
        )
