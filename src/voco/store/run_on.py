"""Run one database job from the command line (``voco db``, ``audit``, ``billing``,
``admin``): the one reading of "which database" every such command shares."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

from voco.store import ENV_URL, default_pgdata


def with_database(url: str | None, job: Callable[[str], Awaitable[int]]) -> int:
    """Run ``job(url)``: the given URL, else VOCO_DATABASE_URL, else the
    embedded server in $VOCO_HOME/pgdata (started for the job, then released)."""

    async def go(target: str) -> int:
        return await job(target)

    target = url or os.environ.get(ENV_URL) or ""
    if target:
        return asyncio.run(go(target))
    from voco.store.embedded import start_embedded

    server = start_embedded(default_pgdata())
    try:
        return asyncio.run(go(server.url))
    finally:
        server.stop()
