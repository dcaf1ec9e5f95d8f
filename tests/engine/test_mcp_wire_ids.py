"""MCP wire ids are scoped per turn: a model that reuses a tool-call id in a
later turn (``toolu_0`` in turn 1 and again in turn 2, as some OpenAI-compatible
servers and replaying proxies do) must not make the second request look like
a replay. The real runtime (``McpBridge``) drops a replayed id unanswered, so
a repeated wire id hung the second turn for the 40 s answer timeout."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import ScriptedLLM
from voco.agent.context import McpOutcome
from voco.engine.mcp_port import SessionMcpPort
from voco.local.engine_client import EngineClient
from voco.local.mcp_bridge import McpBridge
from voco.protocol import messages as m
from voco.providers.base import ChatMessage, ToolCall

pytestmark = pytest.mark.timeout(90)


def reuse_ids(msgs: list[ChatMessage]) -> list[str | ToolCall]:
    """A tool call under the same id every turn; a sentence once it answered."""
    if msgs[-1].role == "tool":
        return ["Listed."]
    return [ToolCall("toolu_0", "list_dir", {"path": "."})]


async def test_a_tool_call_id_reused_in_a_later_turn_is_answered(
    engine_factory: Any, tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "alpha.py").write_text("print('a')\n")
    bridge = McpBridge([project], "deny", audit_path=tmp_path / "audit" / "audit.jsonl")
    llm = ScriptedLLM(reuse_ids)
    requests: list[m.McpRequest] = []
    async with engine_factory(llm) as eng:
        client = await EngineClient.connect(eng.url, m.SessionStart(token=eng.token()))
        try:
            for turn in ("list the files", "list them again"):
                await client.send(m.TextInput(text=turn))

                async def until_done() -> None:
                    while True:
                        msg = (await client.recv()).message
                        if isinstance(msg, m.McpRequest):
                            requests.append(msg)
                            # fail at once, not after the 40 s timeout
                            assert len({r.id for r in requests}) == len(requests), requests
                            bridge.submit(msg, client)
                        if isinstance(msg, m.AgentDone) and not msg.interrupted:
                            return

                await asyncio.wait_for(until_done(), 60)
        finally:
            await client.close()
            await bridge.aclose()
    assert [r.action for r in requests] == ["list_dir", "list_dir"]
    # both turns' tool results were real answers, not the timeout
    results = [c[-1].content for c in llm.calls if c[-1].role == "tool"]
    assert len(results) == 2 and all('"success"' in r for r in results), results


class Runtime:
    """The runtime's side, by hand: every request sent is queued for the test."""

    def __init__(self) -> None:
        self.sent: asyncio.Queue[m.McpRequest] = asyncio.Queue()

    async def send(self, req: m.McpRequest) -> None:
        self.sent.put_nowait(req)


async def test_turn_scoped_ids_never_repeat_and_answers_reach_their_turn() -> None:
    rt = Runtime()
    port = SessionMcpPort(rt.send)
    ids: list[str] = []

    async def answered(view: Any, call_id: str) -> McpOutcome:
        task = asyncio.create_task(view.call(call_id, "list_dir", {"path": "."}))
        req = await rt.sent.get()
        ids.append(req.id)
        assert port.resolve(m.McpResponse(id=req.id, status="success", result={"n": 1}))
        return await task

    first, second = port.turn(), port.turn()
    assert (await answered(first, "toolu_0")).status == "success"
    assert (await answered(second, "toolu_0")).status == "success"
    # a model repeating an id within one turn still gets a fresh wire id
    assert (await answered(second, "toolu_0")).status == "success"
    assert len(set(ids)) == 3 and all("toolu_0" in i for i in ids), ids
    # the wire id maps back to the model's id (approval records, progress)
    assert {port.call_id_of(i) for i in ids} == {"toolu_0"}
    # a late duplicate of turn 1's answer is still ignored, not taken by turn 2
    assert not port.resolve(m.McpResponse(id=ids[0], status="success"))
