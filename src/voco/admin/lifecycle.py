"""Operator jobs on the data's lifecycle: deleting a user's conversations and
purging audit rows past their organisation's retention.

Both cross tenants by nature, so they run on a direct connection as the
database's owning role (the one that ran the migrations: ``postgres`` on
Supabase and in the embedded server), not through the engine's API roles.

**delete-user** removes the user's threads with their turns and tool actions
(foreign keys cascade) and the LangGraph checkpoints of those threads (in the
``engine`` schema), in one transaction together with a ``user.deleted`` audit
event in each affected organisation. The audit trail itself is append-only
and is not touched: its rows never held content in the first place (turn and
tool rows carry ids, flags, sizes and SHA-256 hashes — see
``pg_tenants``), so what remains of the user there is ids and hashes.

**purge-audit** calls ``public.audit_purge(org)`` per organisation, the only
path on which the append-only trigger lets rows go (see the admin migration).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from voco.store.tenancy import as_uuid

_CHECKPOINT_TABLES = ("checkpoint_writes", "checkpoint_blobs", "checkpoints")


class LifecycleError(Exception):
    """Bad input to an operator job (message says what)."""


@dataclass
class Deletion:
    user: str
    threads: int = 0
    turns: int = 0
    tool_actions: int = 0
    checkpoints: int = 0
    orgs: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "threads": self.threads,
            "turns": self.turns,
            "tool_actions": self.tool_actions,
            "checkpoints": self.checkpoints,
            "orgs": self.orgs,
        }


async def delete_user(url: str, user: str) -> Deletion:
    uid = as_uuid(user)
    if uid is None:
        raise LifecycleError(f"USER must be a UUID (a Supabase user id), got {user[:80]!r}")
    out = Deletion(uid)
    connect = AsyncConnection.connect(url, autocommit=True, row_factory=dict_row)
    async with await connect as conn, conn.transaction():
        cur = await conn.execute(
            "select t.id, t.org_id::text as org,"
            " (select count(*) from public.turns u where u.thread_id = t.id) as turns,"
            " (select count(*) from public.tool_actions a where a.thread_id = t.id) as tools"
            " from public.threads t where t.owner_id = %s for update",
            (uid,),
        )
        threads = await cur.fetchall()
        ids = [r["id"] for r in threads]
        per_org: dict[str, dict[str, int]] = {}
        for r in threads:
            n = per_org.setdefault(r["org"], {"threads": 0, "turns": 0, "tool_actions": 0})
            n["threads"] += 1
            n["turns"] += int(r["turns"])
            n["tool_actions"] += int(r["tools"])
        # turns/tool actions of the user in threads it does not own
        # (none today; the schema allows it) go too
        await conn.execute("delete from public.tool_actions where user_id = %s", (uid,))
        await conn.execute("delete from public.turns where user_id = %s", (uid,))
        await conn.execute("delete from public.threads where owner_id = %s", (uid,))
        for table in _CHECKPOINT_TABLES:
            if await _exists(conn, f"engine.{table}"):
                query = sql.SQL("delete from engine.{} where thread_id = any(%s)")
                cur = await conn.execute(query.format(sql.Identifier(table)), (ids,))
                if table == "checkpoints":
                    out.checkpoints = cur.rowcount
        cur = await conn.execute(
            "select org_id::text as org from public.org_members where user_id = %s", (uid,)
        )
        for r in await cur.fetchall():
            per_org.setdefault(r["org"], {"threads": 0, "turns": 0, "tool_actions": 0})
        # audit_append checks the claims' role: service_role may write any org's chain
        await conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (json.dumps({"role": "service_role"}),),
        )
        for org, counts in sorted(per_org.items()):
            await conn.execute(
                "select public.audit_append(%s, 'user.deleted', %s, %s::jsonb)",
                (org, uid, json.dumps(counts)),
            )
            out.threads += counts["threads"]
            out.turns += counts["turns"]
            out.tool_actions += counts["tool_actions"]
        out.orgs = sorted(per_org)
    return out


async def _exists(conn: AsyncConnection[Any], name: str) -> bool:
    cur = await conn.execute("select to_regclass(%s) is not null as ok", (name,))
    row = await cur.fetchone()
    return bool(row and row["ok"])


@dataclass(frozen=True)
class Purge:
    org: str
    purged_from: int
    purged_to: int
    last_hash: str
    before: str


async def purge_audit(
    url: str, org: str | None = None, *, now: dt.datetime | None = None
) -> list[Purge]:
    """Purge every organisation (or ``org``); ``now`` is injectable for tests."""
    if org is not None and as_uuid(org) is None:
        raise LifecycleError(f"--org must be an organisation id (UUID), got {org[:80]!r}")
    when = now or dt.datetime.now(dt.UTC)
    done: list[Purge] = []
    async with await AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        if org is None:
            cur = await conn.execute("select id::text as id from public.organizations order by id")
            orgs = [str(r["id"]) for r in await cur.fetchall()]
        else:
            cur = await conn.execute(
                "select id::text as id from public.organizations where id = %s", (org,)
            )
            if await cur.fetchone() is None:
                raise LifecycleError(f"no organisation {org}")
            orgs = [org]
        for o in orgs:
            async with conn.transaction():  # one organisation at a time: short locks
                cur = await conn.execute("select public.audit_purge(%s, %s) as d", (o, when))
                row = await cur.fetchone()
            d = row["d"] if row else None
            if d:
                done.append(
                    Purge(
                        o, int(d["purged_from"]), int(d["purged_to"]), d["last_hash"], d["before"]
                    )
                )
    return done
