"""Each SOC 2 control passes on a correct system and fails when broken on
purpose (RLS off, an API role owning a table or bypassing RLS, a reachable
engine schema, a tampered audit row, overdue retention, a secret 0644, a
weak token mode)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from tests.admin.sqltools import backdated_event, personal_org, tamper, user
from voco.admin import controls
from voco.admin.lifecycle import purge_audit
from voco.auth import tokens
from voco.cli import main


@pytest.fixture
async def conn(db: str) -> AsyncIterator[AsyncConnection[Any]]:
    async with await AsyncConnection.connect(db, autocommit=True, row_factory=dict_row) as c:
        yield c


def sql(db: str, statement: str) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(statement)


async def test_database_controls_pass_on_a_migrated_database(db: str, conn: Any) -> None:
    personal_org(db, user())
    for control in (
        await controls.rls_forced(conn),
        await controls.api_roles(conn),
        await controls.engine_schema(conn),
        await controls.audit_chain(db),
        await controls.retention(conn),
    ):
        assert control.ok, control


async def test_rls_off_or_not_forced_fails(db: str, conn: Any) -> None:
    sql(db, "alter table public.turns no force row level security")
    sql(db, "alter table public.projects disable row level security")
    c = await controls.rls_forced(conn)
    assert not c.ok
    assert "projects (not enabled)" in c.detail and "turns (not forced)" in c.detail


async def test_api_role_owning_a_table_fails(db: str, conn: Any) -> None:
    sql(db, "create table public.leak (x int)")
    sql(db, "alter table public.leak owner to authenticated")
    c = await controls.api_roles(conn)
    assert not c.ok and "authenticated owns public.leak" in c.detail
    assert not (await controls.rls_forced(conn)).ok  # and it has no RLS either


async def test_an_api_role_with_bypassrls_fails(db: str, conn: Any) -> None:
    sql(db, "alter role anon bypassrls")  # roles are per server: put it back
    try:
        c = await controls.api_roles(conn)
    finally:
        sql(db, "alter role anon nobypassrls")
    assert not c.ok and "anon has BYPASSRLS" in c.detail
    assert (await controls.api_roles(conn)).ok


async def test_engine_schema_reachable_fails(db: str, conn: Any) -> None:
    sql(db, "grant usage on schema engine to authenticated")
    c = await controls.engine_schema(conn)
    assert not c.ok and "authenticated" in c.detail


async def test_tampered_audit_row_fails(db: str) -> None:
    org = personal_org(db, user())
    tamper(db, "update public.audit_events set kind = 'x' where org_id = %s and seq = 1", org)
    c = await controls.audit_chain(db)
    assert not c.ok and f"org {org} seq 1" in c.detail


async def test_overdue_retention_fails_until_purged(db: str, conn: Any) -> None:
    org = personal_org(db, user(), audited=False)
    backdated_event(db, org, 400)
    c = await controls.retention(conn)
    assert not c.ok and org in c.detail
    await purge_audit(db)
    c = await controls.retention(conn)
    assert c.ok and "365 days" in c.detail


def test_secret_files_must_be_0600(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    key = home / "auth_signing_key.pem"
    key.write_text("k")
    key.chmod(0o600)
    (home / "notes.txt").write_text("not a secret")
    assert controls.secret_files(home).ok
    key.chmod(0o644)
    c = controls.secret_files(home)
    assert not c.ok and "auth_signing_key.pem is mode 644" in c.detail
    key.chmod(0o600)
    home.chmod(0o777)
    assert not controls.secret_files(home).ok


def test_weak_token_modes_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    c = controls.token_verification(
        {"SUPABASE_URL": "http://127.0.0.1:9", "SUPABASE_JWT_SECRET": "short"}
    )
    assert not c.ok and "HS256 secret" in c.detail
    c = controls.token_verification({"SUPABASE_URL": "http://127.0.0.1:9"})
    assert c.ok
    c = controls.token_verification({"SUPABASE_JWT_SECRET": "x" * 40})
    assert not c.ok
    # local mode: the signing key's file mode
    assert controls.token_verification({}).ok  # no key yet
    tokens.TokenAuthority().issue(user())  # creates it, 0600
    assert controls.token_verification({}).ok
    os.chmod(tokens.state_dir() / "auth_signing_key.pem", 0o644)
    assert not controls.token_verification({}).ok


def test_billing_is_stated_either_way() -> None:
    assert controls.billing({}).detail == "billing off (embedded offline mode)"
    on = controls.billing({"STRIPE_SECRET_KEY": "sk_test_x"})
    assert on.ok and "sk_test_x" not in on.detail


async def test_cli_exit_status_follows_the_controls(
    db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SUPABASE_URL", "SUPABASE_JWT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    argv = ["admin", "controls", "--database", db]
    assert await asyncio.to_thread(main, argv) == 0, capsys.readouterr().out
    assert "8/8 controls pass" in capsys.readouterr().out
    sql(db, "alter table public.threads disable row level security")
    assert await asyncio.to_thread(main, argv) == 1
    out = capsys.readouterr().out
    assert "FAIL  rls_forced" in out and "1 FAILED" in out
