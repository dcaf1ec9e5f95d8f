"""The runtime's engine link survives its engine: reconnect, resume, re-send.

The engine here is a wire-faithful double on 127.0.0.1 (protocol §2–§4, §11):
each connection is scripted, so "the engine went away while the typed turn was
in flight" is an event of the script, not a race. The real engines behind
HAProxy are in tests/deploy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection

from tests.local.engine_double import FakeEngine, fake_engine
from tests.local.ui.test_ui_server import connect, next_of
from voco.local.launch import serve_ui

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    return root


async def wait_status(ws: Any, engine: str) -> dict[str, Any]:
    while (status := await next_of(ws, "runtime.status"))["engine"] != engine:
        pass
    return status


async def test_going_away_mid_turn_reconnects_resumes_and_resends(project: Path) -> None:
    eng: FakeEngine

    async def first(ws: ServerConnection, start: dict[str, Any]) -> None:
        await eng.ready(ws, start)
        await eng.history_then_text(ws)  # the turn arrives; the engine drains before answering
        await ws.close(1012, "going away")

    async def second(ws: ServerConnection, start: dict[str, Any]) -> None:
        await eng.ready(ws, start)
        text = await eng.history_then_text(ws)  # re-sent after the history showed it unanswered
        await eng.answer(ws, text, 2)
        await ws.wait_closed()

    async with (
        fake_engine([first, second]) as (eng, url),
        serve_ui(url, "tok", [project], "deny") as ui,
    ):
        ws = await connect(ui)
        await wait_status(ws, "connected")
        await ws.send(json.dumps({"type": "text.input", "text": "run the tests"}))
        status = await wait_status(ws, "reconnecting")
        assert status["attempt"] == 1 and status["retry_in_ms"] >= 0
        assert "going away" in status["message"]
        await wait_status(ws, "connected")
        resumed = await next_of(ws, "turn.resumed")  # the page learns what became of it
        assert resumed["outcome"] == "resent" and resumed["text"] == "run the tests"
        done = await next_of(ws, "agent.done")
        assert done["text"] == "answer to run the tests"
        await ws.close()
    assert eng.texts == ["run the tests", "run the tests"]  # re-sent exactly once
    assert eng.starts[1]["thread_id"] == "th-1"  # the same thread resumed


async def test_a_turn_the_thread_shows_finished_is_not_sent_again(project: Path) -> None:
    eng: FakeEngine

    async def first(ws: ServerConnection, start: dict[str, Any]) -> None:
        await eng.ready(ws, start)
        text = await eng.history_then_text(ws)
        # finished and stored, but the engine died before agent.done went out
        eng.stored.append(
            {"turn_id": "h1", "user_text": text, "reply_text": "done", "interrupted": False}
        )
        await ws.close(1012)

    async def second(ws: ServerConnection, start: dict[str, Any]) -> None:
        await eng.ready(ws, start)
        text = await eng.history_then_text(ws)  # only the page's next turn comes
        await eng.answer(ws, text, 2)
        await ws.wait_closed()

    async with (
        fake_engine([first, second]) as (eng, url),
        serve_ui(url, "tok", [project], "deny") as ui,
    ):
        ws = await connect(ui)
        await wait_status(ws, "connected")
        await ws.send(json.dumps({"type": "text.input", "text": "list the files"}))
        await wait_status(ws, "reconnecting")
        await wait_status(ws, "connected")
        hist = await next_of(ws, "thread.history")  # the page shows the finished turn
        assert [t["user_text"] for t in hist["turns"]] == ["list the files"]
        resumed = await next_of(ws, "turn.resumed")
        assert resumed["outcome"] == "answered" and resumed["reply"] == "done"
        await ws.send(json.dumps({"type": "text.input", "text": "next"}))
        await next_of(ws, "agent.done")
        await ws.close()
    assert eng.texts == ["list the files", "next"]


@pytest.mark.parametrize("code", [4401, 4403])
async def test_a_refusal_is_final_and_says_why(project: Path, code: int) -> None:
    async def refuse(ws: ServerConnection, start: dict[str, Any]) -> None:
        msg = {
            "type": "error",
            "code": "unauthenticated",
            "message": "token expired",
            "fatal": True,
        }
        await ws.send(json.dumps(msg))
        await ws.close(code)

    async with (
        fake_engine([refuse]) as (eng, url),
        serve_ui(url, "tok", [project], "deny") as ui,
    ):
        ws = await connect(ui)
        # the first word on the link after connecting: final, not "reconnecting"
        while (status := await next_of(ws, "runtime.status"))["engine"] == "connecting":
            pass
        assert status["engine"] == "disconnected"
        assert "token expired" in status["message"]
        await ws.close()


async def test_after_a_refusal_the_pages_reconnect_tries_again(project: Path) -> None:
    eng: FakeEngine

    async def refuse(ws: ServerConnection, start: dict[str, Any]) -> None:
        msg = {"type": "error", "code": "forbidden", "message": "no seat", "fatal": True}
        await ws.send(json.dumps(msg))
        await ws.close(4403)

    async def accept(ws: ServerConnection, start: dict[str, Any]) -> None:
        await eng.ready(ws, start)
        await eng.answer(ws, await eng.history_then_text(ws), 1)
        await ws.wait_closed()

    async with (
        fake_engine([refuse, accept]) as (eng, url),
        serve_ui(url, "tok", [project], "deny") as ui,
    ):
        ws = await connect(ui)
        assert "no seat" in (await wait_status(ws, "disconnected"))["message"]
        await ws.send(json.dumps({"type": "session.restart"}))  # the banner's Reconnect
        await wait_status(ws, "connected")
        await ws.send(json.dumps({"type": "text.input", "text": "hello"}))
        assert (await next_of(ws, "agent.done"))["text"] == "answer to hello"
        await ws.close()
    assert len(eng.starts) == 2
