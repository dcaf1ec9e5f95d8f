from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from tests.admin.test_api import Api
from tests.store.pgtools import fresh_database
from voco.auth.tokens import TokenAuthority
from voco.engine.runtime import EngineRuntime
from voco.engine.server import create_app
from voco.serving import serving
from voco.store import open_store
from voco.store.embedded import EmbeddedPostgres
from voco.store.migrate import migrate_url


@pytest.fixture
def db(pg: EmbeddedPostgres) -> str:
    """A fresh, migrated database per test (two tenants are built in it by each test)."""
    url = fresh_database(pg.url)
    asyncio.run(migrate_url(url))
    return url


@pytest.fixture
async def api(db: str) -> AsyncIterator[Api]:
    auth = TokenAuthority()
    async with open_store(db) as store:
        none = cast(Any, None)  # the admin API uses only the verifier and the store
        rt = EngineRuntime(
            vad=none, stt=none, tts=none, llm=none, graph=none, auth=auth,
            tenants=store.tenants, turn_config=none,
        )  # fmt: skip
        async with serving(create_app(rt)) as port:
            yield Api(f"http://127.0.0.1:{port}", db, auth)
