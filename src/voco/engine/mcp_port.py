"""The session's side of MCP: one future per outstanding ``mcp.request``.

These are the seed's ``pending_rpc_futures``. They belong to the live
connection, never to checkpointed state: when the connection goes, every
waiter is answered with ``runtime_disconnected`` so the model can be told.

Every successful result also goes to an optional ``on_result`` observer (the
session's project vocabulary learns file and symbol names from it); an
observer that fails never costs the tool call its answer.

Wire ids are the engine's, never the model's bare tool-call id: a confirmed
turn's request goes out as ``t<n>.<call id>`` (:meth:`SessionMcpPort.turn`, one
``n`` per turn), a speculative one as ``spec<n>.<call id>``, and an id already
used on this connection gets a ``.<k>`` suffix. Why: the runtime executes an id
at most once and drops a replay unanswered, and the model's ids are only
unique within one of its replies — a model (or a proxy) that says ``toolu_0``
in turn 1 and again in turn 2 made the second request a "replay" that hung
its turn for the 40 s answer timeout. :meth:`SessionMcpPort.call_id_of` maps
a wire id back to the model's id (approval records are kept by the latter).
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
        self._turn_seq = itertools.count(1)
        self._call_ids: dict[str, str] = {}  # wire id → the model's id (connection-long)
        self._closed = False

    def turn(self) -> McpPort:
        """The port one turn's graph run calls through: its wire ids are
        ``t<n>.<call id>``, ``n`` new for each turn of this session."""
        return _TurnPort(self, f"t{next(self._turn_seq)}.")

    def call_id_of(self, wire_id: str) -> str:
        """The model's tool-call id a wire id was issued for (itself if unknown)."""
        return self._call_ids.get(wire_id, wire_id)

    def _wire_id(self, prefix: str, call_id: str) -> str:
        """``prefix + call_id`` within the protocol's 200 characters, never one
        already issued on this connection."""
        wire = (prefix + call_id)[:200]
        k = 1
        while wire in self._issued:
            k += 1
            tail = f".{k}"
            wire = (prefix + call_id)[: 200 - len(tail)] + tail
        self._call_ids[wire] = call_id
        return wire

    def is_speculative(self, wire_id: str) -> bool:
        """A pending request sent before its turn was confirmed (no state change)."""
        return wire_id in self._speculative

    async def call(
        self, call_id: str, action: str, payload: dict[str, Any], *, speculative: bool = False
    ) -> McpOutcome:
        """``speculative``: sent during the user's pause (engine/prefetch.py) under
        a wire id of its own — the runtime never runs one id twice, and the
        confirmed turn may need to send the same call for real."""
        return await self._scoped(
            f"spec{next(self._spec_seq)}." if speculative else "",
            call_id,
            action,
            payload,
            speculative=speculative,
        )

    async def _scoped(
        self,
        prefix: str,
        call_id: str,
        action: str,
        payload: dict[str, Any],
        *,
        speculative: bool = False,
    ) -> McpOutcome:
        wire = self._wire_id(prefix, call_id)
        if speculative:
            self._speculative.add(wire)
        try:
            return await self._call(wire, action, payload, speculative)
        finally:
            self._speculative.discard(wire)

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


class _TurnPort(McpPort):
    """One turn's view of the session's port: the same futures and deadlines,
    wire ids under the turn's own prefix."""

    def __init__(self, port: SessionMcpPort, prefix: str) -> None:
        self._port, self._prefix = port, prefix

    async def call(self, call_id: str, action: str, payload: dict[str, Any]) -> McpOutcome:
        return await self._port._scoped(self._prefix, call_id, action, payload)
