"""The evidence bundle: access review from the audit trail, chain result,
controls, configuration without secrets."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import stat
import uuid
from pathlib import Path

import pytest

from tests.admin.sqltools import tamper
from voco.admin import orgs
from voco.admin.evidence import build_evidence
from voco.admin.lifecycle import LifecycleError
from voco.cli import main
from voco.store import open_store
from voco.store.db import as_user
from voco.store.migrate import load_migrations


async def team(db: str) -> tuple[str, str, str]:
    """An org made through the admin operations: alice owner, amy member → admin."""
    alice, amy = str(uuid.uuid4()), str(uuid.uuid4())
    async with open_store(db) as store:
        async with as_user(store.pool, {"sub": alice}) as conn:
            org = (await orgs.create_org(conn, "Team"))["id"]
        async with as_user(store.pool, {"sub": alice}) as conn:
            await orgs.add_member(conn, org, amy)
        async with as_user(store.pool, {"sub": alice}) as conn:
            await orgs.set_role(conn, org, amy, "admin")
    return org, alice, amy


async def test_bundle_content(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cr3t-" + "x" * 40
    monkeypatch.setenv("SUPABASE_JWT_SECRET", secret)
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_hidden")
    org, alice, amy = await team(db)
    since = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    bundle = await build_evidence(db, org, since)
    text = json.dumps(bundle, default=str)
    assert secret not in text and "sk_test_hidden" not in text
    members = {m["user_id"]: m for m in bundle["access_review"]["members"]}
    assert members[alice]["role"] == "owner" and members[amy]["role"] == "admin"
    history = [(h["kind"], h["detail"]) for h in members[amy]["history"]]
    assert history == [
        ("member.added", {"role": "member"}),
        ("member.role_changed", {"from": "member", "to": "admin"}),
    ]
    assert all(h["actor"] == alice for h in members[amy]["history"])
    assert bundle["audit_chain"]["ok"] and bundle["audit_chain"]["rows"] == 4
    names = {c["name"]: c for c in bundle["controls"]}
    assert names["rls_forced"]["ok"] and names["audit_chain"]["ok"]
    assert names["billing"]["detail"] == "billing configured (STRIPE_SECRET_KEY set)"
    conf = bundle["configuration"]
    assert conf["legacy_hs256_secret_configured"] is True and conf["billing"] == "stripe"
    assert conf["schema_version"] == load_migrations()[-1].version
    assert bundle["organisation"]["audit_retention_days"] == 365
    # the period bounds the changes; a later start shows none
    later = await build_evidence(db, org, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    assert later["access_review"]["changes"] == []
    # a broken chain is reported for this org
    tamper(db, "update public.audit_events set subject = 'x' where org_id = %s and seq = 2", org)
    broken = await build_evidence(db, org, since)
    assert (
        not broken["audit_chain"]["ok"]
        and f"org {org} seq 2" in broken["audit_chain"]["problems"][0]
    )


async def test_cli_writes_a_private_file(db: str, tmp_path: Path) -> None:
    org, _, _ = await team(db)
    out = tmp_path / "evidence.json"
    argv = [
        "admin",
        "evidence",
        "--org",
        org,
        "--since",
        "2026-01-01",
        "--out",
        str(out),
        "--database",
        db,
    ]
    assert await asyncio.to_thread(main, argv) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text())["organisation"]["id"] == org
    bad = ["admin", "evidence", "--org", org, "--since", "yesterday", "--database", db]
    assert await asyncio.to_thread(main, bad) == 2


async def test_unknown_org_is_a_clear_error(db: str) -> None:
    with pytest.raises(LifecycleError, match="no organisation"):
        await build_evidence(db, str(uuid.uuid4()), dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
