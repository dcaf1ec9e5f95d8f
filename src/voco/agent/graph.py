"""The seed's LangGraph state machine (§3).

    orchestrator ─┬─ barge-in ──────────▶ handle_interruption ─▶ route
                  ├─ pending MCP action ─▶ await_approval ──────▶ route
                  └─ otherwise ─────────▶ route ─▶ model ─┬─▶ END
                                                          └─▶ jobs ─▶ model

* **orchestrator**: the seed's ``orchestrate``; decides where a run starts.
* **handle_interruption**: the user barged in; the session already stored the
  reply cut to what was heard. Tool calls left without a result are closed so
  the conversation stays valid for any model API.
* **await_approval**: a run found an MCP action still pending in the
  checkpoint, which only happens when a session or the engine died while the
  action awaited approval or ran. Its outcome is unknown and says so. (Live
  approval waits happen inside ``jobs``, while the runtime reports
  ``mcp.progress``.)
* **route**: the Sonnet/Haiku model router.
* **model**: streams the chosen model; its words go out as they come.
* **jobs**: the seed's background job node: the model step's tool calls run
  in parallel as ``mcp.request``s, with ``asyncio.gather`` semantics where one
  failure does not lose the others' results.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer

from voco.agent.context import AgentContext, McpOutcome
from voco.agent.router import extract_features, route_model
from voco.agent.state import Message, VocoState, chat_messages, message
from voco.agent.tools import MCP_TOOLS, tool_result_content
from voco.providers.base import (
    ChatMessage,
    FallbackUsed,
    Finished,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolCallEvent,
)

log = logging.getLogger("voco.agent")


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


def _tool_message(call_id: str, outcome: McpOutcome) -> Message:
    content = tool_result_content(outcome.status, outcome.result, outcome.error, outcome.code)
    return message(
        ChatMessage("tool", content, tool_call_id=call_id, is_error=outcome.status != "success"),
        _new_id(),
    )


def _close_dangling_calls(messages: list[Message], outcome: McpOutcome) -> list[Message]:
    """A result for every tool call left without one, placed right after its call.

    Order matters: chat APIs (OpenAI's in particular) reject a tool result that
    does not directly follow the assistant message that made the call. A run
    that finds a dangling call has already appended the new user message, so
    each result carries ``before``: the id of the first message after its call
    that is not a tool result, where :func:`~voco.agent.state.merge_messages`
    inserts it.
    """
    answered = {m.get("tool_call_id") for m in messages if m["role"] == "tool"}
    out: list[Message] = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        dangling = [c["id"] for c in m.get("tool_calls", []) if c["id"] not in answered]
        if not dangling:
            continue
        nxt = next((x for x in messages[i + 1 :] if x["role"] != "tool"), None)
        for cid in dangling:
            closed = _tool_message(cid, outcome)
            if nxt is not None:
                closed["before"] = nxt.get("id")
            out.append(closed)
    return out


# ------------------------------------------------------------------ nodes


async def orchestrator(state: VocoState) -> dict[str, Any]:
    return {"steps": 0}


def orchestrate(state: VocoState) -> Literal["handle_interruption", "await_approval", "route"]:
    if state.get("barge_in_detected"):
        return "handle_interruption"
    if state.get("pending_mcp_action"):
        return "await_approval"
    return "route"


async def handle_interruption(state: VocoState) -> dict[str, Any]:
    closed = _close_dangling_calls(
        state.get("messages", []),
        McpOutcome("error", error="cancelled: the user interrupted", code="interrupted"),
    )
    return {
        "barge_in_detected": False,
        "pending_mcp_action": None,
        "job_queue": [],
        "messages": closed,
    }


async def await_approval(state: VocoState) -> dict[str, Any]:
    closed = _close_dangling_calls(
        state.get("messages", []),
        McpOutcome(
            "error",
            error="the session ended before this action was confirmed; its outcome is unknown",
            code="runtime_disconnected",
        ),
    )
    return {"pending_mcp_action": None, "job_queue": [], "messages": closed}


async def route(state: VocoState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    decision = route_model(extract_features(chat_messages(state), bool(MCP_TOOLS)))
    model = ctx.llm.model_id(decision.tier)
    log.info("router: %s (%s) because %s", decision.tier, model, "; ".join(decision.reasons))
    await ctx.emitter.model_selected(model, decision.reasons)
    return {"route": {"tier": decision.tier, "model": model, "reasons": list(decision.reasons)}}


async def model(state: VocoState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    tier = (state.get("route") or {}).get("tier", "haiku")
    steps = state.get("steps", 0) + 1
    if steps > ctx.max_steps:
        text = "I've taken too many steps on this one, so I'll stop here."
        await ctx.emitter.text(text)
        return {"messages": [message(ChatMessage("assistant", text), _new_id())], "steps": steps}
    text_parts: list[str] = []
    calls: list[ToolCall] = []
    events = ctx.llm.stream(
        system=ctx.system_prompt, messages=chat_messages(state), tools=MCP_TOOLS, tier=tier
    )
    try:
        # aclosing: a cut (barge-in) that lands while this node awaits the
        # emitter must still close the vendor stream now, not when GC runs
        async with contextlib.aclosing(events):  # type: ignore[type-var]
            async for ev in events:
                if isinstance(ev, TextDelta) and ev.text:
                    text_parts.append(ev.text)
                    await ctx.emitter.text(ev.text)
                elif isinstance(ev, ToolCallEvent):
                    calls.append(ev.call)
                elif isinstance(ev, FallbackUsed):
                    await ctx.emitter.error(
                        "provider_fallback",
                        f"{ev.primary} failed ({ev.reason}); {ev.fallback} answered instead",
                    )
                elif isinstance(ev, Finished):
                    await ctx.emitter.model_answered(ev.model)
                    if ev.input_tokens or ev.output_tokens:
                        await ctx.emitter.model_usage(ev.model, ev.input_tokens, ev.output_tokens)
                    break
    except ProviderError as exc:
        log.warning("model failed: %s", exc)
        await ctx.emitter.error("provider_failed", str(exc))
        apology = " Sorry, the language model failed, so I can't answer that right now."
        text_parts.append(apology)
        await ctx.emitter.text(apology)
        calls = []
    reply = ChatMessage("assistant", "".join(text_parts), tool_calls=tuple(calls))
    update: dict[str, Any] = {"messages": [message(reply, _new_id())], "steps": steps}
    if calls:
        update["job_queue"] = [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls
        ]
        update["pending_mcp_action"] = update["job_queue"][0]
    return update


def after_model(state: VocoState) -> str:
    return "jobs" if state.get("job_queue") else END


async def jobs(state: VocoState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    queue = state.get("job_queue", [])
    results = await asyncio.gather(
        *(ctx.mcp.call(j["id"], j["name"], j["arguments"]) for j in queue),
        return_exceptions=True,
    )
    msgs: list[Message] = []
    for job, res in zip(queue, results, strict=True):
        if isinstance(res, asyncio.CancelledError):
            raise res
        if isinstance(res, BaseException):
            log.warning("job %s failed: %r", job["id"], res)
            res = McpOutcome("error", error=f"internal error: {res}", code="internal")
        msgs.append(_tool_message(job["id"], res))
    return {"messages": msgs, "job_queue": [], "pending_mcp_action": None}


def build_graph(checkpointer: Checkpointer = None) -> Any:
    g: StateGraph[VocoState, AgentContext, VocoState, VocoState] = StateGraph(
        VocoState, context_schema=AgentContext
    )
    g.add_node("orchestrator", orchestrator)
    g.add_node("handle_interruption", handle_interruption)
    g.add_node("await_approval", await_approval)
    g.add_node("route", route)
    g.add_node("model", model)
    g.add_node("jobs", jobs)
    g.add_edge(START, "orchestrator")
    g.add_conditional_edges("orchestrator", orchestrate)
    g.add_edge("handle_interruption", "route")
    g.add_edge("await_approval", "route")
    g.add_edge("route", "model")
    g.add_conditional_edges("model", after_model)
    g.add_edge("jobs", "model")
    return g.compile(checkpointer=checkpointer)
