"""Organisation administration as the caller, under row-level security.

Every function here runs inside one :func:`~voco.store.db.as_user`
transaction (the caller's verified claims, role ``authenticated``), so the
policies of ``supabase/migrations`` decide what is allowed; the role checks
in this module exist only to give a clear answer (403 vs 404) *before* the
database would refuse anyway. An UPDATE or DELETE that RLS filters out
touches 0 rows, which is reported as "not allowed", never as success.

Seats follow membership in the database (migration ``billing_seats``): an
add or reactivation beyond a fixed-seat plan's seats is refused there (409
``no_seat``), and each seat change queues the debounced Stripe quantity sync
in the same transaction.

Each change writes its ``audit_events`` row in the same transaction, so the
change and its record commit together or not at all. Audit details carry
ids and roles only.

Org existence is not leaked: an organisation the caller is not a member of
and an organisation that does not exist both answer 404 (RLS hides both).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import errors

from voco.billing.entitlements import seat_refusal
from voco.store.db import Conn
from voco.store.pg_tenants import audit
from voco.store.tenancy import as_uuid

ROLES = ("owner", "admin", "member")
MANAGERS = ("owner", "admin")
MAX_NAME = 200


class AdminError(Exception):
    """A refusal with its HTTP status and a stable error code."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def _org_id(org: str) -> str:
    value = as_uuid(org)
    if value is None:  # as unknown as any other organisation the caller cannot see
        raise AdminError(404, "not_found", f"no organisation {org[:80]!r}")
    return value


def _user_id(user: Any) -> str:
    value = as_uuid(user) if isinstance(user, str) else None
    if value is None:
        raise AdminError(422, "invalid", "user_id must be a UUID (the user's Supabase id)")
    return value


def _role(role: Any) -> str:
    if role not in ROLES:
        raise AdminError(422, "invalid", f"role must be one of {', '.join(ROLES)}")
    return str(role)


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else None


def _member(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": str(row["user_id"]),
        "role": row["role"],
        "seat_active": row["seat_active"],
        "invited_at": _iso(row["invited_at"]),
        "joined_at": _iso(row["joined_at"]),
        "removed_at": _iso(row["removed_at"]),
    }


async def _caller_role(conn: Conn, org: str) -> str:
    """The caller's active role in ``org``; 404 if the caller cannot see it."""
    cur = await conn.execute(
        "select public.org_role(o.id) as role from public.organizations o where o.id = %s", (org,)
    )
    row = await cur.fetchone()
    if row is None or row["role"] is None:
        raise AdminError(404, "not_found", f"no organisation {org!r}")
    return str(row["role"])


async def _require_manager(conn: Conn, org: str) -> str:
    role = await _caller_role(conn, org)
    if role not in MANAGERS:
        raise AdminError(403, "forbidden", "only owners and admins manage members")
    return role


async def create_org(conn: Conn, name: Any) -> dict[str, Any]:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise AdminError(422, "invalid", f"name must be 1..{MAX_NAME} characters")
    cur = await conn.execute(
        "insert into public.organizations (name, created_by) values (%s, auth.uid())"
        " returning id, name, audit_retention_days",
        (name.strip(),),
    )
    row = await cur.fetchone()
    assert row is not None  # RETURNING under the creator's read policy
    org = str(row["id"])
    await conn.execute(
        "insert into public.org_members (org_id, user_id, role) values (%s, auth.uid(), 'owner')",
        (org,),
    )
    # member.added is written by the org_members trigger (member_audit migration)
    await audit(conn, org, "org.created", org, {"personal": False})
    return {"id": org, "name": row["name"], "role": "owner",
            "audit_retention_days": row["audit_retention_days"]}  # fmt: skip


async def _me(conn: Conn) -> str:
    cur = await conn.execute("select auth.uid()::text as me")
    row = await cur.fetchone()
    assert row is not None
    return str(row["me"])


async def list_orgs(conn: Conn) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "select o.id::text as id, o.name, public.org_role(o.id) as role,"
        " o.audit_retention_days from public.organizations o"
        " where public.is_member(o.id) order by o.created_at, o.id"
    )
    return [dict(r) for r in await cur.fetchall()]


async def get_org(conn: Conn, org: str) -> dict[str, Any]:
    org = _org_id(org)
    role = await _caller_role(conn, org)
    cur = await conn.execute(
        "select id::text as id, name, audit_retention_days from public.organizations where id = %s",
        (org,),
    )
    row = await cur.fetchone()
    assert row is not None
    return {**dict(row), "role": role}


async def list_members(conn: Conn, org: str) -> list[dict[str, Any]]:
    org = _org_id(org)
    await _caller_role(conn, org)
    cur = await conn.execute(
        "select user_id, role, seat_active, invited_at, joined_at, removed_at"
        " from public.org_members where org_id = %s"
        " order by joined_at nulls last, user_id",
        (org,),
    )
    return [_member(r) for r in await cur.fetchall()]


