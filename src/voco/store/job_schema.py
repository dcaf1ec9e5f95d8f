"""The job queue's own tables, in schema ``jobs`` (never ``public``).

Procrastinate (the Postgres job queue behind the billing jobs) creates its
tables, types and functions with unqualified names. Applied as-is they would
land in ``public``, which Supabase serves over its REST API; so the migrator
applies procrastinate's schema with ``search_path`` set to ``jobs`` (created,
and closed to the API roles, by the billing migration), and every connection
of the job queue uses that same ``search_path`` (:func:`connection_options`).
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

JOBS_SCHEMA = "jobs"


def connection_options() -> str:
    """libpq ``options`` for the job queue's connections."""
    return f"-c search_path={JOBS_SCHEMA}"


async def ensure_job_schema(conn: AsyncConnection[Any]) -> bool:
    """Apply procrastinate's schema in ``jobs`` once; True if it did now."""
    from procrastinate.schema import SchemaManager

    cur = await conn.execute("select to_regclass('jobs.procrastinate_jobs') is not null as ok")
    row = await cur.fetchone()
    exists = row["ok"] if isinstance(row, dict) else (row or (False,))[0]
    if exists:
        return False
    async with conn.transaction():
        await conn.execute(f"create schema if not exists {JOBS_SCHEMA}")
        await conn.execute(f"revoke all on schema {JOBS_SCHEMA} from public")
        await conn.execute("select set_config('search_path', %s, true)", (JOBS_SCHEMA,))
        await conn.execute(SchemaManager.get_schema().encode(), prepare=False)
    return True
