"""A thread's past turns, for a client that reloads (``thread.history``).

Read from the thread's LangGraph checkpoint (its ``messages``), behind
:class:`HistorySource` so the Postgres turn tables can replace it later
without touching the protocol or the session. :func:`turns_from_messages` is a
pure function of the stored messages; the paging is too.
"""

from __future__ import annotations

from typing import Any, Protocol

from voco.agent.tools import parse_tool_result
from voco.protocol import activity
from voco.protocol import messages as m


class HistorySource(Protocol):
    async def messages(self, thread_id: str) -> list[dict[str, Any]]: ...


class CheckpointHistory:
    """Stored messages from the compiled graph's checkpointer."""

    def __init__(self, graph: Any) -> None:
        self._graph = graph

    async def messages(self, thread_id: str) -> list[dict[str, Any]]:
        snapshot = await self._graph.aget_state({"configurable": {"thread_id": thread_id}})
        values = getattr(snapshot, "values", None) or {}
        return list(values.get("messages", []))


def _status(value: Any) -> m.McpStatus:
    return value if value in ("success", "error", "rejected") else "error"


def turns_from_messages(messages: list[dict[str, Any]]) -> list[m.HistoryTurn]:
    """Group stored messages into turns: each user message opens one; the
    assistant text after it is the reply (the last one, an interrupted record,
    replaces what came before it); tool calls pair with their results."""
    turns: list[dict[str, Any]] = []
    results: dict[str, dict[str, Any]] = {}
    for x in messages:
        if x.get("role") == "tool" and x.get("tool_call_id"):
            results[str(x["tool_call_id"])] = parse_tool_result(str(x.get("content", "")))
    for x in messages:
        role = x.get("role")
        if role == "user":
            turns.append(
                {
                    "id": str(x.get("id", "")),
                    "user": str(x.get("content", "")),
                    "parts": [],
                    "interrupted": False,
                    "calls": [],
                }
            )
        elif role == "assistant" and turns:
            t = turns[-1]
            text = str(x.get("content", ""))
            if x.get("interrupted"):
                t["parts"], t["interrupted"] = [text], True
            elif text:
                t["parts"].append(text)
            t["calls"].extend(x.get("tool_calls", []))
    out: list[m.HistoryTurn] = []
    for t in turns:
        actions = []
        for c in t["calls"]:
            cid = str(c.get("id", ""))
            name = str(c.get("name", ""))
            args = c.get("arguments") if isinstance(c.get("arguments"), dict) else {}
            res = results.get(cid, {"status": "error", "error": "no result was recorded"})
            status = _status(res.get("status"))
            result = res.get("result")
            code: str | None = res.get("code")
            if status == "success" and activity.command_failed(result):
                status, code = "error", "exit_status"
            actions.append(
                m.HistoryToolAction(
                    id=cid,
                    action=name,
                    payload=args,
                    status=status,
                    code=code,
                    summary=activity.summarize(name, args, status, result, res.get("error"), code),
                    detail=activity.detail(name, args, result, before_known=False),
                )
            )
        reply = " ".join(p.strip() for p in t["parts"] if p.strip())
        out.append(
            m.HistoryTurn(
                turn_id=t["id"],
                user_text=t["user"],
                reply_text=reply,
                interrupted=t["interrupted"],
                heard_text=reply if t["interrupted"] else None,
                tool_actions=actions,
            )
        )
    return out


def page(
    turns: list[m.HistoryTurn], before: str | None, limit: int
) -> tuple[list[m.HistoryTurn], str | None]:
    """The ``limit`` newest turns before ``before`` (oldest first), and the id to
    pass as ``before`` for the page older than that (None: no older turns). An
    unknown ``before`` gives an empty page rather than the wrong one."""
    end = len(turns)
    if before is not None:
        ids = [t.turn_id for t in turns]
        end = ids.index(before) if before in ids else 0
    start = max(0, end - limit)
    chunk = turns[start:end]
    return chunk, (chunk[0].turn_id if start > 0 and chunk else None)


async def thread_history(
    source: HistorySource, thread_id: str, request: m.ThreadHistoryRequest
) -> m.ThreadHistory:
    turns = turns_from_messages(await source.messages(thread_id))
    chunk, next_before = page(turns, request.before, request.limit)
    return m.ThreadHistory(
        thread_id=thread_id, before=request.before, turns=chunk, next_before=next_before
    )
