"""Claude through the official ``anthropic`` SDK (streaming Messages API with tools).

Why the raw event stream (``messages.create(stream=True)``) and not the SDK's
``messages.stream()`` helper: the engine wants each tool call the moment its
``tool_use`` block is complete (``content_block_stop``), and it wants every
failure - an HTTP error, an ``error`` event in the middle of the stream, a
connection that just stops - as a :class:`ProviderError`. Handling the six raw
event types ourselves is short and keeps both under our control.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import anthropic
from anthropic.types import (
    MessageParam,
    RawMessageStreamEvent,
    TextBlockParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
)

from voco.providers.base import (
    LLM,
    ChatMessage,
    Finished,
    LLMCapabilities,
    LLMEvent,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    ToolSpec,
)
from voco.providers.errors import relay_sdk_stream, retryable_status

DEFAULT_MODELS = {"sonnet": "claude-sonnet-5-5", "haiku": "claude-haiku-5-5"}

# Error types the API documents for the ``error`` SSE event / error bodies that
# are about load or the service, not about the request.
_RETRYABLE_ERROR_TYPES = frozenset(
    {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}
)

ContentBlock = TextBlockParam | ToolUseBlockParam | ToolResultBlockParam


class AnthropicLLM(LLM):
    """Anthropic Messages API; ``sonnet``/``haiku`` tiers map to configurable model ids.

    ``api_key``/``base_url`` default to ``ANTHROPIC_API_KEY``/``ANTHROPIC_BASE_URL``
    (the SDK's own variables), tier models to ``VOCO_ANTHROPIC_SONNET`` /
    ``VOCO_ANTHROPIC_HAIKU``. ``timeout`` bounds connecting and every wait for
    the next byte of a stream - a voice turn must not hang for the SDK's default
    ten minutes. ``max_retries`` is passed to the SDK, which retries connection
    errors, 408/409/429 and 5xx before the first byte; keep it small, the user is
    waiting.
    """

    name = "anthropic"
    capabilities = LLMCapabilities(tool_calling=True, streaming=True)

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        sonnet_model: str | None = None,
        haiku_model: str | None = None,
        max_tokens: int = 4096,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_retries: int = 2,
    ) -> None:
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise ProviderError(self.name, "no API key (set ANTHROPIC_API_KEY)", retryable=False)
        self._models = {
            "sonnet": sonnet_model
            or os.environ.get("VOCO_ANTHROPIC_SONNET")
            or DEFAULT_MODELS["sonnet"],
            "haiku": haiku_model
            or os.environ.get("VOCO_ANTHROPIC_HAIKU")
            or DEFAULT_MODELS["haiku"],
        }
        self._max_tokens = max_tokens
        self._client = anthropic.AsyncAnthropic(
            api_key=key,
            base_url=base_url or os.environ.get("ANTHROPIC_BASE_URL") or None,
            timeout=anthropic.Timeout(timeout, connect=connect_timeout),
            max_retries=max_retries,
        )

    def model_id(self, tier: str) -> str:
        """Model for ``tier``; an unknown tier falls back to the ``sonnet`` model
        (the router only emits the two tiers, a stray value should not fail a turn)."""
        return self._models.get(tier, self._models["sonnet"])

    async def list_models(self) -> list[str]:
        """Ids of the models this key can use (``GET /v1/models``), for config checks."""
        try:
            return [m.id async for m in self._client.models.list()]
        except anthropic.AnthropicError as exc:
            raise map_anthropic_error(exc) from exc

    async def stream(
        self,
        *,
        system: str,
        messages: list[ChatMessage],
        tools: list[ToolSpec],
        tier: str,
    ) -> AsyncIterator[LLMEvent]:
        model = self.model_id(tier)
        params: dict[str, Any] = {
            "model": model,
            "max_tokens": self._max_tokens,
            "messages": to_anthropic_messages(messages, tools_defined=bool(tools)),
        }
        if system:
            params["system"] = system
        if tools:
            params["tools"] = to_anthropic_tools(tools)
        try:
            stream = await self._client.messages.create(stream=True, **params)
        except anthropic.AnthropicError as exc:
            raise map_anthropic_error(exc) from exc
        state = _StreamState(model=model)
        relay = relay_sdk_stream(
            self.name,
            stream,
            state.feed,
            sdk_error=anthropic.AnthropicError,
            connection_error=anthropic.APIConnectionError,
            map_error=map_anthropic_error,
        )
        async with contextlib.aclosing(relay) as events:
            async for out in events:
                yield out
        if not state.stopped:
            raise ProviderError(self.name, "stream ended before message_stop")
        yield Finished(
            stop_reason=state.stop_reason or "end_turn",
            model=state.model,
            input_tokens=state.input_tokens,
            output_tokens=state.output_tokens,
        )

    async def aclose(self) -> None:
        await self._client.close()


@dataclass
class _ToolBlock:
    id: str
    name: str
    initial: dict[str, Any]
    parts: list[str] = field(default_factory=list)


@dataclass
class _StreamState:
    """Turns raw stream events into :data:`LLMEvent` s.

    Tool input arrives as ``input_json_delta`` fragments that are only valid JSON
    together, so they are collected per block index and parsed at the block's
    ``content_block_stop``.
    """

    model: str
    stop_reason: str | None = None
    stopped: bool = False
    tools: dict[int, _ToolBlock] = field(default_factory=dict)
    input_tokens: int = 0  # prompt, cache writes and cache reads: all are billed input
    output_tokens: int = 0

    def _usage(self, usage: Any) -> None:
        """``message_start`` carries the input count, ``message_delta`` the
        cumulative output (and, in newer API versions, the input again)."""
        if usage is None:
            return
        parts = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        counted = [getattr(usage, name, None) for name in parts]
        if any(v is not None for v in counted):
            self.input_tokens = max(self.input_tokens, sum(int(v or 0) for v in counted))
        out = getattr(usage, "output_tokens", None)
        if out is not None:
            self.output_tokens = max(self.output_tokens, int(out))

    def feed(self, event: RawMessageStreamEvent) -> Iterable[LLMEvent]:
        if event.type == "message_start":
            self.model = event.message.model or self.model
            self._usage(event.message.usage)
        elif event.type == "content_block_start":
            block = event.content_block
            if block.type == "tool_use":
                initial = block.input if isinstance(block.input, dict) else {}
                self.tools[event.index] = _ToolBlock(block.id, block.name, dict(initial))
        elif event.type == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta" and delta.text:
                yield TextDelta(delta.text)
            elif delta.type == "input_json_delta" and event.index in self.tools:
                self.tools[event.index].parts.append(delta.partial_json)
        elif event.type == "content_block_stop":
            tool = self.tools.pop(event.index, None)
            if tool is not None:
                yield ToolCallEvent(ToolCall(tool.id, tool.name, _parse_tool_input(tool)))
        elif event.type == "message_delta":
            self._usage(event.usage)
            if event.delta.stop_reason:
                self.stop_reason = event.delta.stop_reason
        elif event.type == "message_stop":
            self.stopped = True


def _parse_tool_input(tool: _ToolBlock) -> dict[str, Any]:
    raw = "".join(tool.parts).strip()
    if not raw:
        return tool.initial
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ProviderError(
            AnthropicLLM.name, f"tool {tool.name!r}: input is not valid JSON: {raw[:200]!r}"
        ) from exc
    if not isinstance(value, dict):
        raise ProviderError(AnthropicLLM.name, f"tool {tool.name!r}: input is not a JSON object")
    return value


def to_anthropic_tools(tools: list[ToolSpec]) -> list[ToolParam]:
    """``ToolSpec`` -> Messages API tool (``input_schema`` is the JSON schema)."""
    out: list[ToolParam] = []
    for t in tools:
        schema: dict[str, object] = dict(t.parameters) or {"type": "object", "properties": {}}
        out.append({"name": t.name, "description": t.description, "input_schema": schema})
    return out


def to_anthropic_messages(
    messages: list[ChatMessage], *, tools_defined: bool = True
) -> list[MessageParam]:
    """Provider-neutral history -> Messages API ``messages``.

    The API's rules shape this: tool results travel as ``tool_result`` blocks at
    the *start* of the user message right after the assistant's ``tool_use`` (so
    consecutive ``tool`` messages, and a user turn next to them, merge into one
    user message with the results first); text blocks must not be empty (so an
    assistant reply interrupted before anything was heard is dropped); and a
    request without ``tools`` may not contain tool blocks at all (so, when the
    router offers no tools for a turn, earlier calls and results are replayed as
    plain text - the model still sees what happened).
    """
    turns: list[tuple[str, list[ContentBlock]]] = []

    def add(role: str, blocks: list[ContentBlock]) -> None:
        if not blocks:
            return
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))

    for m in messages:
        if m.role == "user":
            if m.content:
                add("user", [{"type": "text", "text": m.content}])
        elif m.role == "assistant":
            blocks: list[ContentBlock] = []
            if m.content:
                blocks.append({"type": "text", "text": m.content})
            for call in m.tool_calls:
                if tools_defined:
                    blocks.append(
                        {
                            "type": "tool_use",
                            "id": call.id,
                            "name": call.name,
                            "input": call.arguments,
                        }
                    )
                else:
                    args = json.dumps(call.arguments, ensure_ascii=False)
                    blocks.append({"type": "text", "text": f"[tool call {call.name} {args}]"})
            add("assistant", blocks)
        else:  # tool
            if not m.tool_call_id:
                raise ProviderError(
                    AnthropicLLM.name, "tool message without tool_call_id", retryable=False
                )
            if not tools_defined:
                label = "tool error" if m.is_error else "tool result"
                add("user", [{"type": "text", "text": f"[{label}] {m.content}"}])
                continue
            result: ToolResultBlockParam = {
                "type": "tool_result",
                "tool_use_id": m.tool_call_id,
                "content": m.content,
            }
            if m.is_error:
                result["is_error"] = True
            add("user", [result])
    out: list[MessageParam] = []
    for role, blocks in turns:
        if role == "user":  # results first, then any text (stable order otherwise)
            blocks.sort(key=lambda b: b["type"] != "tool_result")
        out.append(cast(MessageParam, {"role": role, "content": blocks}))
    return out


def map_anthropic_error(exc: anthropic.AnthropicError) -> ProviderError:
    """SDK exception -> :class:`ProviderError` with a sensible ``retryable``."""
    name = AnthropicLLM.name
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderError(name, "request timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        cause = exc.__cause__
        detail = f": {cause}" if cause else ""
        return ProviderError(name, f"connection failed{detail}")
    if isinstance(exc, anthropic.APIStatusError):
        err_type, message = _error_body(exc.body)
        if exc.status_code == 200:  # an `error` event inside a 200 stream
            return ProviderError(
                name,
                f"error event {err_type or '?'}: {message or exc.message}",
                retryable=err_type in _RETRYABLE_ERROR_TYPES,
            )
        return ProviderError(
            name,
            f"HTTP {exc.status_code} {err_type or ''}: {message or exc.message}".replace("  ", " "),
            retryable=retryable_status(exc.status_code),
        )
    return ProviderError(name, f"{type(exc).__name__}: {exc}")


def _error_body(body: object) -> tuple[str | None, str | None]:
    """``{"type":"error","error":{"type":..,"message":..}}`` -> (type, message)."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            t, m = err.get("type"), err.get("message")
            return (t if isinstance(t, str) else None, m if isinstance(m, str) else None)
    return None, None
