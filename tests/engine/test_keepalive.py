"""A client that stops reading is dropped by the documented 10 s, whichever
mechanism notices first: the send timeout, or keepalive (a client that does not
read does not answer pings either)."""

from __future__ import annotations

import inspect

import uvicorn

from voco.engine.server import KEEPALIVE_INTERVAL_S, SEND_TIMEOUT_S, uvicorn_options


def test_keepalive_drops_a_silent_client_within_the_send_timeout() -> None:
    opts = uvicorn_options()
    assert opts["ws_ping_interval"] == KEEPALIVE_INTERVAL_S
    # worst case: the client goes quiet just after a pong; the next ping goes out
    # one interval later and its pong is due one timeout after that
    assert opts["ws_ping_interval"] + opts["ws_ping_timeout"] <= SEND_TIMEOUT_S
    defaults = inspect.signature(uvicorn.Config).parameters
    assert defaults["ws_ping_interval"].default + defaults["ws_ping_timeout"].default > (
        SEND_TIMEOUT_S
    )  # why this exists: uvicorn's own keepalive would take 40 s
    uvicorn.Config(object(), **opts)  # every option is one uvicorn knows


async def test_the_engine_declines_permessage_deflate(engine_factory) -> None:
    """A client offering compression (websockets, browsers do) gets none: PCM does
    not compress, and inflating every frame was a tenth of the engine's CPU."""
    import websockets

    async with engine_factory() as engine, websockets.connect(engine.url) as ws:
        assert ws.protocol.extensions == []  # it offered permessage-deflate
