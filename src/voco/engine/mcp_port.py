"""The session's side of MCP: one future per outstanding ``mcp.request``.

These are the seed's ``pending_rpc_futures``. They belong to the live
connection, never to checkpointed state: when the connection goes, every
waiter is answered with ``runtime_disconnected`` so the model can be told.

Every successful result also goes to an optional ``on_result`` observer (the
session's project vocabulary learns file and symbol names from it); an
observer that fails never costs the tool call its answer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from voco.agent.context import McpOutcome, McpPort
from voco.protocol.messages import McpProgress, McpRequest, McpResponse

RESPONSE_TIMEOUT_S = 40.0  # runtime's 30 s execution bound plus transport slack
APPROVAL_TIMEOUT_S = 180.0  # a person deciding gets longer

ResultObserver = Callable[[str, dict[str, Any], Any], None]  # action, payload, result
log = logging.getLogger("voco.mcp")


class SessionMcpPort(McpPort):
    def __init__(
        self,
        send: Callable[[McpRequest], Awaitable[None]],
        *,
        response_timeout_s: float = RESPONSE_TIMEOUT_S,
        approval_timeout_s: float = APPROVAL_TIMEOUT_S,
        on_result: ResultObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._clock = clock  # deadlines are read on it (tests move it by hand)
        self._on_result = on_result
        self._response_timeout = response_timeout_s
        self._approval_timeout = approval_timeout_s
        self.pending_rpc_futures: dict[str, asyncio.Future[McpResponse]] = {}
        self._deadlines: dict[str, float] = {}
        self._answered: set[str] = set()
        self._issued: set[str] = set()  # ids sent on this connection (bounded by its life)
        self._speculative: set[str] = set()  # wire ids of the pending speculative ones
        self._spec_seq = itertools.count(1)
        self._closed = False

    def is_speculative(self, wire_id: str) -> bool:
        """A pending request sent before its turn was confirmed (no state change)."""
        return wire_id in self._speculative

    async def call(
        self, call_id: str, action: str, payload: dict[str, Any], *, speculative: bool = False
    ) -> McpOutcome:
        """``speculative``: sent during the user's pause (engine/prefetch.py) under
        a wire id of its own — the runtime never runs one id twice, and the
        confirmed turn may need to send the same call for real."""
        if speculative:
            call_id = f"spec{next(self._spec_seq)}.{call_id}"[:200]
            self._speculative.add(call_id)
        try:
            return await self._call(call_id, action, payload, speculative)
        finally:
            self._speculative.discard(call_id)

    async def _call(
        self, call_id: str, action: str, payload: dict[str, Any], speculative: bool
    ) -> McpOutcome:
        if self._closed:
            return McpOutcome(
                "error", error="the local runtime is not connected", code="runtime_disconnected"
            )
        fut: asyncio.Future[McpResponse] = asyncio.get_running_loop().create_future()
        self.pending_rpc_futures[call_id] = fut
        self._issued.add(call_id)
        self._deadlines[call_id] = self._clock() + self._response_timeout
        try:
            req = McpRequest(id=call_id, action=action, payload=payload)
            if speculative:
                req = req.model_copy(update={"speculative": True})
            await self._send(req)
            while True:
                remaining = self._deadlines[call_id] - self._clock()
                if remaining <= 0:
                    return McpOutcome(
                        "error", error="the local runtime did not answer in time", code="timeout"
                    )
                try:
                    resp = await asyncio.wait_for(asyncio.shield(fut), remaining)
                except TimeoutError:
                    continue  # the deadline may have moved (approval); re-check
                if resp.status == "success" and self._on_result is not None:
                    try:
                        self._on_result(action, payload, resp.result)
                    except Exception:  # an observer bug must not fail the tool call
                        log.exception("mcp result observer failed")
                return McpOutcome(resp.status, resp.result, resp.error, resp.code)
        except ConnectionError:
            return McpOutcome(
                "error", error="the local runtime disconnected", code="runtime_disconnected"
            )
        finally:
            self.pending_rpc_futures.pop(call_id, None)
            self._deadlines.pop(call_id, None)
            if not fut.done():
                fut.cancel()

    def resolve(self, resp: McpResponse) -> bool:
        """Deliver a response; False if the id is unknown or already answered.

        An answer to a request we issued but stopped waiting for (the user
        interrupted, it timed out) is accepted quietly: the runtime did nothing
        wrong by answering late.
        """
        if resp.id in self._answered:
            return False
        fut = self.pending_rpc_futures.get(resp.id)
        if fut is None or fut.done():
            if resp.id in self._issued:
                self._answered.add(resp.id)
                return True
            return False
        self._answered.add(resp.id)
        fut.set_result(resp)
        return True

    def progress(self, msg: McpProgress) -> bool:
        if msg.id not in self.pending_rpc_futures:
            return False
        if msg.stage == "awaiting_approval":
            self._deadlines[msg.id] = self._clock() + self._approval_timeout
        else:
            self._deadlines[msg.id] = self._clock() + self._response_timeout
        return True

    def close(self) -> None:
        self._closed = True
        for fut in self.pending_rpc_futures.values():
            if not fut.done():
                fut.set_exception(ConnectionError("runtime disconnected"))
