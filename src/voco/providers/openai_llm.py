"""Self-hosted models behind an OpenAI-compatible chat-completions endpoint.

Ollama (``/v1``), vLLM and llama.cpp's ``llama-server`` all speak the OpenAI
chat-completions wire format, so the official ``openai`` SDK is the one client
for all of them. Why a separate provider rather than a flag on the Anthropic one:
the message and tool formats differ (``tool_calls`` on the assistant message,
``role: tool`` results, arguments as a JSON *string* streamed in fragments keyed
by ``index``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import openai
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
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

DEFAULT_BASE_URL = "http://127.0.0.1:11434/v1"  # Ollama's OpenAI-compatible API
DEFAULT_MODEL = "llama3.1"

# OpenAI finish reasons -> the Anthropic-style stop reasons the engine reports.
_STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}


class OpenAICompatibleLLM(LLM):
    """Chat completions (streaming, tools) against any OpenAI-compatible server.

    Configuration falls back to ``VOCO_OPENAI_BASE_URL``, ``VOCO_OPENAI_API_KEY``
    (local servers usually ignore it; the SDK insists on a value) and
    ``VOCO_OPENAI_MODEL``; ``VOCO_OPENAI_MODEL_SONNET``/``_HAIKU`` let the two
    router tiers use different local models (a big and a small one).
    """

    name = "openai"
    capabilities = LLMCapabilities(tool_calling=True, streaming=True)

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        sonnet_model: str | None = None,
        haiku_model: str | None = None,
        max_tokens: int | None = 4096,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        max_retries: int = 1,
    ) -> None:
        default = model or os.environ.get("VOCO_OPENAI_MODEL") or DEFAULT_MODEL
        self._models = {
            "sonnet": sonnet_model or os.environ.get("VOCO_OPENAI_MODEL_SONNET") or default,
            "haiku": haiku_model or os.environ.get("VOCO_OPENAI_MODEL_HAIKU") or default,
        }
        self._max_tokens = max_tokens
        self._client = openai.AsyncOpenAI(
            base_url=base_url or os.environ.get("VOCO_OPENAI_BASE_URL") or DEFAULT_BASE_URL,
            api_key=api_key or os.environ.get("VOCO_OPENAI_API_KEY") or "not-needed",
            timeout=openai.Timeout(timeout, connect=connect_timeout),
            max_retries=max_retries,
        )

    def model_id(self, tier: str) -> str:
        """Model for ``tier``; an unknown tier uses the ``sonnet`` model."""
        return self._models.get(tier, self._models["sonnet"])

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
            "messages": to_openai_messages(system, messages),
            "stream": True,
        }
        if tools:
            params["tools"] = to_openai_tools(tools)
        if self._max_tokens is not None:
            # `max_tokens`, not `max_completion_tokens`: the older name is the one
            # Ollama, vLLM and llama.cpp all understand.
            params["max_tokens"] = self._max_tokens
        try:
            stream = await self._client.chat.completions.create(**params)
        except openai.OpenAIError as exc:
            raise map_openai_error(exc) from exc
        state = _StreamState(model=model)
        relay = relay_sdk_stream(
            self.name,
            stream,
            state.feed,
            sdk_error=openai.OpenAIError,
            connection_error=openai.APIConnectionError,
            map_error=map_openai_error,
        )
        async with contextlib.aclosing(relay) as events:
            async for out in events:
                yield out
        if state.finish_reason is None:
            raise ProviderError(self.name, "stream ended without a finish_reason")
        for call in state.tool_calls():
            yield ToolCallEvent(call)
        reason = _STOP_REASONS.get(state.finish_reason, state.finish_reason)
        if state.calls and reason == "end_turn":
            reason = "tool_use"  # some servers say "stop" even when they called tools
        yield Finished(
            stop_reason=reason,
            model=state.model,
            input_tokens=state.input_tokens,
            output_tokens=state.output_tokens,
        )

    async def aclose(self) -> None:
        await self._client.close()


@dataclass
class _PendingCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class _StreamState:
    """Accumulates ``delta.tool_calls`` fragments by ``index`` until the end.

    Chat-completions has no per-call "done" marker, so calls are complete only
    when the choice reports its ``finish_reason``.
    """

    model: str
    finish_reason: str | None = None
    calls: dict[int, _PendingCall] = field(default_factory=dict)
    # only where the server reports usage in the stream (many compatible
    # servers never do): then 0, not a guess
    input_tokens: int = 0
    output_tokens: int = 0

    def feed(self, chunk: ChatCompletionChunk) -> list[LLMEvent]:
        out: list[LLMEvent] = []
        if chunk.model:
            self.model = chunk.model
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.input_tokens = int(usage.prompt_tokens or 0)
            self.output_tokens = int(usage.completion_tokens or 0)
        for choice in chunk.choices or ():
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta is not None:
                if delta.content:
                    out.append(TextDelta(delta.content))
                for position, tc in enumerate(delta.tool_calls or ()):
                    # Some servers omit `index` when each call arrives whole.
                    index = getattr(tc, "index", None)
                    if index is None:
                        index = len(self.calls) + position
                    pending = self.calls.setdefault(index, _PendingCall())
                    if tc.id and not pending.id:
                        pending.id = tc.id
                    if tc.function is not None:
                        if tc.function.name and not pending.name:
                            pending.name = tc.function.name
                        if tc.function.arguments:
                            pending.arguments.append(tc.function.arguments)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        return out

    def tool_calls(self) -> list[ToolCall]:
        calls: list[ToolCall] = []
        for index in sorted(self.calls):
            pending = self.calls[index]
            if not pending.name:
                raise ProviderError(OpenAICompatibleLLM.name, f"tool call #{index} has no name")
            calls.append(
                ToolCall(
                    id=pending.id or f"call_{index}",
                    name=pending.name,
                    arguments=_parse_arguments(pending),
                )
            )
        return calls


def _parse_arguments(pending: _PendingCall) -> dict[str, Any]:
    raw = "".join(pending.arguments).strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ProviderError(
            OpenAICompatibleLLM.name,
            f"tool {pending.name!r}: arguments are not valid JSON: {raw[:200]!r}",
        ) from exc
    if not isinstance(value, dict):
        raise ProviderError(
            OpenAICompatibleLLM.name, f"tool {pending.name!r}: arguments are not a JSON object"
        )
    return value


def to_openai_tools(tools: list[ToolSpec]) -> list[ChatCompletionToolParam]:
    """``ToolSpec`` -> ``{"type":"function","function":{name, description, parameters}}``."""
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": dict(t.parameters) or {"type": "object", "properties": {}},
            },
        }
        for t in tools
    ]


def to_openai_messages(
    system: str, messages: list[ChatMessage]
) -> list[ChatCompletionMessageParam]:
    """Provider-neutral history -> chat-completions ``messages``.

    The format has no ``is_error`` on tool results; the content produced by the
    engine already says ``"status": "error"``, and anything else that failed is
    prefixed so the model cannot mistake it for a success.
    """
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": system})
    for m in messages:
        if m.role == "user":
            out.append({"role": "user", "content": m.content})
        elif m.role == "assistant":
            if not m.content and not m.tool_calls:
                continue  # interrupted before anything was heard
            msg: dict[str, Any] = {"role": "assistant", "content": m.content or None}
            if m.tool_calls:
                msg["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                    }
                    for c in m.tool_calls
                ]
            out.append(msg)
        else:
            if not m.tool_call_id:
                raise ProviderError(
                    OpenAICompatibleLLM.name, "tool message without tool_call_id", retryable=False
                )
            content = m.content
            if m.is_error and not content.lstrip().startswith("{"):
                content = f"Error: {content}"
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": content})
    return cast(list[ChatCompletionMessageParam], out)


def map_openai_error(exc: openai.OpenAIError) -> ProviderError:
    """SDK exception -> :class:`ProviderError` with a sensible ``retryable``."""
    name = OpenAICompatibleLLM.name
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError(name, "request timed out")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        detail = f": {cause}" if cause else ""
        return ProviderError(name, f"connection failed{detail}")
    if isinstance(exc, openai.APIStatusError):
        return ProviderError(
            name,
            f"HTTP {exc.status_code}: {exc.message}",
            retryable=retryable_status(exc.status_code),
        )
    if isinstance(exc, openai.APIError):  # an error object inside the event stream
        return ProviderError(name, f"error in stream: {exc.message}")
    return ProviderError(name, f"{type(exc).__name__}: {exc}")
