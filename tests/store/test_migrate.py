"""Migrations on a fresh database and on one at the previous schema."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.store.pgtools import fresh_database
from voco.store.embedded import EmbeddedPostgres
from voco.store.migrate import MigrationError, load_migrations, migrate_url


def test_files_are_in_the_supabase_cli_layout() -> None:
    migs = load_migrations()
    assert [m.version for m in migs] == sorted(m.version for m in migs)
    assert all(len(m.version) == 14 for m in migs)
    assert Path("supabase/migrations").is_dir()


async def test_fresh_database_then_idempotent(pg: EmbeddedPostgres) -> None:
    url = fresh_database(pg.url)
    first = await migrate_url(url)
    assert first.applied == [m.version for m in load_migrations()]
    again = await migrate_url(url)
    assert again.applied == [] and again.current == first.current
    with psycopg.connect(url) as c:
        roles = {r[0] for r in c.execute("select rolname from pg_roles").fetchall()}
        assert {"anon", "authenticated", "service_role", "authenticator"} <= roles
        row = c.execute(
            "select rolcanlogin, rolinherit from pg_roles where rolname = 'authenticator'"
        ).fetchone()
        assert row == (True, False)


async def test_concurrent_migrators_apply_each_once(pg: EmbeddedPostgres) -> None:
    url = fresh_database(pg.url)
    results = await asyncio.gather(*(migrate_url(url) for _ in range(3)))
    applied = [v for r in results for v in r.applied]
    assert sorted(applied) == [m.version for m in load_migrations()]


async def test_database_ahead_of_the_code_is_refused(pg: EmbeddedPostgres) -> None:
    url = fresh_database(pg.url)
    await migrate_url(url)
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(
            "insert into supabase_migrations.schema_migrations (version, name)"
            " values ('29991231000000', 'from_the_future')"
        )
    with pytest.raises(MigrationError, match=r"ahead of this Voco.*29991231000000"):
        await migrate_url(url)


async def test_a_failing_migration_leaves_the_previous_version(
    pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    url = fresh_database(pg.url)
    from psycopg import AsyncConnection

    from voco.store.migrate import Migration, migrate

    good = Migration("20000101000000", "good", "create table public.ok_table (x int);")
    bad = Migration("20000101000001", "bad", "create table public.half (x int); select 1/0;")
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        with pytest.raises(MigrationError, match="20000101000001_bad failed"):
            await migrate(conn, [good, bad])
    with psycopg.connect(url) as c:
        assert c.execute("select to_regclass('public.half')").fetchone() == (None,)
        versions = [
            r[0] for r in c.execute("select version from supabase_migrations.schema_migrations")
        ]
        assert versions == ["20000101000000"]


async def test_previous_schema_is_migrated(pg: EmbeddedPostgres) -> None:
    """main before this change: voco_threads and LangGraph's tables in public."""
    url = fresh_database(pg.url)
    alice = uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(
            "create table voco_threads (thread_id text primary key, user_id text not null,"
            " project_id text not null, created_at timestamptz not null default now())"
        )
        c.execute("create table checkpoints (thread_id text, payload text)")
        c.execute("insert into checkpoints values ('t1', 'the whole conversation')")
        c.execute(
            "insert into voco_threads (thread_id, user_id, project_id) values"
            " ('t1', %s, 'p'), ('t2', %s, 'q'), ('t3', 'not-a-uuid', 'p')",
            (str(alice), alice.hex),
        )
    await migrate_url(url)
    with psycopg.connect(url) as c:
        assert c.execute("select to_regclass('public.checkpoints')").fetchone() == (None,)
        assert c.execute("select payload from engine.checkpoints").fetchone() == (
            "the whole conversation",
        )
        assert c.execute("select to_regclass('public.voco_threads')").fetchone() == (None,)
        rows = c.execute(
            "select id, project_id, owner_id from public.threads order by id"
        ).fetchall()
        assert rows == [("t1", "p", alice), ("t2", "q", alice)]
        # the user got a personal organisation it owns, with both projects
        row = c.execute(
            "select role from public.org_members where user_id = %s", (alice,)
        ).fetchone()
        assert row == ("owner",)
        # the unmappable row is kept, outside the API schema
        assert c.execute("select count(*) from engine.legacy_voco_threads").fetchone() == (3,)
