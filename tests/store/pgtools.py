"""Real PostgreSQL for the tests: one embedded server fixture (``pg``, imported by
the conftests and test modules that need it), its directory, fresh databases."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo

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
