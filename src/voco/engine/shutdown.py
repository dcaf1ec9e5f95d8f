"""The engine's bounded shutdown: drain live responses, say ``going_away``,
close, exit — each step with its own bound.

Apart from :mod:`voco.engine.server` (the per-connection adapter) because it
acts on all connections at once and on uvicorn's server, not on one socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from typing import TYPE_CHECKING, Any

import uvicorn

from voco.engine.admission import Admission

if TYPE_CHECKING:
    from voco.engine.server import Handler

log = logging.getLogger("voco.server")


async def drain(live: set[Handler], timeout_s: float) -> list[str]:
    """Wait up to ``timeout_s`` for every live response to finish; return what
    is still running (the caller cuts it). Sessions stay open meanwhile, so a
    reply in progress is heard to its end when it can be."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s

    def busy() -> list[str]:
        return [h.session.describe() for h in live if h.session is not None and h.session.busy()]

    if pending := busy():
        log.warning(
            "shutdown: draining %d live response(s) for up to %.1f s", len(pending), timeout_s
        )
    # a response ends on many paths (played out is a clock deadline): poll coarsely
    while (pending := busy()) and loop.time() < end:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    return pending


class EngineServer(uvicorn.Server):
    """uvicorn with a bounded shutdown: stop accepting, drain live responses,
    then close every socket (1012) and cancel what does not end, then exit.

    Bounds (``EngineConfig.shutdown_s`` = T): drain ≤ T/2, cancel ≤ T/4 (uvicorn's
    ``timeout_graceful_shutdown``), models and store ≤ T/4.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        live: set[Handler],
        shutdown_s: float,
        admission: Admission | None = None,
    ) -> None:
        config.timeout_graceful_shutdown = max(1, math.ceil(shutdown_s / 4))  # uvicorn: int
        super().__init__(config)
        self._live_handlers = live
        self._drain_s = shutdown_s / 2
        self._admission = admission

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        if self._admission is not None:  # readiness 503 and session.start 4503 at once
            self._admission.begin_drain()
        for server in self.servers:  # no new sessions while draining
            server.close()
        log.warning("shutdown: %d open session(s)", len(self._live_handlers))
        for cut in await drain(self._live_handlers, self._drain_s):
            log.warning("shutdown: cut %s", cut)
        open_ = [h for h in self._live_handlers if h.session is not None]
        if open_:  # say why before closing, so clients reconnect (elsewhere) at once
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await asyncio.gather(*(h.going_away() for h in open_))
        await super().shutdown(sockets)
        log.warning("shutdown: done")
