"""``voco admin …``: the org admin API's client, and the operator tools.

``orgs``/``members``/``projects`` talk HTTP to the engine's ``/v1/orgs``
(the token from ``--token-file`` or ``VOCO_TOKEN``), so the CLI can do
exactly what the API — and RLS behind it — allows the token's user.
``controls``, ``evidence``, ``delete-user`` and ``purge-audit`` work on the
database directly (``--database URL``, else ``VOCO_DATABASE_URL``, else the
embedded server), as the operator.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

DEFAULT_ENGINE = "http://127.0.0.1:8765"


class CliError(Exception):
    """Printed as ``voco admin: …`` with exit status 1 (2 for usage)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _token(args: argparse.Namespace) -> str:
    if args.token_file:
        try:
            token = Path(args.token_file).read_text().strip()
        except OSError as exc:
            raise CliError(f"cannot read --token-file: {exc.strerror}", 2) from None
    else:
        token = os.environ.get("VOCO_TOKEN", "").strip()
    if not token:
        raise CliError("no access token: set VOCO_TOKEN or pass --token-file FILE", 2)
    return token


def _base(engine: str) -> str:
    base = engine.rstrip("/")
    if base.startswith("ws://"):
        base = "http://" + base[5:]
    elif base.startswith("wss://"):
        base = "https://" + base[6:]
    return base.removesuffix("/v1/session")


def call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    import httpx

    headers = {"Authorization": f"Bearer {_token(args)}"}
    try:
        r = httpx.request(
            method, _base(args.engine) + path, json=body, headers=headers, timeout=30.0
        )
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach the engine at {args.engine}: {exc}") from None
    try:
        payload = r.json()
    except ValueError:
        payload = None
    if r.status_code >= 400:
        msg = payload.get("message") if isinstance(payload, dict) else None
        raise CliError(f"{r.status_code}: {msg or r.text[:200]}")
    return payload


def _print(args: argparse.Namespace, value: Any, lines: Callable[[Any], list[str]]) -> None:
    if args.json:
        print(json.dumps(value, indent=2))
    else:
        print("\n".join(lines(value)))


def _member_lines(m: dict[str, Any]) -> str:
    state = "removed " + str(m["removed_at"]) if m["removed_at"] else "active"
    return f"{m['user_id']}  {m['role']:<6}  {state}"


def _api(args: argparse.Namespace) -> int:
    cmd, org = args.admin_cmd, getattr(args, "org", None)
    if cmd == "orgs" and args.orgs_cmd == "create":
        out = call(args, "POST", "/v1/orgs", {"name": args.name})
        _print(args, out, lambda v: [f"created {v['org']['id']}  {v['org']['name']} (owner)"])
    elif cmd == "orgs":
        out = call(args, "GET", "/v1/orgs")
        _print(args, out, lambda v: [f"{o['id']}  {o['role']:<6}  {o['name']}" for o in v["orgs"]])
    elif cmd == "members":
        mc = args.members_cmd
        if mc == "list":
            out = call(args, "GET", f"/v1/orgs/{org}/members")
            _print(args, out, lambda v: [_member_lines(m) for m in v["members"]])
            return 0
        if mc == "add":
            out = call(args, "POST", f"/v1/orgs/{org}/members",
                       {"user_id": args.user, "role": args.role})  # fmt: skip
        elif mc == "remove":
            out = call(args, "DELETE", f"/v1/orgs/{org}/members/{args.user}")
        else:
            out = call(args, "PATCH", f"/v1/orgs/{org}/members/{args.user}", {"role": args.role})
        _print(args, out, lambda v: [_member_lines(v["member"])])
    else:  # projects list
        out = call(args, "GET", f"/v1/orgs/{org}/projects")
        _print(args, out, lambda v: [f"{p['id']}  {p['created_at']}" for p in v["projects"]])
    return 0


def _since(value: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"--since must be a date (YYYY-MM-DD), got {value!r}", 2) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


async def _controls(url: str, args: argparse.Namespace) -> int:
    from voco.admin.controls import render, run_controls

    controls = await run_controls(url)
    if args.json:
        print(json.dumps([c.as_dict() for c in controls], indent=2))
    else:
        print(render(controls))
    return 0 if all(c.ok for c in controls) else 1