async def _target(conn: Conn, org: str, user: str) -> dict[str, Any] | None:
    cur = await conn.execute(
        "select user_id, role, seat_active, invited_at, joined_at, removed_at"
        " from public.org_members where org_id = %s and user_id = %s",
        (org, user),
    )
    return await cur.fetchone()


async def add_member(conn: Conn, org: str, user: Any, role: Any = "member") -> dict[str, Any]:
    org, user, role = _org_id(org), _user_id(user), _role(role)
    mine = await _require_manager(conn, org)
    if role == "owner" and mine != "owner":
        raise AdminError(403, "forbidden", "only owners make owners")
    existing = await _target(conn, org, user)
    try:
        if existing is None:
            cur = await conn.execute(
                "insert into public.org_members (org_id, user_id, role, invited_at)"
                " values (%s, %s, %s, now())"
                " returning user_id, role, seat_active, invited_at, joined_at, removed_at",
                (org, user, role),
            )
        elif existing["removed_at"] is None:
            raise AdminError(409, "conflict", "already a member (change the role instead)")
        else:  # a former member comes back: the row (and its history) is reused
            cur = await conn.execute(
                "update public.org_members set role = %s, removed_at = null, seat_active = true,"
                " invited_at = now(), joined_at = now() where org_id = %s and user_id = %s"
                " returning user_id, role, seat_active, invited_at, joined_at, removed_at",
                (role, org, user),
            )
        row = await cur.fetchone()
    except errors.InsufficientPrivilege:
        raise AdminError(403, "forbidden", "not allowed to add this member") from None
    except errors.UniqueViolation:  # a concurrent add of the same user won
        raise AdminError(409, "conflict", "already a member (change the role instead)") from None
    except psycopg.Error as exc:  # the seat trigger: a fixed-seat plan is full
        text = seat_refusal(exc)
        if text is None:
            raise
        raise AdminError(409, "no_seat", text) from None
    if row is None:
        raise AdminError(403, "forbidden", "not allowed to add this member")
    return _member(row)  # audited by the org_members trigger


async def remove_member(conn: Conn, org: str, user: str) -> dict[str, Any]:
    """A soft removal (``removed_at``, seat off): the row stays for access review."""
    org, user = _org_id(org), _user_id(user)
    await _require_manager(conn, org)
    existing = await _target(conn, org, user)
    if existing is None or existing["removed_at"] is not None:
        raise AdminError(404, "not_found", "no such member")
    # member.removed is written by the org_members trigger, same transaction
    row = await _update(
        conn,
        "update public.org_members set removed_at = now(), seat_active = false"
        " where org_id = %s and user_id = %s returning "
        "user_id, role, seat_active, invited_at, joined_at, removed_at",
        (org, user),
    )
    return _member(row)


async def set_role(conn: Conn, org: str, user: str, role: Any) -> dict[str, Any]:
    org, user, role = _org_id(org), _user_id(user), _role(role)
    mine = await _require_manager(conn, org)
    existing = await _target(conn, org, user)
    if existing is None or existing["removed_at"] is not None:
        raise AdminError(404, "not_found", "no such member")
    if mine != "owner" and "owner" in (role, existing["role"]):
        raise AdminError(403, "forbidden", "only owners make or unmake owners")
    if existing["role"] == role:
        return _member(existing)
    row = await _update(
        conn,
        "update public.org_members set role = %s where org_id = %s and user_id = %s"
        " returning user_id, role, seat_active, invited_at, joined_at, removed_at",
        (role, org, user),
    )
    return _member(row)  # member.role_changed: the org_members trigger


async def _update(conn: Conn, sql: str, args: tuple[Any, ...]) -> dict[str, Any]:
    try:
        cur = await conn.execute(sql, args)
    except errors.CheckViolation as exc:  # the keep_an_owner trigger
        raise AdminError(409, "last_owner", "the organisation must keep at least one owner") from (
            exc
        )
    except errors.InsufficientPrivilege:
        raise AdminError(403, "forbidden", "not allowed to change this member") from None
    row = await cur.fetchone()
    if row is None:  # RLS filtered the row out of the UPDATE
        raise AdminError(403, "forbidden", "not allowed to change this member")
    return row


async def list_projects(conn: Conn, org: str) -> list[dict[str, Any]]:
    org = _org_id(org)
    await _caller_role(conn, org)
    cur = await conn.execute(
        "select id, created_by::text as created_by, created_at from public.projects"
        " where org_id = %s order by created_at, id",
        (org,),
    )
    return [{**dict(r), "created_at": _iso(r["created_at"])} for r in await cur.fetchall()]
