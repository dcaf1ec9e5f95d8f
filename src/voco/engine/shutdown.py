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
from voco.engine.ending import rollback_updates
from voco.engine.lifecycle import Cut

if TYPE_CHECKING:
    from voco.engine.response import Response
    from voco.engine.server import Handler
    from voco.engine.session import Session

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


def unheard(resp: Response | None, now: float) -> bool:
    """A live response nothing of which reached the user: no ``agent.done``
    went out and no audio started. The client re-sends its turn after a drain."""
    return (
        resp is not None
        and resp.life.is_live(now)
        and resp.done_at is None
        and resp.audio.started_at is None
    )


async def cut_unheard(session: Session) -> bool:
    """Drain, before ``going_away``: cut a response the drain could not let
    finish and nobody heard anything of, and take its turn out of the thread.

    Why before ``going_away``: the client reconnects (to another engine on the
    same database) the moment it reads 1012, syncs the thread and re-sends a
    turn it finds unanswered; the turn must be gone from the checkpoint by
    then, or the model answering the re-sent copy sees the user's words twice.
    A response already heard (text or audio) stays as the session records it.
    """
    resp = session.response
    if resp is None or not unheard(resp, session.clock()):
        return False
    await session._cut(resp, Cut.CLOSE, session._stream_ms())  # the one cancel path
    if resp.task is not None:  # its own last checkpoint writes land first
        await asyncio.wait([resp.task])

    async def rollback() -> None:
        config = session._graph_config()
        graph = session.rt.graph
        async with session.grant.run_lock():  # a read-modify-write of the thread
            snapshot = await graph.aget_state(config)
            existing = list(snapshot.values.get("messages", []))
            updates = rollback_updates(existing, resp.turn)
            if updates:
                await graph.aupdate_state(config, {"messages": updates}, as_node="model")

    session.writer.submit(rollback, f"drain rollback of {resp.response_id}")
    await session.writer.settled()
    log.warning("shutdown: took unheard turn %s out of the thread", resp.turn.turn_id)
    return True


class EngineServer(uvicorn.Server):
    """uvicorn with a bounded shutdown: stop accepting, drain live responses,
    then close every socket (1012) and cancel what does not end, then exit.

    Bounds (``EngineConfig.shutdown_s`` = T): drain ≤ T/2, then the unheard
    turns' rollback (:func:`cut_unheard`) ≤ max(1 s, T/4), cancel ≤ T/4
    (uvicorn's ``timeout_graceful_shutdown``), models and store ≤ T/4.
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
        with contextlib.suppress(TimeoutError):  # bounded: the exit bound is T/4
            async with asyncio.timeout(max(1.0, self._drain_s / 2)):
                cuts = [cut_unheard(h.session) for h in open_ if h.session is not None]
                for err in await asyncio.gather(*cuts, return_exceptions=True):
                    if isinstance(err, BaseException):
                        log.error("shutdown: an unheard turn stays in its thread: %r", err)
        if open_:  # say why before closing, so clients reconnect (elsewhere) at once
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await asyncio.gather(*(h.going_away() for h in open_))
        await super().shutdown(sockets)
        log.warning("shutdown: done")
