"""OpenAI-compatible chat-completions double (what Ollama / vLLM / llama.cpp serve).

``POST /v1/chat/completions`` with ``stream: true`` answers ``data: <chunk>``
lines of ``chat.completion.chunk`` objects and a final ``data: [DONE]``. Tool
calls stream as ``delta.tool_calls[{index, id, type, function:{name, arguments}}]``
where ``id``/``name`` come once and ``arguments`` arrives as string fragments.
Errors before the stream are ``{"error": {"message", "type", "code"}}`` bodies;
errors inside it are a ``data: {"error": {...}}`` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .net import serve_asgi


class DropConnection(Exception):
    """Raised inside a streaming body: uvicorn aborts the connection mid-response."""


@dataclass
class Call:
    id: str
    name: str
    arguments: dict[str, Any]
    fragment: int = 5


@dataclass
class Reply:
    """One scripted answer; the failure knobs mirror the Anthropic double's."""

    text: list[str] = field(default_factory=lambda: ["Hello", "!"])
    calls: list[Call] = field(default_factory=list)
    finish_reason: str | None = None
    status: int = 200
    error_event_after: int | None = None
    drop_after: int | None = None
    stall_after: int | None = None
    truncate_after: int | None = None


def chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-double",
        "object": "chat.completion.chunk",
        "created": 1_760_000_000,
        "model": model,
        "system_fingerprint": "fp_double",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def completion_chunks(model: str, reply: Reply) -> list[dict[str, Any]]:
    chunks = [chunk(model, {"role": "assistant", "content": ""})]
    chunks += [chunk(model, {"content": t}) for t in reply.text]
    for index, call in enumerate(reply.calls):
        chunks.append(
            chunk(
                model,
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                },
            )
        )
        raw = json.dumps(call.arguments)
        for i in range(0, len(raw), call.fragment):
            piece = raw[i : i + call.fragment]
            chunks.append(
                chunk(model, {"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    finish = reply.finish_reason or ("tool_calls" if reply.calls else "stop")
    chunks.append(chunk(model, {}, finish))
    return chunks


def validate_request(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model is required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty array"
    open_calls: set[str] = set()
    for i, m in enumerate(messages):
        role = m.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            return f"messages[{i}].role is invalid"
        if role == "tool":
            if m.get("tool_call_id") not in open_calls:
                return (
                    f"messages[{i}]: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'"
                )
            if not isinstance(m.get("content"), str):
                return f"messages[{i}].content must be a string"
            open_calls.discard(m["tool_call_id"])
            continue
        if open_calls:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                f"responding to each 'tool_call_id': {sorted(open_calls)}"
            )
        if role == "assistant":
            for c in m.get("tool_calls") or []:
                fn = c.get("function") or {}
                if c.get("type") != "function" or not isinstance(fn.get("arguments"), str):
                    return f"messages[{i}].tool_calls: arguments must be a JSON string"
                json.loads(fn["arguments"])
                open_calls.add(c["id"])
            if m.get("content") is None and not m.get("tool_calls"):
                return f"messages[{i}]: assistant content is required without tool_calls"
        elif not isinstance(m.get("content"), str):
            return f"messages[{i}].content must be a string"
    for t in body.get("tools") or []:
        fn = t.get("function") or {}
        if t.get("type") != "function" or not fn.get("name"):
            return "tools[].function.name is required"
    return None


def _error(status: int, message: str, kind: str = "invalid_request_error") -> Response:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": None}},
        status_code=status,
    )


@dataclass
class OpenAIDouble:
    api_key: str = "sk-local"
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    disconnects: int = 0  # streams the client abandoned before their end
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    async def completions(self, request: Request) -> Response:
        self.headers.append(dict(request.headers))
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided", "invalid_api_key")
        body = await request.json()
        self.requests.append(body)
        if (problem := validate_request(body)) is not None:
            return _error(400, problem)
        reply = self.replies.pop(0) if self.replies else Reply()
        if reply.status != 200:
            return _error(reply.status, "server error", "server_error")
        if body.get("stream") is not True:
            return _error(400, "this double only streams")
        return StreamingResponse(
            self._sse(completion_chunks(body["model"], reply), reply),
            media_type="text/event-stream",
        )

    async def _sse(self, chunks: list[dict[str, Any]], reply: Reply) -> AsyncIterator[bytes]:
        for n, c in enumerate(chunks):
            if reply.error_event_after == n:
                err = {"error": {"message": "model crashed", "type": "server_error"}}
                yield f"data: {json.dumps(err)}\n\n".encode()
                return
            if reply.drop_after == n:
                raise DropConnection
            if reply.stall_after == n:
                try:
                    await self._closing.wait()
                except asyncio.CancelledError:  # starlette saw the client disconnect
                    self.disconnects += 1
                    raise
                return
            if reply.truncate_after == n:
                return
            yield f"data: {json.dumps(c)}\n\n".encode()
            await asyncio.sleep(0)
        yield b"data: [DONE]\n\n"

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self.completions, methods=["POST"])])

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[OpenAIDouble]:
        async with serve_asgi(self.app()) as url:
            self.url = url + "/v1"
            try:
                yield self
            finally:
                self._closing.set()
