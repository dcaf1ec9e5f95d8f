"""``voco db migrate``: apply ``supabase/migrations/*.sql`` in order, once each.

The migrations are plain SQL in the Supabase CLI layout, so a team can apply
them with ``supabase db push`` *or* let Voco do it; both record what they
applied in the same table, ``supabase_migrations.schema_migrations``
(``version``, ``statements``, ``name`` — the CLI's own shape), so either tool
sees what the other did. That schema is not exposed by the REST API.

Rules: versions are the file names' leading timestamps; each migration runs
in its own transaction together with its bookkeeping row (a failure leaves
the database at the previous version, nothing half-applied); a database that
has a version this code does not know *after* the newest one it knows is
refused (an older engine must not run against a newer schema); concurrent
migrators (replicas starting together) are serialised by an advisory lock.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection

_NAME = re.compile(r"^(\d{14})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x766F636F_6D696772  # "vocomigr"
_BOOKKEEPING = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
    version text primary key,
    statements text[],
    name text
);
"""


class MigrationError(Exception):
    """The database cannot be brought to this code's schema (message says why)."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str


def migrations_dir() -> Path:
    """``supabase/migrations`` of the source tree, else the copy in the package."""
    repo = Path(__file__).resolve().parents[3] / "supabase" / "migrations"
    if repo.is_dir():
        return repo
    return Path(str(resources.files("voco") / "migrations"))


def load_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or migrations_dir()
    out: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(
                f"{path.name}: migration files are named <14-digit timestamp>_<name>.sql"
            )
        out.append(Migration(match[1], match[2], path.read_text()))
    return out


@dataclass(frozen=True)
class MigrateResult:
    applied: list[str]  # versions applied by this call
    current: str | None  # the database's newest version afterwards
    jobs_schema_created: bool = False  # procrastinate's tables, in schema jobs


async def migrate(
    conn: AsyncConnection[Any], migrations: list[Migration] | None = None
) -> MigrateResult:
    """Bring the database on ``conn`` (autocommit) up to date; idempotent."""
    todo = load_migrations() if migrations is None else migrations
    if not todo:
        raise MigrationError("no migrations found")
    await _lock(conn)
    try:
        await conn.execute(_BOOKKEEPING, prepare=False)
        cur = await conn.execute("select version from supabase_migrations.schema_migrations")
        done = {str(_col(r, 0)) for r in await cur.fetchall()}
        known = {m.version for m in todo}
        newest = max(known)
        ahead = sorted(v for v in done - known if v > newest)
        if ahead:
            raise MigrationError(
                f"the database is ahead of this Voco: it has migration {ahead[-1]}, this code "
                f"knows up to {newest}; upgrade Voco (or point it at another database)"
            )
        applied: list[str] = []
        for mig in todo:
            if mig.version in done:
                continue
            try:
                async with conn.transaction():
                    await conn.execute(mig.sql.encode(), prepare=False)
                    await conn.execute(
                        "insert into supabase_migrations.schema_migrations"
                        " (version, statements, name) values (%s, %s, %s)",
                        (mig.version, [mig.sql], mig.name),
                    )
            except Exception as exc:
                raise MigrationError(f"migration {mig.version}_{mig.name} failed: {exc}") from exc
            applied.append(mig.version)
        current = max(done | set(applied)) if done or applied else None
        jobs = False
        if any(m.name == "billing" for m in todo):  # it creates schema jobs
            from voco.store.job_schema import ensure_job_schema

            jobs = await ensure_job_schema(conn)
        return MigrateResult(applied, current, jobs)
    finally:
        await conn.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))


async def _lock(conn: AsyncConnection[Any]) -> None:
    """A session advisory lock, taken by polling so no statement blocks while
    another migrator runs DDL (see ``postgres._setup_schema`` for why)."""
    delay = 0.02
    while True:
        cur = await conn.execute("select pg_try_advisory_lock(%s)", (_LOCK_KEY,))
        row = await cur.fetchone()
        if row is not None and _col(row, 0):
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


def _col(row: Any, i: int) -> Any:
    """Column ``i`` of a tuple or dict row (the pool hands out dict rows)."""
    return list(row.values())[i] if isinstance(row, dict) else row[i]


async def migrate_url(url: str) -> MigrateResult:
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        return await migrate(conn)


__all__ = ["MigrateResult", "Migration", "MigrationError", "load_migrations", "migrate"]
