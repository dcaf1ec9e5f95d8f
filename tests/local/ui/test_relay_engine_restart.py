"""The page's conversation survives a real engine draining and coming back.

Everything is real except the model: a real engine (``EngineServer``, the one
``voco serve`` runs, whose shutdown is the SIGTERM drain), the real local
runtime and its ``/ui`` relay, and a WebSocket client on ``/ui`` speaking the
page's protocol. The engine is drained, then a new engine process is started
on the same port over the same thread store (``InMemorySaver`` + tenant
store shared, as Postgres is shared by engines in production). The LLMs are
hand-written fakes of the ``LLM`` interface, so "the engine went away while
the model was still thinking" is a fact of the test, not a race.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from langgraph.checkpoint.memory import InMemorySaver

from tests.fakes import ScriptedLLM
from tests.local.ui.test_ui_server import connect
from voco.agent.graph import build_graph
from voco.audio.turns import TurnConfig
from voco.audio.vad import BatchedVAD, SileroVAD
from voco.auth.tokens import TokenAuthority
from voco.engine.runtime import EngineRuntime
from voco.engine.server import create_app, uvicorn_options
from voco.engine.shutdown import EngineServer
from voco.local.launch import serve_ui
from voco.protocol.connection import MAX_WS_FRAME
from voco.providers.base import ChatMessage, LLMEvent, ToolSpec
from voco.serving import free_port
from voco.store.tenancy import MemoryTenantStore

pytestmark = pytest.mark.timeout(180)


class StuckLLM(ScriptedLLM):
    """Starts thinking and never finishes: only a cut ends its turn."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()

    async def stream(
        self, *, system: str, messages: list[ChatMessage], tools: list[ToolSpec], tier: str
    ) -> AsyncIterator[LLMEvent]:
        self.calls.append(list(messages))
        self.started.set()
        await asyncio.Event().wait()  # cancelled by the drain's cut
        yield  # pragma: no cover - makes this an async generator


class Store:
    """What engines on one database share: the checkpoints and the tenants."""

    def __init__(self) -> None:
        self.saver = InMemorySaver()
        self.tenants = MemoryTenantStore()
        self.auth = TokenAuthority()  # the key file in this test's VOCO_HOME


@contextlib.asynccontextmanager
async def engine(
    port: int,
    store: Store,
    llm: Any,
    silero: SileroVAD,
    whisper: Any,
    piper: Any,
    *,
    drain_s: float,
) -> AsyncIterator[EngineServer]:
    """One engine on ``port``; leaving the block drains it as SIGTERM would."""
    rt = EngineRuntime(
        vad=BatchedVAD(silero),
        stt=whisper,
        tts=piper,
        llm=llm,
        graph=build_graph(store.saver),
        auth=store.auth,
        tenants=store.tenants,
        turn_config=TurnConfig(),
    )
    app = create_app(rt)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        **{"ws_max_size": MAX_WS_FRAME, **uvicorn_options()},
    )
    server = EngineServer(config, app.state.live, 2 * drain_s, app.state.admission)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the engine did not start"
        await asyncio.sleep(0.02)
    try:
        yield server
    finally:
        server.should_exit = True  # what the SIGTERM handler does: the drain
        await task
        rt.vad.close()


