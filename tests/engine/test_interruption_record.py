"""How an interrupted reply is written into the thread (pure function)."""

import json

from voco.agent.state import merge_messages
from voco.engine.session import Turn, interruption_updates


def msg(i, role, content="", **kw):
    return {
        "id": i,
        "role": role,
        "content": content,
        "tool_calls": [],
        "tool_call_id": None,
        "is_error": False,
        "interrupted": False,
        **kw,
    }


def test_cut_reply_replaces_unheard_text_and_closes_dangling_calls():
    existing = [
        msg("u0", "user", "earlier"),
        msg("a0", "assistant", "earlier answer"),
        msg("u1", "user", "list files"),
        msg(
            "a1",
            "assistant",
            "Let me look.",
            tool_calls=[
                {"id": "c1", "name": "list_dir", "arguments": {"path": "."}},
                {"id": "c2", "name": "read_file", "arguments": {"path": "x"}},
            ],
        ),
        msg("t1", "tool", "{}", tool_call_id="c1"),
    ]
    turn = Turn("turn1", "u1", "list files")
    updates = interruption_updates(existing, turn, "reply1", "Let me")
    merged = merge_messages(existing, updates)
    ids = [m["id"] for m in merged]
    assert ids[:5] == ["u0", "a0", "u1", "a1", "t1"]
    assert merged[1]["content"] == "earlier answer"  # earlier turns untouched
    assert merged[3]["content"] == "" and len(merged[3]["tool_calls"]) == 2
    closing = merged[5]
    assert closing["role"] == "tool" and closing["tool_call_id"] == "c2"
    assert json.loads(closing["content"])["code"] == "interrupted"
    assert merged[-1] == msg("reply1", "assistant", "Let me", interrupted=True)


def test_record_is_idempotent_and_correctable():
    turn = Turn("t", "u1", "hello")
    first = merge_messages([], interruption_updates([], turn, "r", "Hi the"))
    again = merge_messages(first, interruption_updates(first, turn, "r", "Hi"))
    assert [m["id"] for m in again] == ["u1", "r"]
    assert again[-1]["content"] == "Hi"


def test_a_later_turn_of_the_thread_is_never_touched():
    """Two sessions on one thread: the reply to "one" is cut (in session A) after
    session B's turn "two" finished. B's heard reply stays, and what A's record
    adds lands inside A's turn, before "two"."""
    existing = [
        msg("u1", "user", "one"),
        msg("a1", "assistant", "", tool_calls=[{"id": "c1", "name": "list_dir", "arguments": {}}]),
        msg("u2", "user", "two"),
        msg("a2", "assistant", "You said: two"),
    ]
    merged = merge_messages(
        existing, interruption_updates(existing, Turn("t1", "u1", "one"), "r1", "You")
    )
    assert [m["id"] for m in merged][:3] == ["u1", "a1", merged[2]["id"]]
    assert merged[2]["role"] == "tool" and merged[2]["tool_call_id"] == "c1"
    assert merged[3] == msg("r1", "assistant", "You", interrupted=True)
    assert merged[4:] == existing[2:]
    assert all("before" not in m for m in merged)
    # correcting it later (audio.played) keeps it in place
    again = merge_messages(
        merged, interruption_updates(merged, Turn("t1", "u1", "one"), "r1", "You said")
    )
    assert [m["id"] for m in again] == [m["id"] for m in merged]
    assert again[3]["content"] == "You said"
