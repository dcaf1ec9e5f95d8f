"""Anthropic Messages API double: ``POST /v1/messages`` (SSE streaming) and ``GET /v1/models``.

Wire format as documented for the Messages streaming API: ``message_start``,
``content_block_start``/``_delta``/``_stop`` (``text_delta`` for text,
``input_json_delta`` with ``partial_json`` fragments for ``tool_use``),
``message_delta`` with ``stop_reason``, ``message_stop``, ``ping`` at any time and
an ``error`` event for failures after the stream started. Errors before the
stream are JSON bodies ``{"type":"error","error":{"type":..,"message":..}}``.

The double enforces the request rules a real endpoint rejects with 400/401 so a
wrong mapping fails the test instead of passing silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .net import serve_asgi

Event = tuple[str, dict[str, Any]]


class DropConnection(Exception):
    """Raised inside a streaming body: uvicorn aborts the connection mid-response."""


@dataclass
class Text:
    chunks: list[str]


@dataclass
class ToolUse:
    id: str
    name: str
    input: dict[str, Any]
    fragment: int = 7  # partial_json fragment length, as the API splits arbitrarily


@dataclass
class Reply:
    """One scripted answer to ``POST /v1/messages``.

    ``blocks`` become a well-formed event stream; ``status``/``error`` make an
    HTTP error reply instead; ``error_event`` is sent after ``cut_after`` events;
    ``drop_after`` aborts the connection after that many events; ``stall_after``
    stops sending (keeping the connection open) after that many events;
    ``truncate_after`` ends the body cleanly without ``message_stop``;
    ``hang`` accepts the request and never answers (no status line);
    ``drip_after`` sends only SSE ``ping`` events, forever, after that many
    events (the SDK swallows pings, so its read timeout never fires).
    """

    blocks: list[Text | ToolUse] = field(default_factory=lambda: [Text(["Hello", "!"])])
    stop_reason: str | None = None
    status: int = 200
    error: tuple[str, str] | None = None
    error_event: tuple[str, str] | None = None
    cut_after: int | None = None
    drop_after: int | None = None
    stall_after: int | None = None
    truncate_after: int | None = None
    retry_after_ms: int | None = None
    hang: bool = False
    drip_after: int | None = None
    garbage: bool = False  # a 200 whose body is not SSE at all


def message_events(model: str, reply: Reply) -> list[Event]:
    events: list[Event] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_double_1",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": model,
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 25, "output_tokens": 1},
                },
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    has_tool = False
    for index, block in enumerate(reply.blocks):
        if isinstance(block, Text):
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            for chunk in block.chunks:
                events.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "text_delta", "text": chunk},
                        },
                    )
                )
        else:
            has_tool = True
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {
                            "type": "tool_use",
                            "id": block.id,
                            "name": block.name,
                            "input": {},
                        },
                    },
                )
            )
            raw = json.dumps(block.input)
            fragments = [""] + [
                raw[i : i + block.fragment] for i in range(0, len(raw), block.fragment)
            ]
            for frag in fragments:
                events.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": frag},
                        },
                    )
                )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    stop = reply.stop_reason or ("tool_use" if has_tool else "end_turn")
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 12},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"type": "error", "error": {"type": kind, "message": message}},
        status_code=status,
        headers=headers,
    )


_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def validate_request(body: dict[str, Any]) -> str | None:
    """The Messages API's request rules; returns the 400 message or ``None``."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: Field required"
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        return "system: Input should be a valid string"
    for i, tool in enumerate(body.get("tools") or []):
        if not _TOOL_NAME.match(str(tool.get("name", ""))):
            return f"tools.{i}.name: String should match pattern"
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return f"tools.{i}.input_schema.type: Input should be 'object'"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if messages[0].get("role") != "user":
        return 'messages: first message must use the "user" role'
    pending_tool_ids: set[str] = set()
    tool_blocks = any(
        isinstance(m.get("content"), list)
        and any(b.get("type") in ("tool_use", "tool_result") for b in m["content"])
        for m in messages
    )
    if tool_blocks and not body.get("tools"):
        return "Requests which include `tool_use` or `tool_result` blocks must define tools."
    for i, msg in enumerate(messages):
        role = msg.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        content = msg.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list) or not blocks:
            return f"messages.{i}: content must be a non-empty string or list"
        if pending_tool_ids:
            results = [b for b in blocks if b.get("type") == "tool_result"]
            got = {b.get("tool_use_id") for b in results}
            if role != "user" or not pending_tool_ids <= got:
                return (
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {sorted(pending_tool_ids - got)}"
                )
            first_other = next(
                (k for k, b in enumerate(blocks) if b.get("type") != "tool_result"), len(blocks)
            )
            if any(b.get("type") == "tool_result" for b in blocks[first_other:]):
                return f"messages.{i}: tool_result blocks must come first in the content"
        current_ids: set[str] = set()
        for j, block in enumerate(blocks):
            kind = block.get("type")
            if kind == "text":
                if not isinstance(block.get("text"), str) or not block["text"]:
                    return f"messages.{i}.content.{j}: text content blocks must be non-empty"
            elif kind == "tool_use":
                if role != "assistant":
                    return f"messages.{i}.content.{j}: tool_use is only allowed in assistant turns"
                if not isinstance(block.get("input"), dict) or not block.get("id"):
                    return f"messages.{i}.content.{j}: tool_use needs an id and an object input"
                current_ids.add(block["id"])
            elif kind == "tool_result":
                if role != "user":
                    return f"messages.{i}.content.{j}: tool_result is only allowed in user turns"
                if block.get("tool_use_id") not in pending_tool_ids:
                    return (
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                        "`tool_result` blocks"
                    )
                if "is_error" in block and not isinstance(block["is_error"], bool):
                    return f"messages.{i}.content.{j}.is_error: Input should be a valid boolean"
            else:
                return f"messages.{i}.content.{j}: unsupported block type {kind!r}"
        pending_tool_ids = current_ids
    if pending_tool_ids:
        return "messages: the last assistant tool_use has no tool_result"
    return None


