from __future__ import annotations

import asyncio

import pytest

from tests.store.pgtools import fresh_database
from voco.store.embedded import EmbeddedPostgres
from voco.store.migrate import migrate_url


@pytest.fixture
def db(pg: EmbeddedPostgres) -> str:
    """A fresh, migrated database per test (two tenants are built in it by each test)."""
    url = fresh_database(pg.url)
    asyncio.run(migrate_url(url))
    return url
