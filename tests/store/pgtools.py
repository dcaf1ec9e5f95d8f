"""Real PostgreSQL for store tests: a server directory and fresh databases."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import conninfo


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
