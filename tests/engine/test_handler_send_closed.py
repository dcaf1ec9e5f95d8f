"""A send on a socket the session already closed is the engine's one
"peer gone" signal (ConnectionError), not Starlette's RuntimeError — so a
late provider callback (a Deepgram partial after the close) ends quietly
instead of logging a traceback."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.websockets import WebSocket, WebSocketState

from voco.engine.server import Handler


async def _never(*_: Any) -> Any:
    raise AssertionError("the closed socket must not be used")


def _closed_handler() -> Handler:
    ws = WebSocket({"type": "websocket", "path": "/", "headers": []}, _never, _never)
    ws.application_state = WebSocketState.DISCONNECTED  # our close was sent
    return Handler(ws, rt=None)  # type: ignore[arg-type]  # sending never reads it


@pytest.mark.parametrize("kind", ["text", "bytes"])
async def test_a_send_after_close_is_connection_error(kind: str) -> None:
    h = _closed_handler()
    with pytest.raises(ConnectionError, match="closed"):
        if kind == "text":
            await h.send_text("{}")
        else:
            await h.send_bytes(b"\0\0")
