"""One run's recorded checkpoint writes as a single SQL statement.

Why: a text turn's graph run records ~25 row writes (blobs, checkpoints,
pending writes — LangGraph's own statements, see :mod:`voco.store.checkpoints`).
Sent as a pipelined transaction they are one round trip, but still ~25
statements, each with its own Bind/Execute, executor start-up and client-side
bookkeeping in psycopg — most of what was left of the per-turn checkpoint
cost. Here they become one ``insert … select from unnest(…)`` per table,
joined as data-modifying CTEs into one statement, with the run lease's
release as one more CTE: one statement, its own (autocommit) transaction, so
still all-or-nothing.

It must write exactly the rows LangGraph's statements, run one after another,
would have written. Each of its statements is an upsert on the table's primary
key, so per key, what the sequence leaves behind is:

* ``ON CONFLICT DO NOTHING`` only: the first row (or the row already there);
* any ``DO UPDATE``: the first row's other columns (or the existing row's),
  with the updated columns from the *last* ``DO UPDATE``.

:func:`merge` folds the recorded rows to that per key (one statement may not
touch a key twice), and the merged rows go out with ``DO UPDATE`` where any
recorded one had it. Pure: no I/O; it only recognises LangGraph's SQL by the
saver's own constants, and returns ``None`` for anything else, so the caller
falls back to sending the statements as recorded (a LangGraph upgrade that
changes its SQL costs speed, never correctness).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Op = tuple[str, Sequence[Any], bool]  # (sql, params, executemany)
Statement = tuple[str, Any]


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]  # array element types for unnest
    key: tuple[int, ...]  # positions of the primary key columns
    updated: tuple[int, ...]  # positions set by the DO UPDATE flavour


_BLOBS = _Table(
    "checkpoint_blobs",
    ("thread_id", "checkpoint_ns", "channel", "version", "type", "blob"),
    ("text", "text", "text", "text", "text", "bytea"),
    (0, 1, 2, 3),
    (),
)
_CHECKPOINTS = _Table(
    "checkpoints",
    ("thread_id", "checkpoint_ns", "checkpoint_id", "parent_checkpoint_id", "checkpoint",
     "metadata"),
    ("text", "text", "text", "text", "jsonb", "jsonb"),
    (0, 1, 2),
    (4, 5),
)  # fmt: skip
_WRITES = _Table(
    "checkpoint_writes",
    ("thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "task_path", "idx", "channel",
     "type", "blob"),
    ("text", "text", "text", "text", "text", "int4", "text", "text", "bytea"),
    (0, 1, 2, 3, 5),
    (6, 7, 8),
)  # fmt: skip


@dataclass
class _Merged:
    row: list[Any]
    update: bool


@dataclass
class _Rows:
    by_key: dict[tuple[Any, ...], _Merged] = field(default_factory=dict)

    def add(self, table: _Table, row: Sequence[Any], update: bool) -> None:
        if len(row) != len(table.columns):
            raise ValueError(f"{table.name}: expected {len(table.columns)} values")
        key = tuple(row[i] for i in table.key)
        have = self.by_key.get(key)
        if have is None:
            self.by_key[key] = _Merged(list(row), update)
        elif update:
            for i in table.updated:
                have.row[i] = row[i]
            have.update = True


# The statements this module can stand in for, whitespace-normalised, as
# langgraph-checkpoint-postgres writes them. A different text (an upgrade) is
# simply not recognised: those ops are sent as recorded.
_EXPECTED = {
    "INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING": ("checkpoint_blobs",
                                                                            False),
    "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,"
    " checkpoint, metadata) VALUES (%s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)"
    " DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata;": (
        "checkpoints", True),
    "INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path,"
    " idx, channel, type, blob) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)"
    " DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob;": (
        "checkpoint_writes", True),
    "INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path,"
    " idx, channel, type, blob) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING": (
        "checkpoint_writes", False),
}  # fmt: skip


def recognise(statements: Sequence[str]) -> dict[str, tuple[str, bool]]:
    """Of the saver's SQL strings, those :func:`merge` can stand in for:
    each mapped to (table, whether it is the ``DO UPDATE`` flavour)."""
    known = {}
    for query in statements:
        what = _EXPECTED.get(" ".join(query.split()))
        if what is not None:
            known[query] = what
    return known


def merge(
    ops: Sequence[Op], known: dict[str, tuple[str, bool]], release: Statement | None = None
) -> Statement | None:
    """``ops`` (and ``release``, a DML statement run last) as one statement.

    ``known`` is :func:`recognise`'s map. ``None`` if an op is not in it."""
    tables = {t.name: t for t in (_BLOBS, _CHECKPOINTS, _WRITES)}
    rows = {name: _Rows() for name in tables}
    for query, params, many in ops:
        what = known.get(query)
        if what is None:
            return None
        name, update = what
        for row in params if many else [params]:
            rows[name].add(tables[name], row, update)
    ctes: list[str] = []
    args: list[Any] = []
    for name, table in tables.items():
        for update in (False, True):
            merged = [m.row for m in rows[name].by_key.values() if m.update is update]
            if merged:
                ctes.append(f"w{len(ctes)} as ({_upsert(table, update)})")
                args.extend(list(col) for col in zip(*merged, strict=True))
    if release is not None:
        ctes.append(f"w{len(ctes)} as ({release[0]})")
        args.extend(release[1])
    if not ctes:
        return None
    return "with " + ", ".join(ctes) + " select 1", args


def _upsert(table: _Table, update: bool) -> str:
    cols = ", ".join(table.columns)
    # %b: binary parameters — arrays of text or bytea in text format are
    # escaped element by element (regular expressions), in binary not at all
    arrays = ", ".join(f"%b::{t}[]" for t in table.types)
    key = ", ".join(table.columns[i] for i in table.key)
    action = (
        "do update set " + ", ".join(f"{table.columns[i]} = excluded.{table.columns[i]}"
                                     for i in table.updated)
        if update
        else "do nothing"
    )  # fmt: skip
    # names from the constants above, never from data: values are all parameters
    return (
        f"insert into {table.name} ({cols}) select * from unnest({arrays})"  # noqa: S608
        f" on conflict ({key}) {action}"
    )