@dataclass
class AnthropicDouble:
    """Scripted Anthropic API. Push :class:`Reply` objects onto ``replies``; each
    request consumes one (a default text reply when the queue is empty)."""

    api_key: str = "sk-ant-test"
    replies: list[Reply] = field(default_factory=list)
    models: list[str] = field(default_factory=lambda: ["claude-sonnet-5-5", "claude-haiku-5-5"])
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    disconnects: int = 0  # streams the client abandoned before their end
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    def _auth(self, request: Request) -> Response | None:
        key = request.headers.get("x-api-key")
        bearer = request.headers.get("authorization", "")
        if key != self.api_key and bearer != f"Bearer {self.api_key}":
            return _error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version header is required")
        return None

    async def messages(self, request: Request) -> Response:
        self.headers.append(dict(request.headers))
        if (denied := self._auth(request)) is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "invalid_request_error", "body is not JSON")
        self.requests.append(body)
        if (problem := validate_request(body)) is not None:
            return _error(400, "invalid_request_error", problem)
        if body.get("stream") is not True:
            return _error(400, "invalid_request_error", "this double only streams")
        reply = self.replies.pop(0) if self.replies else Reply()
        if reply.hang:  # no response at all until the client gives up
            while not self._closing.is_set():
                if await request.is_disconnected():
                    self.disconnects += 1
                    break
                await asyncio.sleep(0.02)
            return _error(529, "overloaded_error", "gave up")
        if reply.status != 200:
            kind, message = reply.error or ("api_error", "Internal server error")
            headers = {}
            if reply.retry_after_ms is not None:
                headers["retry-after-ms"] = str(reply.retry_after_ms)
            return _error(reply.status, kind, message, headers)
        if reply.garbage:
            return Response(
                b"\x00\x01 <html>not an event stream</html>\n", media_type="text/event-stream"
            )
        events = message_events(body["model"], reply)
        return StreamingResponse(
            self._sse(events, reply),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "request-id": "req_double"},
        )

    async def _sse(self, events: list[Event], reply: Reply) -> AsyncIterator[bytes]:
        for n, (name, data) in enumerate(events):
            if reply.cut_after == n and reply.error_event is not None:
                kind, message = reply.error_event
                payload = {"type": "error", "error": {"type": kind, "message": message}}
                yield f"event: error\ndata: {json.dumps(payload)}\n\n".encode()
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
            if reply.drip_after == n:
                try:
                    while not self._closing.is_set():
                        yield b'event: ping\ndata: {"type": "ping"}\n\n'
                        await asyncio.sleep(0.02)
                except asyncio.CancelledError:
                    self.disconnects += 1
                    raise
                return
            yield f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            await asyncio.sleep(0)

    async def list_models(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        data = [
            {
                "type": "model",
                "id": m,
                "display_name": m.replace("-", " ").title(),
                "created_at": "2026-01-01T00:00:00Z",
                "lifecycle": "active",
            }
            for m in self.models
        ]
        return JSONResponse(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/messages", self.messages, methods=["POST"]),
                Route("/v1/models", self.list_models, methods=["GET"]),
            ]
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[AnthropicDouble]:
        async with serve_asgi(self.app()) as url:
            self.url = url
            try:
                yield self
            finally:
                self._closing.set()
