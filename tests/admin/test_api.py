"""The org admin API over real HTTP on 127.0.0.1: the engine app
(create_app) with its real verifier and Postgres tenant store, two tenants."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from voco.auth.tokens import TokenAuthority
from voco.cli import main
from voco.store.audit_db import verify_database

pytestmark = pytest.mark.timeout(180)


@dataclass
class Api:
    base: str
    db: str
    auth: TokenAuthority

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.auth.issue(who)}"}

    async def call(
        self, who: str | None, method: str, path: str, body: Any = None
    ) -> httpx.Response:
        headers = self.headers(who) if who else {}
        async with httpx.AsyncClient(base_url=self.base) as c:
            return await c.request(method, path, json=body, headers=headers)


def uid() -> str:
    return str(uuid.uuid4())


def kinds(db: str, org: str) -> list[tuple[str, str | None]]:
    with psycopg.connect(db) as c:
        rows = c.execute(
            "select kind, subject from public.audit_events where org_id = %s order by seq", (org,)
        ).fetchall()
    return [(str(k), s) for k, s in rows]


async def create(api: Api, who: str, name: str = "Team A") -> str:
    r = await api.call(who, "POST", "/v1/orgs", {"name": name})
    assert r.status_code == 201, r.text
    org = r.json()["org"]
    assert org["role"] == "owner" and org["name"] == name and org["audit_retention_days"] == 365
    return str(org["id"])


async def test_owner_manages_members_and_every_change_is_audited(api: Api) -> None:
    alice, amy, ann = uid(), uid(), uid()
    org = await create(api, alice)
    r = await api.call(alice, "POST", f"/v1/orgs/{org}/members", {"user_id": amy})
    assert r.status_code == 201 and r.json()["member"]["role"] == "member"
    r = await api.call(alice, "POST", f"/v1/orgs/{org}/members", {"user_id": ann, "role": "admin"})
    assert r.status_code == 201
    r = await api.call(alice, "PATCH", f"/v1/orgs/{org}/members/{amy}", {"role": "admin"})
    assert r.status_code == 200 and r.json()["member"]["role"] == "admin"
    r = await api.call(alice, "DELETE", f"/v1/orgs/{org}/members/{ann}")
    assert r.status_code == 200 and r.json()["member"]["removed_at"] is not None
    r = await api.call(amy, "GET", f"/v1/orgs/{org}/members")
    members = {m["user_id"]: m for m in r.json()["members"]}
    assert members[alice]["role"] == "owner" and members[amy]["role"] == "admin"
    assert members[ann]["removed_at"] is not None and not members[ann]["seat_active"]
    r = await api.call(amy, "GET", "/v1/orgs")
    assert [(o["id"], o["role"]) for o in r.json()["orgs"]] == [(org, "admin")]
    assert kinds(api.db, org) == [
        # the owner row is inserted (and audited by its trigger) before org.created
        ("member.added", alice),
        ("org.created", org),
        ("member.added", amy),
        ("member.added", ann),
        ("member.role_changed", amy),
        ("member.removed", ann),
    ]
    # a removed member comes back through the same row
    r = await api.call(amy, "POST", f"/v1/orgs/{org}/members", {"user_id": ann})
    assert r.status_code == 201 and r.json()["member"]["removed_at"] is None
    assert (await verify_database(api.db)).ok


async def test_members_and_other_tenants_are_refused(api: Api) -> None:
    alice, amy, bob = uid(), uid(), uid()
    org = await create(api, alice)
    other = await create(api, bob, "Team B")
    await api.call(alice, "POST", f"/v1/orgs/{org}/members", {"user_id": amy})
    before = kinds(api.db, org)
    # a member: reads, but may not manage
    r = await api.call(amy, "POST", f"/v1/orgs/{org}/members", {"user_id": uid()})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = await api.call(amy, "PATCH", f"/v1/orgs/{org}/members/{amy}", {"role": "owner"})
    assert r.status_code == 403
    r = await api.call(amy, "DELETE", f"/v1/orgs/{org}/members/{alice}")
    assert r.status_code == 403
    # another tenant, and an organisation that does not exist, look alike: 404
    for path in (f"/v1/orgs/{org}", f"/v1/orgs/{org}/members", f"/v1/orgs/{org}/projects"):
        r = await api.call(bob, "GET", path)
        assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = await api.call(bob, "POST", f"/v1/orgs/{org}/members", {"user_id": bob, "role": "owner"})
    assert r.status_code == 404
    r = await api.call(bob, "GET", f"/v1/orgs/{uuid.uuid4()}/members")
    assert r.status_code == 404
    r = await api.call(bob, "GET", "/v1/orgs/not-a-uuid/members")
    assert r.status_code == 404
    # an admin cannot make owners
    r = await api.call(alice, "PATCH", f"/v1/orgs/{org}/members/{amy}", {"role": "admin"})
    r = await api.call(amy, "POST", f"/v1/orgs/{org}/members", {"user_id": uid(), "role": "owner"})
    assert r.status_code == 403
    r = await api.call(bob, "GET", f"/v1/orgs/{other}")
    assert r.status_code == 200 and r.json()["org"]["role"] == "owner"
    assert kinds(api.db, org) == [*before, ("member.role_changed", amy)]


async def test_the_last_owner_stays(api: Api) -> None:
    alice, amy = uid(), uid()
    org = await create(api, alice)
    r = await api.call(alice, "PATCH", f"/v1/orgs/{org}/members/{alice}", {"role": "admin"})
    assert r.status_code == 409 and r.json()["error"] == "last_owner"
    r = await api.call(alice, "DELETE", f"/v1/orgs/{org}/members/{alice}")
    assert r.status_code == 409
    await api.call(alice, "POST", f"/v1/orgs/{org}/members", {"user_id": amy, "role": "owner"})
    r = await api.call(alice, "DELETE", f"/v1/orgs/{org}/members/{alice}")
    assert r.status_code == 200
    # and nothing of the refused attempts was recorded as done
    assert [k for k, _ in kinds(api.db, org)] == [
        "member.added", "org.created", "member.added", "member.removed",
    ]  # fmt: skip


async def test_bad_tokens_and_bad_input(api: Api) -> None:
    alice = uid()
    org = await create(api, alice)
    r = await api.call(None, "GET", "/v1/orgs")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    async with httpx.AsyncClient(base_url=api.base) as c:
        r = await c.get("/v1/orgs", headers={"Authorization": "Bearer not.a.jwt"})
        assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
        r = await c.post(
            f"/v1/orgs/{org}/members", content=b"{not json", headers=api.headers(alice)
        )
        assert r.status_code == 400
        r = await c.post(f"/v1/orgs/{org}/members", content=b"[1]", headers=api.headers(alice))
        assert r.status_code == 400
    r = await api.call(alice, "POST", f"/v1/orgs/{org}/members", {"user_id": "bob"})
    assert r.status_code == 422
    r = await api.call(alice, "POST", f"/v1/orgs/{org}/members", {"user_id": uid(), "role": "god"})
    assert r.status_code == 422
    r = await api.call(alice, "POST", f"/v1/orgs/{org}/members", {"user_id": alice})
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    r = await api.call(alice, "POST", "/v1/orgs", {"name": ""})
    assert r.status_code == 422
    r = await api.call(alice, "POST", "/v1/orgs", {"name": "x" * 201})
    assert r.status_code == 422
    r = await api.call(alice, "PUT", f"/v1/orgs/{org}/members/{alice}", {"role": "owner"})
    assert r.status_code == 405
    with psycopg.connect(api.db) as c:
        failed = c.execute(
            "select count(*) from public.audit_events where kind = 'auth.failed'"
            " and subject = 'admin-api'"
        ).fetchone()
    assert failed == (1,)


async def test_cli_on_the_api(
    api: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    alice, amy = uid(), uid()
    token_file = tmp_path / "token"
    token_file.write_text(api.auth.issue(alice))
    base = ["--engine", api.base, "--token-file", str(token_file)]

    # the CLI is synchronous; the server runs on this loop, so the CLI runs in a thread
    assert await asyncio.to_thread(main, ["admin", "orgs", "create", "Team", *base]) == 0
    org = capsys.readouterr().out.split()[1]
    assert await asyncio.to_thread(main, ["admin", "members", "add", org, amy, *base]) == 0
    assert (
        await asyncio.to_thread(main, ["admin", "members", "role", org, amy, "admin", *base]) == 0
    )
    assert await asyncio.to_thread(main, ["admin", "members", "list", org, *base]) == 0
    out = capsys.readouterr().out
    assert f"{alice}  owner" in out and f"{amy}  admin" in out
    assert await asyncio.to_thread(main, ["admin", "projects", "list", org, *base]) == 0
    assert await asyncio.to_thread(main, ["admin", "members", "remove", org, alice, *base]) == 1
    assert "409" in capsys.readouterr().err
    # the token from VOCO_TOKEN, refused as a member would be
    monkeypatch.setenv("VOCO_TOKEN", api.auth.issue(amy))
    argv = ["admin", "members", "remove", org, alice, "--engine", api.base]
    assert await asyncio.to_thread(main, argv) == 1
    assert "403" in capsys.readouterr().err
    monkeypatch.delenv("VOCO_TOKEN")
    assert await asyncio.to_thread(main, ["admin", "orgs", "list", "--engine", api.base]) == 2
    assert "VOCO_TOKEN" in capsys.readouterr().err


async def test_a_slow_request_body_holds_no_database_transaction(api: Api) -> None:
    """A client that sends its body slowly (or never finishes it) must not
    hold a pooled connection inside a transaction while it does: a few such
    requests would otherwise take the engine's pool, and their open
    transactions any lock they had taken."""
    who = uid()
    host, port = api.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = b'{"name": "Slow team"}'
    writer.write(
        b"POST /v1/orgs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {api.auth.issue(who)}\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:5]
    )
    try:
        await writer.drain()
        await asyncio.sleep(1.0)  # the server has the headers and part of the body
        with psycopg.connect(api.db) as c:
            row = c.execute(
                "select count(*) from pg_stat_activity where datname = current_database()"
                " and state like 'idle in transaction%'"
            ).fetchone()
        assert row is not None and row[0] == 0
        writer.write(body[5:])  # the rest: the request is served as usual
        await writer.drain()
        status = (await asyncio.wait_for(reader.readline(), 30)).decode()
        assert " 201 " in status
    finally:
        writer.close()
