"""A wire-faithful engine double on 127.0.0.1 (protocol §2–§4, §11) whose
connections are scripted, so "the engine went away while the typed turn was in
flight" is an event of the script, not a race."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

Script = Callable[[ServerConnection, dict[str, Any]], Awaitable[None]]


class FakeEngine:
    """Answers session.start; then each connection runs the next script."""

    def __init__(self, scripts: list[Script]) -> None:
        self.scripts = scripts
        self.starts: list[dict[str, Any]] = []
        self.texts: list[str] = []
        self.stored: list[dict[str, Any]] = []
        self.server: Server | None = None  # the thread, as thread.history shows it

    async def handler(self, ws: ServerConnection) -> None:
        start = json.loads(await ws.recv())
        self.starts.append(start)
        await self.scripts.pop(0)(ws, start)

    async def ready(self, ws: ServerConnection, start: dict[str, Any]) -> None:
        n = len(self.starts)
        await ws.send(
            json.dumps(
                {
                    "type": "session.ready",
                    "session_id": f"s{n}",
                    "thread_id": start.get("thread_id") or "th-1",
                    "user_id": "u",
                    "server": {"version": "0", "protocol": 1},
                }
            )
        )

    async def history_then_text(self, ws: ServerConnection) -> str:
        """Answer the runtime's history request; return the next typed turn."""
        while True:
            msg = json.loads(await ws.recv())
            if msg["type"] == "thread.history":
                await ws.send(
                    json.dumps(
                        {
                            "type": "thread.history",
                            "thread_id": "th-1",
                            "before": None,
                            "turns": self.stored,
                            "next_before": None,
                        }
                    )
                )
            elif msg["type"] == "text.input":
                self.texts.append(msg["text"])
                return str(msg["text"])

    async def answer(self, ws: ServerConnection, text: str, n: int) -> None:
        turn = f"t{n}"
        await ws.send(json.dumps({"type": "transcript.final", "turn_id": turn, "text": text}))
        reply = f"answer to {text}"
        await ws.send(
            json.dumps(
                {
                    "type": "agent.done",
                    "turn_id": turn,
                    "response_id": f"r{n}",
                    "text": reply,
                    "model": "fake",
                    "interrupted": False,
                }
            )
        )
        self.stored.append(
            {"turn_id": f"h{n}", "user_text": text, "reply_text": reply, "interrupted": False}
        )


@contextlib.asynccontextmanager
async def fake_engine(scripts: list[Script]) -> AsyncIterator[tuple[FakeEngine, str]]:
    eng = FakeEngine(scripts)
    async with serve(eng.handler, "127.0.0.1", 0) as server:
        eng.server = server
        port = next(iter(server.sockets)).getsockname()[1]
        yield eng, f"ws://127.0.0.1:{port}/v1/session"
