"""The offline "command mode": a deterministic voice-command interpreter as an LLM.

Why it exists: no instruction-following model ships with Voco, yet the embedded
defaults must work with no API key. Rather than a stub, command mode understands
a fixed spoken grammar (open/list/search files, run the tests, git status/diff/
log/branch, "where am I", help, stop) and drives the same MCP tools a real model
would, through the same :class:`~voco.providers.base.LLM` interface, so the
engine's graph, approvals and barge-in all behave identically. What it cannot do
(writes, open questions) it says so, and how to configure a real model.

How it works: stateless. Each :meth:`CommandModeLLM.stream` call re-reads the
current turn (the last user message, the tool calls made since, their results),
re-parses the utterance into its requests (:mod:`voco.agent.command_intents`)
and asks the planner (:mod:`voco.agent.command_plan`) for the next step: tool
calls (after saying what the turn's earlier requests found), or the final spoken
reply (:mod:`voco.agent.summaries`). Tool-call ids are hashes of the turn, so a
replayed conversation yields the same ids.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from voco.agent.command_intents import parse_request
from voco.agent.command_plan import plan_request
from voco.agent.command_types import Call, Calls, Decision, Progress, Reply, Step
from voco.agent.tools import TOOL_NAMES, parse_tool_result
from voco.common.clauses import split_reply
from voco.providers.base import (
    LLM,
    ChatMessage,
    Finished,
    LLMCapabilities,
    LLMEvent,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    ToolSpec,
)

MODEL_ID = "command-mode"
_MISSING_RESULT = {"status": "error", "code": "internal", "error": "no result for this call"}


@dataclass(frozen=True)
class Turn:
    """The conversation since the last user message."""

    index: int  # how many user messages precede it (0-based turn number)
    text: str
    steps: list[Step]
    rounds: int = 0  # assistant messages with tool calls so far
    said: str = ""  # what this turn's responses have said so far


def current_turn(messages: list[ChatMessage]) -> Turn:
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    if last < 0:
        return Turn(0, "", [])
    index = sum(1 for m in messages[:last] if m.role == "user")
    calls: list[ToolCall] = []
    results: dict[str, dict[str, object]] = {}
    rounds = 0
    said: list[str] = []
    for m in messages[last + 1 :]:
        if m.role == "assistant" and m.content:
            said.append(m.content)
        if m.role == "assistant" and m.tool_calls:
            calls.extend(m.tool_calls)
            rounds += 1
        elif m.role == "tool" and m.tool_call_id:
            results[m.tool_call_id] = parse_tool_result(m.content)
    steps = [
        Step(c.name, dict(c.arguments), dict(results.get(c.id, _MISSING_RESULT))) for c in calls
    ]
    return Turn(index, messages[last].content, steps, rounds, " ".join(said))


def decide(messages: list[ChatMessage], tools: frozenset[str] = TOOL_NAMES) -> Decision:
    """The next step for this conversation: pure, for tests and for the engine's logs."""
    turn = current_turn(messages)
    return plan_request(parse_request(turn.text), turn.steps, tools, turn.rounds, turn.said)


def call_id(turn: Turn, call: Call) -> str:
    """Deterministic id: same conversation, same ids (replays and resumes are stable)."""
    key = json.dumps(
        [turn.index, len(turn.steps), turn.text, call.name, call.arguments],
        sort_keys=True,
        ensure_ascii=False,
    )
    return "cm_" + hashlib.sha256(key.encode()).hexdigest()[:20]


class CommandModeLLM(LLM):
    """The embedded default "model" when no model key is configured."""

    name = "command-mode"
    capabilities = LLMCapabilities(tool_calling=True, streaming=True)

    def model_id(self, tier: str) -> str:
        return MODEL_ID

    async def stream(
        self,
        *,
        system: str,
        messages: list[ChatMessage],
        tools: list[ToolSpec],
        tier: str,
    ) -> AsyncIterator[LLMEvent]:
        turn = current_turn(messages)
        tool_names = frozenset(t.name for t in tools)
        decision = decide(messages, tool_names)
        if isinstance(decision, Reply):
            for chunk in split_reply(decision.text):
                yield TextDelta(chunk)
                await asyncio.sleep(0)  # a cancellation point between clauses (barge-in)
            yield Finished("end_turn", MODEL_ID)
            return
        if isinstance(decision, Progress):
            for chunk in split_reply(decision.say + " "):
                yield TextDelta(chunk)
                await asyncio.sleep(0)
            decision = decision.then
        for call in decision.calls if isinstance(decision, Calls) else (decision,):
            yield ToolCallEvent(ToolCall(call_id(turn, call), call.name, dict(call.arguments)))
        yield Finished("tool_use", MODEL_ID)
