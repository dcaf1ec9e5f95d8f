"""Run an ASGI app on 127.0.0.1 inside the current event loop.

Used by ``voco demo``, ``voco up``, ``voco local`` and the tests, which all
need a real server on loopback for the span of a block, started and stopped
in-process rather than through a subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from voco.protocol.connection import MAX_WS_FRAME


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(app: Any, port: int = 0, **options: Any) -> AsyncIterator[int]:
    """Serve ``app`` on 127.0.0.1 for the duration of the block; yields the port.

    ``options`` are further ``uvicorn.Config`` settings (the engine passes its
    keepalive, see :func:`voco.engine.server.uvicorn_options`)."""
    port = port or free_port()
    settings: dict[str, Any] = {"ws": "websockets-sansio", "ws_max_size": MAX_WS_FRAME}
    settings.update(options)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **settings
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start (port taken, app failed)
            raise RuntimeError("server stopped before it started")
        await asyncio.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        await task
