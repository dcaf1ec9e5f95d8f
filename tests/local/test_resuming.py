"""``voco talk`` survives its engine going away mid-turn (against the scripted
engine double; the real engines behind HAProxy are in tests/deploy)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from tests.local.engine_double import FakeEngine, fake_engine
from voco.local.engine_client import EngineUnreachable, SessionRefused
from voco.local.mcp_bridge import McpBridge
from voco.local.reconnect import ReconnectPolicy
from voco.local.resuming import ResumeFailed
from voco.local.talk import talk

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def bridge(tmp_path: Path) -> McpBridge:
    root = tmp_path / "proj"
    root.mkdir()
    return McpBridge([root], "deny", audit_path=tmp_path / "audit.jsonl")


async def test_talk_resends_its_turn_after_a_drain_and_gets_the_answer(bridge: McpBridge) -> None:
    eng: FakeEngine

    async def first(ws: ServerConnection, start: dict[str, Any]) -> None:
        await eng.ready(ws, start)
        await eng.history_then_text(ws)
        await ws.close(1012, "going away")

    async def second(ws: ServerConnection, start: dict[str, Any]) -> None:
        await eng.ready(ws, start)
        await eng.answer(ws, await eng.history_then_text(ws), 2)
        await ws.wait_closed()

    log = io.StringIO()
    async with fake_engine([first, second]) as (eng, url):
        result = await talk(
            url, "tok", text="run the tests", bridge=bridge, want_audio=False, log=log
        )
    assert result.reply == "answer to run the tests"
    assert result.reconnects == 1 and result.thread_id == "th-1"
    assert eng.texts == ["run the tests", "run the tests"]
    assert eng.starts[1]["thread_id"] == "th-1"
    assert "going away" in log.getvalue() and "attempt 1" in log.getvalue()


async def test_a_finished_turn_is_read_from_the_thread_not_sent_again(bridge: McpBridge) -> None:
    eng: FakeEngine

    async def first(ws: ServerConnection, start: dict[str, Any]) -> None:
        await eng.ready(ws, start)
        text = await eng.history_then_text(ws)
        eng.stored.append(  # stored, then the engine died before agent.done went out
            {"turn_id": "h1", "user_text": text, "reply_text": "it ran", "interrupted": False}
        )
        await ws.close(1012)

    async def second(ws: ServerConnection, start: dict[str, Any]) -> None:
        await eng.ready(ws, start)
        with contextlib.suppress(ConnectionClosed):  # answers history; no turn comes
            await eng.history_then_text(ws)

    async with fake_engine([first, second]) as (eng, url):
        result = await talk(url, "tok", text="run the tests", bridge=bridge, want_audio=False)
    assert result.reply == "it ran"
    assert eng.texts == ["run the tests"]


async def test_no_engine_at_all_is_reported_at_once(bridge: McpBridge) -> None:
    with pytest.raises(EngineUnreachable, match="nothing is listening"):
        await talk("ws://127.0.0.1:9/v1/session", "tok", text="hi", bridge=bridge)


async def test_an_engine_that_stays_away_after_a_loss_is_retried_then_reported(
    bridge: McpBridge,
) -> None:
    eng: FakeEngine
    quick = ReconnectPolicy(base_s=0.01, give_up_after_s=0.05)

    async def first(ws: ServerConnection, start: dict[str, Any]) -> None:
        await eng.ready(ws, start)
        await eng.history_then_text(ws)
        server.close()  # the engine and its port are gone for good
        await ws.close(1012)

    async with fake_engine([first]) as (eng, url):
        server = eng.server
        with pytest.raises(ResumeFailed, match="gave up"):
            await talk(url, "tok", text="hi", bridge=bridge, policy=quick)
    assert quick.attempt >= 1 and eng.texts == ["hi"]


@pytest.mark.parametrize("code", [4401, 4402, 4403])
async def test_refusals_are_final(bridge: McpBridge, code: int) -> None:
    async def refuse(ws: ServerConnection, start: dict[str, Any]) -> None:
        msg = {"type": "error", "code": "forbidden", "message": "not your thread", "fatal": True}
        await ws.send(json.dumps(msg))
        await ws.close(code)

    async with fake_engine([refuse]) as (eng, url):
        with pytest.raises(SessionRefused, match="not your thread"):
            await talk(url, "tok", text="hi", bridge=bridge, want_audio=False)
    assert len(eng.starts) == 1
