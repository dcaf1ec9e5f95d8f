"""``voco admin evidence``: one JSON bundle an auditor can take away.

For one organisation and a period: its members and roles with each one's
access history (from the audit trail — an access review), the chain
verification result, the control results and a configuration summary. The
summary states *whether* secrets are configured, never their values; the
database URL appears without password or user.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from psycopg import AsyncConnection, conninfo
from psycopg.rows import dict_row

from voco import __version__
from voco.admin.controls import run_controls
from voco.admin.lifecycle import LifecycleError
from voco.store.audit_db import verify_database
from voco.store.tenancy import as_uuid

ACCESS_KINDS = ("org.created", "member.added", "member.removed", "member.role_changed")


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _where(url: str) -> str:
    try:
        p = conninfo.conninfo_to_dict(url)
    except Exception:
        return "<unparsable>"
    host = p.get("host") or "local socket"
    if str(host).startswith("/"):
        host = "local socket"
    return f"{host}:{p.get('port') or 5432}/{p.get('dbname') or ''}"


async def build_evidence(
    url: str, org: str, since: dt.datetime, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    if as_uuid(org) is None:
        raise LifecycleError(f"--org must be an organisation id (UUID), got {org[:80]!r}")
    until = now or dt.datetime.now(dt.UTC)
    async with await AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        cur = await conn.execute(
            "select id::text as id, name, personal_for::text as personal_for, created_at,"
            " audit_retention_days from public.organizations where id = %s",
            (org,),
        )
        info = await cur.fetchone()
        if info is None:
            raise LifecycleError(f"no organisation {org}")
        cur = await conn.execute(
            "select user_id::text as user_id, role, seat_active, invited_at, joined_at, removed_at"
            " from public.org_members where org_id = %s order by joined_at nulls last, user_id",
            (org,),
        )
        members = [{k: _iso(v) for k, v in r.items()} for r in await cur.fetchall()]
        cur = await conn.execute(
            "select seq, at, actor::text as actor, kind, subject, detail from public.audit_events"
            " where org_id = %s and kind = any(%s) and at >= %s and at <= %s order by seq",
            (org, list(ACCESS_KINDS), since, until),
        )
        changes = [{k: _iso(v) for k, v in r.items()} for r in await cur.fetchall()]
        cur = await conn.execute(
            "select count(*) as n, min(seq) as first, max(seq) as last from public.audit_events"
            " where org_id = %s",
            (org,),
        )
        span = await cur.fetchone()
        cur = await conn.execute(
            "select max(version) as v from supabase_migrations.schema_migrations"
        )
        schema = await cur.fetchone()
    for m in members:
        m["history"] = [c for c in changes if c["subject"] == m["user_id"]]
    verified = await verify_database(url)
    mine = [str(p) for p in verified.problems if p.org == org]
    controls = await run_controls(url)
    return {
        "generated_at": until.isoformat(),
        "period": {"since": since.isoformat(), "until": until.isoformat()},
        "organisation": {k: _iso(v) for k, v in info.items()},
        "access_review": {"members": members, "changes": changes},
        "audit_chain": {
            "ok": not mine,
            "rows": span["n"] if span else 0,
            "first_seq": span["first"] if span else None,
            "last_seq": span["last"] if span else None,
            "problems": mine,
            "database_ok": verified.ok,
        },
        "controls": [c.as_dict() for c in controls],
        "configuration": configuration(url, schema["v"] if schema else None),
    }


def configuration(url: str, schema_version: str | None) -> dict[str, Any]:
    env = os.environ
    return {
        "voco_version": __version__,
        "schema_version": schema_version,
        "database": _where(url),
        "auth_mode": "supabase" if env.get("SUPABASE_URL") else "local",
        "supabase_url": env.get("SUPABASE_URL") or None,
        "legacy_hs256_secret_configured": bool(env.get("SUPABASE_JWT_SECRET")),
        "billing": "stripe" if env.get("STRIPE_SECRET_KEY") else "off (embedded offline mode)",
    }
