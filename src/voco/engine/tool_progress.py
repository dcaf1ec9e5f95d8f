"""What the user sees and hears while a tool runs: ``running_tool``, and for a
request that waits on approval, ``awaiting_approval`` plus a spoken sentence
saying so; back to ``speaking`` or ``thinking`` once every tool has answered.

A part of :class:`~voco.engine.session.Session` (a mixin), in a file of its own
so the session file stays the adapter; the attributes declared below are the
session's.
"""

from __future__ import annotations

from collections.abc import Callable

from voco.engine.mcp_port import SessionMcpPort
from voco.engine.response import Response
from voco.protocol import messages as m


class ToolProgress:
    mcp: SessionMcpPort
    response: Response | None
    clock: Callable[[], float]

    async def set_state(self, value: str) -> None:
        raise NotImplementedError

    async def on_mcp_progress(self, msg: m.McpProgress) -> bool:
        if not self.mcp.progress(msg):
            return False
        if self.mcp.is_speculative(msg.id):  # the user has not confirmed a turn yet
            return True
        if msg.stage == "awaiting_approval":
            await self.set_state("awaiting_approval")
            resp = self.response
            if resp is not None and resp.tools is not None:
                resp.tools.asked(self.mcp.call_id_of(msg.id))  # kept by the model's id
            if resp is not None and resp.life.running and resp.emitter is not None:
                why = f" It needs your approval because {msg.reason}." if msg.reason else ""
                # a sentence of its own between the model's words, spaced both sides;
                # spoken, but transient: not part of agent.done.text (docs/protocol.md)
                await resp.emitter.transient(f" I'm waiting for your approval to go ahead.{why} ")
        else:
            await self.set_state("running_tool")
        return True

    async def after_tool(self) -> None:
        """A tool answered: back to speaking if the reply's audio plays, else thinking."""
        resp = self.response
        waiting = any(not f.done() for f in self.mcp.pending_rpc_futures.values())
        if waiting or resp is None or not resp.life.running:
            return
        await self.set_state("speaking" if resp.life.is_playing(self.clock()) else "thinking")
