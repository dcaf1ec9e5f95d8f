from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.store.pgtools import fresh_database, server_dir
from voco.store.embedded import EmbeddedPostgres, start_embedded
from voco.store.migrate import migrate_url


@pytest.fixture(scope="session")
def pg() -> Iterator[EmbeddedPostgres]:
    """One embedded server for the admin tests (roles are per server, so tests
    that change a role's attributes put them back)."""
    with server_dir() as d:
        server = start_embedded(d / "pgdata")
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def db(pg: EmbeddedPostgres) -> str:
    """A fresh, migrated database per test (two tenants are built in it by each test)."""
    url = fresh_database(pg.url)
    asyncio.run(migrate_url(url))
    return url
