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
    the user kept talking while the assistant was thinking.
    """
    out = list(left or [])
    index = {m.get("id"): i for i, m in enumerate(out)}
    for m in right or []:
        i = index.get(m.get("id"))
        if i is None:
            index[m.get("id")] = len(out)
            out.append(m)
        else:
            out[i] = m
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
