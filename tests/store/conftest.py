from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.store.pgtools import server_dir
from voco.store.embedded import EmbeddedPostgres, start_embedded


@pytest.fixture(scope="session")
def pg() -> Iterator[EmbeddedPostgres]:
    """One embedded server for the whole run (it starts once, ~1 s)."""
    with server_dir() as d:
        server = start_embedded(d / "pgdata")
        try:
            yield server
        finally:
            server.stop()