class Page:
    """The page's end of /ui: every message kept, waited on by predicate."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []
        self._i = 0

    async def next(self, kind: str, cond: Any = None, timeout: float = 60) -> dict[str, Any]:
        async def loop() -> dict[str, Any]:
            while True:
                while self._i < len(self.seen):
                    msg = self.seen[self._i]
                    self._i += 1
                    if msg["type"] == kind and (cond is None or cond(msg)):
                        return msg
                raw = await self.ws.recv()
                if isinstance(raw, str):
                    self.seen.append(json.loads(raw))

        return await asyncio.wait_for(loop(), timeout)

    async def status(self, engine_state: str) -> dict[str, Any]:
        return await self.next("runtime.status", lambda m: m["engine"] == engine_state)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.seen if m["type"] == kind]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    return root


async def test_a_turn_cut_by_the_drain_is_resent_once_to_the_next_engine(
    project: Path, silero: SileroVAD, whisper: Any, piper: Any
) -> None:
    port, store = free_port(), Store()
    url = f"ws://127.0.0.1:{port}/v1/session"
    stuck, answering = StuckLLM(), ScriptedLLM()
    async with serve_ui(url, lambda: store.auth.issue("alice"), [project], "deny") as ui:
        async with engine(port, store, stuck, silero, whisper, piper, drain_s=0.5):
            page = Page(await connect(ui))
            ready = await page.next("session.ready")
            await page.status("connected")
            await page.ws.send(json.dumps({"type": "text.input", "text": "what is in main"}))
            await page.next("transcript.final")
            await stuck.started.wait()
        # drained: the stuck turn was cut, the session closed 1012 (going away)
        going = await page.status("reconnecting")
        assert "going away" in going["message"] and going["attempt"] >= 1
        assert going["retry_in_ms"] >= 0
        async with engine(port, store, answering, silero, whisper, piper, drain_s=5):
            again = await page.next("session.ready", lambda m: m is not ready)
            assert again["thread_id"] == ready["thread_id"]  # the same thread resumed
            await page.status("connected")
            resumed = await page.next("turn.resumed")
            assert resumed["outcome"] == "resent" and resumed["text"] == "what is in main"
            done = await page.next("agent.done")
            assert done["text"] == "You said: what is in main"
            # the next turn goes on as usual on the resumed thread
            await page.ws.send(json.dumps({"type": "text.input", "text": "and the tests"}))
            nxt = await page.next("agent.done", lambda m: m["response_id"] != done["response_id"])
            assert nxt["text"] == "You said: and the tests"
            await page.ws.close()
    asked = [c[-1].content for c in answering.calls]
    assert asked.count("what is in main") == 1  # re-sent exactly once
    # and the drain took the cut copy out of the thread: the model saw it once
    assert [x.content for x in answering.calls[0]].count("what is in main") == 1
    assert not page.of("error") or all(not e.get("fatal") for e in page.of("error"))


async def test_a_turn_the_drain_lets_finish_is_not_sent_again(
    project: Path, silero: SileroVAD, whisper: Any, piper: Any
) -> None:
    port, store = free_port(), Store()
    url = f"ws://127.0.0.1:{port}/v1/session"
    first = ScriptedLLM(lambda msgs: ["Here is main dot py, it prints hello."], delay_s=0.05)
    second = ScriptedLLM()
    async with serve_ui(url, lambda: store.auth.issue("alice"), [project], "deny") as ui:
        async with engine(port, store, first, silero, whisper, piper, drain_s=60):
            page = Page(await connect(ui))
            ready = await page.next("session.ready")
            await page.status("connected")
            await page.ws.send(json.dumps({"type": "text.input", "text": "show me main"}))
            await page.next("agent.delta")  # the reply is under way when the drain starts
        done = await page.next("agent.done")  # the drain let it finish
        assert not done["interrupted"] and done["text"].startswith("Here is main")
        await page.status("reconnecting")
        async with engine(port, store, second, silero, whisper, piper, drain_s=5):
            again = await page.next("session.ready", lambda m: m is not ready)
            assert again["thread_id"] == ready["thread_id"]
            await page.status("connected")
            history = await page.next("thread.history")  # the reconnect's: it shows the turn
            assert [t["user_text"] for t in history["turns"]] == ["show me main"]
            await page.ws.send(json.dumps({"type": "text.input", "text": "thanks"}))
            nxt = await page.next("agent.done", lambda m: m["response_id"] != done["response_id"])
            assert nxt["text"] == "You said: thanks"
            await page.ws.close()
    assert [c[-1].content for c in second.calls] == ["thanks"]  # nothing re-sent
    assert not page.of("turn.resumed")
