"""The seed's ``VocoState`` (§3) as LangGraph state.

Everything here is checkpointed, so it is plain data: messages are dicts (a
:class:`~voco.providers.base.ChatMessage` plus an ``id``), the job queue holds
tool-call descriptions. The seed also lists ``pending_rpc_futures``: futures
cannot be checkpointed and die with the connection, so they live in the
session's :class:`~voco.agent.context.McpPort`, handed to the graph per run as
LangGraph *context* (never stored).
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from voco.providers.base import ChatMessage

Message = dict[str, Any]


def merge_messages(left: list[Message] | None, right: list[Message] | None) -> list[Message]:
    """Append new messages; a message whose ``id`` exists replaces it in place.

    Replacement is how the session corrects the record after the fact: an
    interrupted reply cut to what was heard, or a user turn that grew because
    the user kept talking while the assistant was thinking. A new message with
    a ``before`` key (an existing id) is inserted before that message instead
    of appended: a tool result written late must still follow its call.
    A ``{"id": …, "removed": True}`` marker takes that message out: a turn cut
    by a drain before anything of it reached the user is re-sent by the
    client, and must not stay behind as a lone user message
    (:func:`voco.engine.ending.rollback_updates`).
    """
    out = list(left or [])
    for m in right or []:
        ids = [x.get("id") for x in out]
        if m.get("removed"):
            if m.get("id") in ids:
                del out[ids.index(m.get("id"))]
            continue
        before = m.get("before")
        if before is not None:
            m = {k: v for k, v in m.items() if k != "before"}
        if m.get("id") in ids:
            out[ids.index(m.get("id"))] = m
        elif before is not None and before in ids:
            out.insert(ids.index(before), m)
        else:
            out.append(m)
    return out


class VocoState(TypedDict, total=False):
    # session context
    thread_id: str
    user_id: str
    project_id: str
    domain: str | None
    # conversation state
    messages: Annotated[list[Message], merge_messages]
    barge_in_detected: bool
    pending_mcp_action: dict[str, Any] | None
    # background jobs: tool calls of the last model step, run in parallel
    job_queue: list[dict[str, Any]]
    route: dict[str, Any] | None  # last model-router decision, for the record
    steps: int  # model steps in the current turn (bounded)


def message(msg: ChatMessage, msg_id: str) -> Message:
    return {"id": msg_id, **msg.to_dict()}


def chat_messages(state: VocoState) -> list[ChatMessage]:
    return [ChatMessage.from_dict(m) for m in state.get("messages", [])]
