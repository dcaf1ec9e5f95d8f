"""``voco audit verify --database``: check every organisation's hash chain.

Each ``audit_events`` row carries the previous row's hash and its own, the
SHA-256 of ``public.audit_payload(...)`` (see the tenants migration). The
verifier recomputes every hash here, in Python, from the stored columns, and
checks that sequence numbers run 1, 2, 3 … without gaps and that each row
links to the one before. So an edited row (its hash no longer matches), a
deleted one (a gap, and the next row's link breaks), reordered rows (links
break) and an inserted one (a duplicate or out-of-place number, a bad link or
hash) are each found and named by organisation and sequence number.

Retention (``public.audit_purge``) removes a prefix of a chain and first
appends a ``retention.checkpoint`` row naming the purged range and the hash
of the last purged row; a chain that does not start at 1 is accepted only if
its newest checkpoint says it was purged up to exactly the row before the
first remaining one, and that row links to the recorded hash.

It reads as the connecting role, which must see every row (the table owner or
a superuser: verification is an operator's job across tenants).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

GENESIS = "0" * 64

_ROWS = """
select org_id::text as org, seq, prev_hash, hash, kind, detail,
       concat_ws('|', %s::text, org_id::text, seq::text,
                 to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                 coalesce(actor::text, ''), kind, coalesce(subject, ''), detail::text) as body
from public.audit_events order by org_id, seq
"""


@dataclass(frozen=True)
class Problem:
    org: str
    seq: int
    what: str

    def __str__(self) -> str:
        return f"org {self.org} seq {self.seq}: {self.what}"


@dataclass(frozen=True)
class VerifyResult:
    rows: int
    orgs: int
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_chain(org: str, rows: list[dict[str, Any]]) -> list[Problem]:
    """Problems in one organisation's rows (ordered by ``seq``). ``body`` is
    the row's hash input with an empty placeholder where ``prev_hash`` goes."""
    problems: list[Problem] = []
    prev_hash = GENESIS
    expected_seq = 1
    anchor = _purge_anchor(rows)
    if rows and anchor is not None and int(rows[0]["seq"]) == anchor[0] + 1:
        expected_seq, prev_hash = anchor[0] + 1, anchor[1]
    for r in rows:
        seq = int(r["seq"])
        if seq != expected_seq:
            what = (
                f"rows {expected_seq}..{seq - 1} are missing (deleted)"
                if seq > expected_seq
                else "out of sequence (inserted or reordered)"
            )
            problems.append(Problem(org, seq, what))
        if r["prev_hash"] != prev_hash:
            problems.append(
                Problem(
                    org, seq, "does not link to the row before it (deleted, inserted or reordered)"
                )
            )
        body = r["prev_hash"] + str(r["body"])
        if hashlib.sha256(body.encode("utf-8")).hexdigest() != r["hash"]:
            problems.append(Problem(org, seq, "hash does not match its contents (edited)"))
        prev_hash = r["hash"]
        expected_seq = seq + 1
    return problems


def _purge_anchor(rows: list[dict[str, Any]]) -> tuple[int, str] | None:
    """(last purged seq, its hash) from the newest retention checkpoint."""
    for r in reversed(rows):
        if r.get("kind") == "retention.checkpoint":
            d = r.get("detail")
            if isinstance(d, dict) and isinstance(d.get("purged_to"), int):
                return int(d["purged_to"]), str(d.get("last_hash", ""))
    return None


async def verify_database(url: str) -> VerifyResult:
    async with await AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        # the placeholder: prev_hash is prepended in Python, so the concat
        # starts with an empty first element and its separator
        cur = await conn.execute(_ROWS, ("",))
        rows = await cur.fetchall()
    by_org: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_org.setdefault(str(r["org"]), []).append(r)
    problems = [p for org, rs in by_org.items() for p in check_chain(org, rs)]
    return VerifyResult(len(rows), len(by_org), problems)
