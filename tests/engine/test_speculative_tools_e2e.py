"""Read-only tools run during the user's pause, end to end: real WebSocket,
VAD, Whisper, Piper, the offline command mode and the real sandbox answering
``mcp.request`` (issue 10 §1). The silences are set long so the speculation
surely has time to run before the turn is confirmed, whatever the load."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.speech import piper_speech, trim
from voco.engine.turn_end import TurnEndConfig
from voco.local.engine_client import EngineClient
from voco.local.mcp_bridge import McpBridge
from voco.local.streamer import RealtimeStreamer
from voco.protocol import messages as m

pytestmark = pytest.mark.timeout(120)


async def converse(
    eng: Any,
    bridge: McpBridge,
    utterance: str,
    on_message: Callable[[m.ServerMessage], None] = lambda _: None,
) -> list[m.ServerMessage]:
    """Say ``utterance`` to the engine with long turn-end silences, the real
    sandbox answering its ``mcp.request``s; every message until the first
    uninterrupted ``agent.done`` (``on_message`` sees each as it comes)."""
    eng.runtime.turn_end = TurnEndConfig(complete_ms=3000, unsure_ms=3000, incomplete_ms=3000)
    client = await EngineClient.connect(eng.url, m.SessionStart(token=eng.token()))
    up = RealtimeStreamer(client.send_audio)
    up.start()
    got: list[m.ServerMessage] = []
    try:
        up.say(trim(piper_speech(utterance)))

        async def until_done() -> None:
            while True:
                msg = (await client.recv()).message
                if msg is None:
                    continue
                got.append(msg)
                on_message(msg)
                if isinstance(msg, m.McpRequest):
                    bridge.submit(msg, client)
                if isinstance(msg, m.AgentDone) and not msg.interrupted:
                    return

        await asyncio.wait_for(until_done(), 90)
    finally:
        await up.stop()
        await client.close()
        await bridge.aclose()
    return got


async def test_a_listing_runs_in_the_pause_once_and_answers_the_turn(
    engine_factory, tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "alpha.py").write_text("print('a')\n")
    (project / "beta.md").write_text("# b\n")
    bridge = McpBridge([project], "deny", audit_path=tmp_path / "audit" / "audit.jsonl")
    async with engine_factory() as eng:  # command mode
        got = await converse(eng, bridge, "What files are in this project?")
    requests = [x for x in got if isinstance(x, m.McpRequest)]
    final = next(i for i, x in enumerate(got) if isinstance(x, m.TranscriptFinal))
    assert [r.action for r in requests] == ["list_dir"], requests  # run once, not again
    assert requests[0].speculative is True and got.index(requests[0]) < final
    done = next(x for x in got if isinstance(x, m.AgentDone))
    assert "alpha" in done.text or "2" in done.text or "two" in done.text.lower(), done.text
    states = [x.value for x in got[:final] if isinstance(x, m.State)]
    assert "running_tool" not in states  # the user was still pausing


async def test_a_scripted_model_is_asked_only_during_the_pause(
    engine_factory, tmp_path: Path
) -> None:
    """A scripted model over the real protocol: listing, then its answer — both
    model calls and the listing happen in the pause; the confirmed turn is
    served all three, and says the answer."""
    from tests.fakes import ScriptedLLM
    from voco.providers.base import ToolCall

    project = tmp_path / "proj"
    project.mkdir()
    (project / "alpha.py").write_text("print('a')\n")
    listing = ToolCall("c1", "list_dir", {"path": "."})
    llm = ScriptedLLM(lambda msgs: [listing] if msgs[-1].role == "user" else ["Two files."])
    bridge = McpBridge([project], "deny", audit_path=tmp_path / "audit" / "audit.jsonl")
    calls_at_final = -1

    def note_final(msg: m.ServerMessage) -> None:
        nonlocal calls_at_final
        if isinstance(msg, m.TranscriptFinal):
            calls_at_final = len(llm.calls)

    async with engine_factory(llm) as eng:
        got = await converse(eng, bridge, "What files are in this project?", note_final)
    requests = [x for x in got if isinstance(x, m.McpRequest)]
    assert [(r.action, r.speculative) for r in requests] == [("list_dir", True)]
    assert calls_at_final == 2 and len(llm.calls) == 2  # nothing asked after the pause
    done = next(x for x in got if isinstance(x, m.AgentDone))
    assert done.text == "Two files."