async def _evidence(url: str, args: argparse.Namespace) -> int:
    from voco.admin.evidence import build_evidence

    bundle = await build_evidence(url, args.org, _since(args.since))
    text = json.dumps(bundle, indent=2, default=str)
    if args.out:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        print(f"evidence for {args.org} written to {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


async def _delete_user(url: str, args: argparse.Namespace) -> int:
    from voco.admin.lifecycle import delete_user

    d = await delete_user(url, args.user)
    print(
        f"deleted user {d.user}: {d.threads} threads, {d.turns} turns, {d.tool_actions} tool"
        f" actions, {d.checkpoints} checkpoints; user.deleted audited in {len(d.orgs)} org(s)"
    )
    return 0


async def _purge(url: str, args: argparse.Namespace) -> int:
    from voco.admin.lifecycle import purge_audit

    done = await purge_audit(url, args.org)
    for p in done:
        print(f"org {p.org}: purged seq {p.purged_from}..{p.purged_to} (before {p.before})")
    print(f"{len(done)} organisation(s) purged; checkpoints recorded as retention.checkpoint")
    return 0


_DB_JOBS: dict[str, Callable[[str, argparse.Namespace], Awaitable[int]]] = {
    "controls": _controls,
    "evidence": _evidence,
    "delete-user": _delete_user,
    "purge-audit": _purge,
}


def run_admin(args: argparse.Namespace) -> int:
    from voco.admin.lifecycle import LifecycleError

    try:
        if args.admin_cmd not in _DB_JOBS:
            return _api(args)
        job = _DB_JOBS[args.admin_cmd]
        return _with_database(args.database, lambda url: job(url, args))
    except CliError as exc:
        print(f"voco admin: {exc}", file=sys.stderr)
        return exc.status
    except LifecycleError as exc:
        print(f"voco admin: {exc}", file=sys.stderr)
        return 2


def _with_database(url: str | None, job: Callable[[str], Awaitable[int]]) -> int:
    from voco.store.run_on import with_database

    return with_database(url, lambda target: _migrated_then(job, target))


async def _migrated_then(job: Callable[[str], Awaitable[int]], url: str) -> int:
    import psycopg

    from voco.store.migrate import migrate_url

    try:
        await migrate_url(url)  # what the engine does at start: the schema is current
        return await job(url)
    except psycopg.Error as exc:
        raise CliError(f"database error: {str(exc).strip().splitlines()[0]}") from None


def add_admin_parser(sub: Any) -> None:
    ad = sub.add_parser("admin", help="organisation admin (over the engine API) and SOC 2 tools")
    ad.set_defaults(fn=run_admin)
    asub = ad.add_subparsers(dest="admin_cmd", required=True)

    def api(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--engine", default=DEFAULT_ENGINE, help="engine base URL")
        p.add_argument("--token-file", help="file holding the access token (else VOCO_TOKEN)")
        p.add_argument("--json", action="store_true", help="print the API's JSON")
        return p

    o = asub.add_parser("orgs", help="organisations")
    osub = o.add_subparsers(dest="orgs_cmd", required=True)
    api(osub.add_parser("list", help="your organisations"))
    api(osub.add_parser("create", help="create one; you become its owner")).add_argument(
        "name", help="the organisation's name"
    )

    me = asub.add_parser("members", help="members of an organisation")
    msub = me.add_subparsers(dest="members_cmd", required=True)
    api(msub.add_parser("list", help="members and their roles")).add_argument(
        "org", help="organisation id"
    )
    helps = {"add": "add a member", "remove": "remove a member", "role": "change a role"}
    for name in ("add", "remove", "role"):
        p = api(msub.add_parser(name, help=helps[name]))
        p.add_argument("org", help="organisation id")
        p.add_argument("user", help="the user's UUID")
        if name == "add":
            p.add_argument(
                "--role", default="member", choices=["owner", "admin", "member"],
                help="the new member's role (default: member)",
            )  # fmt: skip
        elif name == "role":
            p.add_argument("role", choices=["owner", "admin", "member"], help="the new role")

    pr = asub.add_parser("projects", help="projects of an organisation")
    psub = pr.add_subparsers(dest="projects_cmd", required=True)
    api(psub.add_parser("list", help="the organisation's projects")).add_argument(
        "org", help="organisation id"
    )

    def db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--database", help="Postgres URL (else VOCO_DATABASE_URL, else embedded)")
        return p

    c = db(asub.add_parser("controls", help="check the SOC 2 controls; non-zero exit on failure"))
    c.add_argument("--json", action="store_true", help="print the results as JSON")
    e = db(asub.add_parser("evidence", help="write an evidence bundle (JSON) for one org"))
    e.add_argument("--org", required=True, help="organisation id")
    e.add_argument("--since", required=True, help="start of the period (YYYY-MM-DD)")
    e.add_argument("--out", help="file to write (0600); default stdout")
    du = db(asub.add_parser("delete-user", help="delete a user's conversations"))
    du.add_argument("user", help="the user's UUID")
    pa = db(asub.add_parser("purge-audit", help="delete audit rows past each org's retention"))
    pa.add_argument("--org", help="only this organisation")
