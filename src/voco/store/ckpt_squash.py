"""One flush's intermediate checkpoints folded into its last one.

Why: LangGraph checkpoints after every super-step, so a text turn's run
records ~5 checkpoints, their channel blobs and ~12 pending writes — ~21 rows
and ~10 kB of JSON, of which only the last checkpoint is ever read again
(Voco resumes a thread from its latest state and never time-travels). The
saver already sends them only when the run ends (or its timed flush fires),
so the intermediate states were never durable on their own: a crash before
the flush loses all of them alike. Writing only the last state is therefore
the same durability with ~4 rows instead of ~21 — LangGraph's own
``durability="exit"`` trade, applied per flush so the timed flush (an action
awaiting approval) still persists the state reached so far.

What is kept, per (thread, namespace) with more than one checkpoint here:

* the newest checkpoint (LangGraph's ids sort by time; its ``aget_tuple``
  reads ``order by checkpoint_id desc``), re-parented onto the chain's first
  parent outside this flush, so history stays one linked chain;
* every blob the newest checkpoint's ``channel_versions`` names, and any blob
  no dropped checkpoint names (never guess what is unused);
* pending writes of every checkpoint that is not dropped.

Refused (the ops go out unchanged) for anything this cannot prove safe: SQL
it does not recognise, checkpoints that do not form one chain (a fork), or
``DeltaChannel`` state (metadata ``counters_since_delta_snapshot``), which is
rebuilt by replaying every ancestor's writes. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from voco.store.ckpt_merge import Op

Key = tuple[Any, Any]  # (thread_id, checkpoint_ns)


def _rows(op: Op) -> list[Sequence[Any]]:
    _, params, many = op
    return list(params) if many else [params]


def _obj(value: Any) -> Any:
    """The Python value inside psycopg's ``Jsonb`` wrapper, else None."""
    return getattr(value, "obj", None)


Found = tuple[set[Any], dict[Key, Any], dict[Key, dict[str, Any]]]


def _doomed(ckpts: list[Sequence[Any]]) -> Found | None:
    """(ids to drop, new parent of each key's newest, newest's channel
    versions per key), or None when the rows cannot be squashed safely."""
    by_key: dict[Key, dict[Any, Sequence[Any]]] = {}
    last: dict[tuple[Key, Any], Sequence[Any]] = {}
    for row in ckpts:
        key = (row[0], row[1])
        by_key.setdefault(key, {}).setdefault(row[2], row)  # first row: its parent
        last[(key, row[2])] = row  # last row: its checkpoint and metadata
    dropped: set[Any] = set()
    parents: dict[Key, Any] = {}
    versions: dict[Key, dict[str, Any]] = {}
    for key, ids in by_key.items():
        for cid in ids:
            meta, body = _obj(last[(key, cid)][5]), _obj(last[(key, cid)][4])
            if not isinstance(meta, dict) or not isinstance(body, dict):
                return None
            if meta.get("counters_since_delta_snapshot"):
                return None  # delta channels replay ancestors' writes
        if len(ids) < 2:
            continue
        newest = max(ids)
        chain, parent = {newest}, ids[newest][3]
        while parent in ids and parent not in chain:
            chain.add(parent)
            parent = ids[parent][3]
        if parent in ids or chain != set(ids):
            return None  # not one chain: a cycle, or a fork
        channel_versions = _obj(last[(key, newest)][4]).get("channel_versions")
        if not isinstance(channel_versions, dict):
            return None
        dropped |= chain - {newest}
        parents[key] = parent
        versions[key] = channel_versions
    return dropped, parents, versions


def squash(ops: Sequence[Op], known: dict[str, tuple[str, bool]]) -> list[Op]:
    """``ops`` with each (thread, namespace)'s intermediate checkpoints, the
    blobs only they name and their pending writes left out (module doc).
    ``known``: :func:`voco.store.ckpt_merge.recognise`'s map."""
    tables: dict[str, list[Sequence[Any]]] = {}
    for op in ops:
        what = known.get(op[0])
        if what is None:
            return list(ops)
        tables.setdefault(what[0], []).extend(_rows(op))
    found = _doomed(tables.get("checkpoints", []))
    if found is None or not found[0]:
        return list(ops)
    dropped, parents, versions = found
    named_by_dropped: set[tuple[Any, ...]] = set()
    for row in tables["checkpoints"]:
        if row[2] in dropped:
            for channel, version in (_obj(row[4]).get("channel_versions") or {}).items():
                named_by_dropped.add((row[0], row[1], channel, str(version)))

    def keep(table: str, row: Sequence[Any]) -> bool:
        if table == "checkpoints" or table == "checkpoint_writes":
            return bool(row[2] not in dropped)
        blob = (row[0], row[1], row[2], str(row[3]))
        newest = versions.get((row[0], row[1]), {})
        return blob not in named_by_dropped or str(newest.get(row[2])) == blob[3]

    out: list[Op] = []
    for query, params, many in ops:
        table = known[query][0]
        rows = [
            _reparent(row, parents) if table == "checkpoints" else row
            for row in _rows((query, params, many))
            if keep(table, row)
        ]
        if rows:
            out.append((query, rows, True) if many else (query, rows[0], False))
    return out


def _reparent(row: Sequence[Any], parents: dict[Key, Any]) -> Sequence[Any]:
    key = (row[0], row[1])
    if key not in parents:
        return row
    return (*row[:3], parents[key], *row[4:])
