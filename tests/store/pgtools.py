"""Real PostgreSQL for the tests: one embedded server fixture (``pg``, imported by
the conftests and test modules that need it), its directory, fresh databases."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest
from psycopg import AsyncConnection, conninfo, pq
from psycopg.rows import DictRow

from voco.store.embedded import EmbeddedPostgres, start_embedded


@contextlib.contextmanager
def server_dir() -> Iterator[Path]:
    """A directory for a data dir, outside pytest's ``tmp_path``.

    As root, pgserver runs postgres as the user ``pgserver``, which must be
    able to traverse every ancestor of the data dir; pgserver opens them up at
    start, but every pytest run (a teammate's, or an xdist worker) resets
    ``/tmp/pytest-of-root`` to 0700 and prunes old run directories, which
    would lock the server out of its own data.
    """
    path = Path(tempfile.mkdtemp(prefix="voco-pg-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def fresh_database(url: str) -> str:
    """A new, empty database on the server at ``url``; its URL."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"create database {name}")
    return conninfo.make_conninfo(url, dbname=name)


@pytest.fixture(scope="session")
def pg() -> Iterator[EmbeddedPostgres]:
    """One embedded server per importing directory for the run (starts in ~1 s);
    tests take fresh databases on it, so they share nothing else."""
    with server_dir() as d:
        server = start_embedded(d / "pgdata")
        try:
            yield server
        finally:
            server.stop()


class TracedConnection(AsyncConnection[DictRow]):
    """A pool connection whose libpq protocol trace can be switched on, so the
    bench and the tests count round trips (sync points: ``Sync`` / simple ``Query``
    messages) and statements — figures a loaded machine cannot distort."""

    live: ClassVar[list[TracedConnection]] = []
    trace_dir: ClassVar[Path | None] = None

    @classmethod
    async def connect(cls, *args: Any, **kw: Any) -> Any:  # type: ignore[override]
        conn = await super().connect(*args, **kw)
        cls.live.append(conn)
        if cls.trace_dir is not None:
            conn._start_trace()
        return conn

    def _start_trace(self) -> None:
        assert self.trace_dir is not None
        self._trace = open(self.trace_dir / f"{uuid.uuid4().hex}.trace", "w")  # noqa: SIM115
        self.pgconn.trace(self._trace.fileno())
        self.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    @classmethod
    def start(cls, d: Path) -> None:
        cls.trace_dir = d
        for c in cls.live:
            if not c.closed:
                c._start_trace()

    @classmethod
    def stop(cls) -> tuple[int, int]:
        """(round trips, statements) since :meth:`start`. A round trip is
        the client sending and then reading the server's answer — each
        turn from frontend to backend messages in a connection's trace, so
        a pipeline's ``Flush`` answered before its ``Sync`` counts too."""
        d, cls.trace_dir = cls.trace_dir, None
        for c in cls.live:
            if not c.closed and hasattr(c, "_trace"):
                c.pgconn.untrace()
                c._trace.close()
        trips = stmts = 0
        assert d is not None
        for f in d.glob("*.trace"):
            if os.environ.get("VOCO_TRACE_DUMP"):
                print(f.read_text())
            prev = ""
            for line in f.read_text().splitlines():
                parts = line.split()
                if len(parts) > 2:
                    trips += parts[0] == "B" and prev == "F"
                    stmts += parts[0] == "F" and parts[2] in ("Execute", "Query")
                    prev = parts[0]
            f.unlink()
        return trips, stmts
