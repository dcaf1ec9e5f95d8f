"""thread.history: stored turns from the checkpoint, paged, over the real protocol."""

from __future__ import annotations

import json

import pytest

from voco.engine.history import page, turns_from_messages
from voco.local.engine_client import EngineClient
from voco.protocol import messages as m

pytestmark = pytest.mark.timeout(90)


def _msgs():
    tool = json.dumps(
        {"status": "success", "result": {"exit_code": 1, "stdout": "", "stderr": "x"}}
    )
    return [
        {"id": "u1", "role": "user", "content": "run the tests"},
        {
            "id": "a1",
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c1", "name": "execute_command", "arguments": {"command": "make"}}
            ],
        },
        {"id": "t1", "role": "tool", "content": tool, "tool_call_id": "c1"},
        {"id": "a2", "role": "assistant", "content": "One test failed."},
        {"id": "u2", "role": "user", "content": "what can you do"},
        {"id": "a3", "role": "assistant", "content": "I can open files", "interrupted": True},
        {"id": "u3", "role": "user", "content": "list the files"},
        {
            "id": "a4",
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c2", "name": "list_dir", "arguments": {"path": "."}}],
        },
    ]


def test_turns_from_stored_messages():
    turns = turns_from_messages(_msgs())
    assert [t.turn_id for t in turns] == ["u1", "u2", "u3"]
    first = turns[0]
    assert first.reply_text == "One test failed." and not first.interrupted
    (act,) = first.tool_actions
    # exit 1 was a "success" on the wire; in the record it is a failure
    assert act.status == "error" and act.code == "exit_status"
    assert act.detail is not None and act.detail.exit_code == 1
    assert turns[1].interrupted and turns[1].heard_text == "I can open files"
    (lost,) = turns[2].tool_actions  # its result was never stored (cut by a restart)
    assert lost.status == "error" and "no result" in lost.summary


def test_paging_newest_first_pages_oldest_first_within():
    turns = turns_from_messages(_msgs())
    chunk, nxt = page(turns, None, 2)
    assert [t.turn_id for t in chunk] == ["u2", "u3"] and nxt == "u2"
    chunk, nxt = page(turns, nxt, 2)
    assert [t.turn_id for t in chunk] == ["u1"] and nxt is None
    assert page(turns, "nope", 2) == ([], None)


async def test_history_over_the_protocol(engine_factory):
    async with engine_factory() as eng:
        token = eng.token("alice")
        c = await EngineClient.connect(eng.url, m.SessionStart(token=token))
        assert c.ready.llm is not None and c.ready.llm.command_mode
        assert c.ready.voice is not None and c.ready.voice.voices
        for text in ("where am I", "help"):
            await c.send(m.TextInput(text=text))
            while not isinstance((await c.recv()).message, m.Metrics):
                pass
        thread = c.ready.thread_id
        await c.close()
        c = await EngineClient.connect(eng.url, m.SessionStart(token=token, thread_id=thread))
        await c.send(m.ThreadHistoryRequest(limit=1))
        while not isinstance(h := (await c.recv()).message, m.ThreadHistory):
            pass
        assert h.thread_id == thread and [t.user_text for t in h.turns] == ["help"]
        assert h.turns[0].reply_text and h.next_before is not None
        await c.send(m.ThreadHistoryRequest(before=h.next_before, limit=5))
        while not isinstance(h2 := (await c.recv()).message, m.ThreadHistory):
            pass
        assert [t.user_text for t in h2.turns] == ["where am I"] and h2.next_before is None
        await c.close()
