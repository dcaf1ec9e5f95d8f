"""Pure pieces of a turn's bookkeeping: what is stored when a reply is cut (the
measured timings are :mod:`voco.engine.turn_timings`).

Kept apart from :mod:`voco.engine.session` because they are plain functions of
data (tested without a session) and the session is only their adapter.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from voco.agent.state import Message, message
from voco.engine.turn_timeline import TurnTimeline
from voco.providers.base import ChatMessage


def new_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class Turn:
    turn_id: str
    user_msg_id: str
    text: str = ""
    speech_end_at: float | None = None  # clock time the end of speech was decided
    stt_ms: int | None = None
    eot_ms: int | None = None  # VAD end of turn: last voiced frame → the silence rule fired
    speech_ms: int = 0  # usage: the user's speech, onset to end
    stt_audio_ms: int = 0  # usage: audio given to STT (preroll + speech + end silence)
    timeline: TurnTimeline | None = None  # where the turn end's time went (turn_timeline.py)


def interruption_updates(
    existing: list[Message], turn: Turn, reply_msg_id: str, heard_text: str
) -> list[Message]:
    """Messages that record an interrupted reply (merged by id into the thread).

    The turn's user message is (re)written in case the run was cut before the
    graph stored it; text the model wrote this turn is blanked (it was not
    heard) while its tool calls stay, each closed with a result; one assistant
    message with what was heard, flagged ``interrupted``, ends the turn.
    """
    out: list[Message] = [message(ChatMessage("user", turn.text), turn.user_msg_id)]
    # The turn's messages run from its user message to the next user message:
    # another session on the same thread may have finished a later turn since,
    # and that turn's reply was heard — it is never blanked, and what this turn
    # adds goes before it, not at the end of the thread.
    start = next((i for i, x in enumerate(existing) if x.get("id") == turn.user_msg_id), None)
    mine: list[Message] = []
    later: str | None = None
    if start is not None:
        for x in existing[start + 1 :]:
            if x["role"] == "user":
                later = x.get("id")
                break
            mine.append(x)
    answered = {x.get("tool_call_id") for x in mine if x["role"] == "tool"}
    added: list[Message] = []
    for x in mine:
        if x.get("id") == reply_msg_id:
            continue
        if x["role"] == "assistant":
            out.append({**x, "content": ""})
            for c in x.get("tool_calls", []):
                if c["id"] not in answered:
                    added.append(
                        message(
                            ChatMessage(
                                "tool",
                                '{"status":"error","error":"cancelled: the user interrupted",'
                                '"code":"interrupted"}',
                                tool_call_id=c["id"],
                                is_error=True,
                            ),
                            new_id(),
                        )
                    )
    added.append(message(ChatMessage("assistant", heard_text, interrupted=True), reply_msg_id))
    if later is not None:
        added = [{**x, "before": later} for x in added]
    return out + added
